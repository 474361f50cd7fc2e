# GPU machine, call H (carry .device-wheels + .devdata/fv): the voxel GPU test, then fern and
# DTU few-view cases (after the voxel-size-from-point-spacing fix).
source .device-wheels/setup.sh && source bench/device_setup.sh
python3 -m pytest -m gpu -q -x --tb=short -p no:cacheprovider tests/recon/test_voxel_gpu.py > $OUT/gpu_tests_voxel.txt 2>&1; tail -1 $OUT/gpu_tests_voxel.txt
B="python3 -m voxsplat.scripts.bench --device cuda --data .devdata/fv --out $OUT"
for c in ${CASES:-fern_3view dtu24_3view}; do
  echo "== $c"; timeout ${CASE_TIMEOUT:-220} $B $c $EXTRA 2>&1 | grep -v -i warn | tail -1 | cut -c1-300
done
