# GPU machine, call D (carry .devdata: slim wheels + lego + fern): mesh, TSDF, MVS and
# sparse-view init benchmarks, then every GPU test.
source .devdata/wheels/setup.sh && source bench/device_setup.sh
B="python3 -m voxsplat.scripts.bench --device cuda --data .devdata --out $OUT"
for c in tsdf_speed mvs_depth fern_3view_init lego_mesh; do
  echo "== $c"; timeout 240 $B $c 2>&1 | grep -v Warn | tail -4
done
python3 -m pytest -m gpu -q 2>&1 | tail -4 | tee $OUT/gpu_tests.txt
