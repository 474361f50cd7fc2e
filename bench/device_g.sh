# GPU machine, call G (carry .device-wheels + .devdata/g/kitchen + .devdata/fv): the voxel GPU
# test; `voxsplat reconstruct` on the kitchen capture posed by SfM on the CPU machine (pycolmap
# is not on the GPU machine: `voxsplat poses` ran there, its model travels as text), an orbit
# as PNG frames (no ffmpeg here); then few-view cases.
source .device-wheels/setup.sh && source bench/device_setup.sh
python3 -m pytest -m gpu -q -x --tb=short -p no:cacheprovider tests/recon/test_voxel_gpu.py > $OUT/gpu_tests_voxel.txt 2>&1; tail -2 $OUT/gpu_tests_voxel.txt
t0=$(date +%s)
python3 -m voxsplat.scripts.cli reconstruct .devdata/g/kitchen --out /tmp/kitchen_ws --device cuda --quiet 2>&1 | grep -v -i warn | tail -3
echo "reconstruct_seconds $(( $(date +%s) - t0 ))"
python3 -m voxsplat.scripts.cli render /tmp/kitchen_ws --out $OUT/kitchen_orbit --frames ${FRAMES:-60} --depth --device cuda | tail -1
cp /tmp/kitchen_ws/metrics.json $OUT/kitchen_metrics.json
B="python3 -m voxsplat.scripts.bench --device cuda --data .devdata/g --out $OUT"
for c in ${CASES:-lego_8view}; do
  echo "== $c"; timeout ${CASE_TIMEOUT:-200} $B $c $EXTRA 2>&1 | grep -v -i warn | tail -1 | cut -c1-400
done
