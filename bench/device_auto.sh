# GPU machine: the user's path on a few-view capture, `--preset auto` (the default) end to end.
# Lego's 8 protocol training views and 5 test views in a folder of their own, then reconstruct
# (auto: sparse settings, the voxel model on a GPU), eval, render, export. Log and metrics to $OUT.
# run(command="bash bench/device_auto.sh", carry=[".device-wheels", ".devdata/fv"]); DEVDATA=.devdata/l8
# takes the staging of `bench/stage_devdata.py .devdata/l8 lego_8view fern_3view` instead. The
# render goes to PNG frames (the device kit has no imageio-ffmpeg). Last, a rerun stopped by
# SIGINT after 45 s, which leaves the finished run in ws/previous/.
source .device-wheels/setup.sh && source bench/device_setup.sh
rm -rf /tmp/ws8 && python3 bench/stage_lego8.py "${DEVDATA:-.devdata/fv}" /tmp/lego8
{ set -x
  time voxsplat reconstruct /tmp/lego8 --out /tmp/ws8 --device cuda --quiet
  voxsplat eval /tmp/ws8 --device cuda
  voxsplat eval /tmp/ws8 --device cuda --split train
  voxsplat reconstruct /tmp/lego8 --out /tmp/ws8 --device cuda --resume --steps 10  # refused
  voxsplat render /tmp/ws8 --path orbit --frames 60 --out /tmp/ws8/orbit --depth --device cuda --quiet
  voxsplat export /tmp/ws8 --format ply --out /tmp/ws8/lego8.ply
  voxsplat export /tmp/ws8 --format splat --out /tmp/ws8/lego8.splat
  voxsplat export /tmp/ws8 --format spz --out /tmp/ws8/lego8.spz
  voxsplat export /tmp/ws8 --format compressed-ply --out /tmp/ws8/lego8.compressed.ply
  voxsplat export /tmp/ws8 --format depth --out /tmp/ws8/rgbd --device cuda --quiet
  ls -la /tmp/ws8 /tmp/ws8/orbit | head -40; } > $OUT/auto_lego8_gpu.txt 2>&1
cp /tmp/ws8/metrics.json $OUT/auto_lego8_metrics.json; cp /tmp/ws8/scene.json $OUT/auto_lego8_scene.json
cp /tmp/ws8/metrics_train.json $OUT/auto_lego8_metrics_train.json 2>/dev/null
cp /tmp/ws8/orbit/frame_00000.png $OUT/auto_lego8_orbit_0.png 2>/dev/null
{ set -x  # a rerun stopped part-way: the finished run waits in previous/
  timeout -s INT 45 voxsplat reconstruct /tmp/lego8 --out /tmp/ws8 --device cuda --quiet
  echo "exit $?"; ls /tmp/ws8 /tmp/ws8/previous
  voxsplat eval /tmp/ws8 --device cuda; } >> $OUT/auto_lego8_gpu.txt 2>&1
tail -40 $OUT/auto_lego8_gpu.txt
