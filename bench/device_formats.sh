# GPU machine: the GPU tests, then kitchen (24 photos, COLMAP poses staged by
# bench/stage_colmap.py) trained with the dense preset and each splat export format scored on
# its held-out views (scripts/bench_formats.py).
#   run(command="bash bench/device_formats.sh", carry=[".device-wheels", ".devdata/kitchen"])
# (KITCHEN_ARGS="--preset fast" trains for less; SKIP_DEPTH=1 leaves out the depth round trip)
source .device-wheels/setup.sh && source bench/device_setup.sh
python3 -m pytest -m gpu -q -p no:cacheprovider tests/recon/test_gpu_paths.py tests/recon/test_voxel_gpu.py \
  tests/render/test_rasterize_gpu.py tests/recon/test_frame.py tests/recon/test_rgbd.py 2>&1 | tail -4 > $OUT/gpu_tests.txt
cat $OUT/gpu_tests.txt
t0=$(date +%s)
python3 -m voxsplat.scripts.cli reconstruct .devdata/kitchen --out /tmp/kitchen_ws --device cuda --quiet \
  ${KITCHEN_ARGS:-} 2>&1 | grep -v -i warn | tail -3
echo "reconstruct_seconds $(( $(date +%s) - t0 ))"
cp /tmp/kitchen_ws/metrics.json $OUT/kitchen_metrics.json
python3 -m voxsplat.scripts.bench_formats /tmp/kitchen_ws --device cuda --out $OUT/formats_kitchen.json
[ -n "${SKIP_DEPTH:-}" ] && exit 0
# depth in and out on the GPU: the demo, its depth export, and a fast 300-step run reading it
# (the CPU figure: 31.82 dB, bench/results/README, thirty-sixth session)
t0=$(date +%s)
python3 -m voxsplat.scripts.cli demo --out /tmp/demo --device cuda 2>&1 | tail -2
python3 -m voxsplat.scripts.cli export /tmp/demo --format depth --out /tmp/rgbd --device cuda --quiet
python3 -m voxsplat.scripts.cli reconstruct /tmp/rgbd --out /tmp/rgbd_ws --preset fast --steps 300 \
  --device cuda --quiet 2>&1 | tail -2
cp /tmp/rgbd_ws/metrics.json $OUT/rgbd_fast300_metrics.json
echo "depth_round_trip_seconds $(( $(date +%s) - t0 ))"
