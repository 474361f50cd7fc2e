# GPU machine, call F (carry .device-wheels + .devdata/fv): voxel-vs-CPU GPU test, then the
# few-view voxel benchmarks, each with its --model gaussians baseline.
source .device-wheels/setup.sh && source bench/device_setup.sh
python3 -m pytest -m gpu -q -p no:cacheprovider tests/recon/test_voxel_gpu.py 2>&1 | tail -3 | tee $OUT/gpu_tests_voxel.txt
B="python3 -m voxsplat.scripts.bench --device cuda --data .devdata/fv --out $OUT"
for c in ${CASES:-lego_8view fern_3view dtu24_3view}; do
  echo "== $c"; timeout ${CASE_TIMEOUT:-200} $B $c $EXTRA 2>&1 | grep -v -i warn | tail -1 | cut -c1-400
done
