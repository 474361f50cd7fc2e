# GPU machine, call B (carry .devdata: slim wheels + lego + peer): lego_dense variants.
source .devdata/wheels/setup.sh && source bench/device_setup.sh
B="python3 -m voxsplat.scripts.bench lego_dense --device cuda --data .devdata --out $OUT"
$B --tag _b1 --eval-at 5000,10000,15000,20000,25000 2>&1 | grep -v Warn | tail -7
$B --tag _b4 --steps 10000 --set optim.batch_size=4 --eval-at 2500,5000,7500 2>&1 | grep -v Warn | tail -5
