# GPU machine, few-view call when device time is short: each model of each case as its own run
# (alone on the GPU), explicit Gaussians first, so that a call cut short still yields the
# baselines. Join each case's pair with bench/merge_fewview.py. Same staging as
# bench/device_fewview.sh; CASES, G_TIMEOUT and V_TIMEOUT override.
source .device-wheels/setup.sh && source bench/device_setup.sh
B="python3 -m voxsplat.scripts.bench --device cuda --data ${DATA:-.devdata/fv} --out $OUT"
for m in gaussians voxel; do
  t=${G_TIMEOUT:-120}; [ $m = voxel ] && t=${V_TIMEOUT:-165}
  for c in ${CASES:-fern_3view dtu24_3view}; do
    echo "== $c $m"; timeout $t $B $c --models $m --tag _$m 2>&1 | grep -v -i warn | tail -1 | cut -c1-300
  done
done
