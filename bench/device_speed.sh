# GPU machine: the voxel model's training time with this tree's code against older files.
# Here first: bash ../shared/device/stage.sh; python bench/stage_devdata.py .devdata/fv
# fern_3view lego_8view dtu24_3view; copy the older versions of the changed files into
# .oldsrc/ (ignored; flat, with OLD_FILES naming where each goes), then
#   run(command="bash bench/device_speed.sh", carry=[".device-wheels", ".devdata/fv", ".oldsrc"])
# The GPU tests, then per case in NEW_CASES a voxel run on this tree (bench/profile_fewview.py
# without profiler windows: seconds per 100 steps, PSNR, train_seconds), then the cases in
# OLD_CASES on the older files. Results: $OUT/speed_{new,old}_CASE.json.
source .device-wheels/setup.sh && source bench/device_setup.sh
nvidia-smi --query-gpu=name --format=csv,noheader
if [ "${GPU_TESTS:-1}" = 1 ]; then
  timeout 120 python3 -m pytest -m gpu -q -p no:cacheprovider tests/recon/test_voxel_gpu.py \
    tests/render/test_rasterize_gpu.py > $OUT/gpu_tests.txt 2>&1; tail -1 $OUT/gpu_tests.txt
fi
P="python3 bench/profile_fewview.py"
for c in ${NEW_CASES:-fern_3view}; do
  echo "== new $c"; timeout ${CASE_TIMEOUT:-170} $P $c voxel $OUT/speed_new_$c.json --windows 2>&1 \
    | grep -E '"(psnr|train_seconds)"' | tr -d '\n'; echo
done
for pair in ${OLD_FILES:-unet.py:recon/backbone/unet.py _spconv.py:recon/backbone/_spconv.py voxel_gaussians.py:recon/representation/voxel_gaussians.py}; do
  cp .oldsrc/${pair%%:*} ${pair#*:}
done
for c in ${OLD_CASES:-fern_3view}; do
  echo "== old $c"; timeout ${CASE_TIMEOUT:-170} $P $c voxel $OUT/speed_old_$c.json --windows 2>&1 \
    | grep -E '"(psnr|train_seconds)"' | tr -d '\n'; echo
done
