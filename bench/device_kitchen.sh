# GPU machine, kitchen end to end (issue: pose & depth stage). pycolmap is not on the GPU
# machine, so SfM runs here first:
#   voxsplat poses ../shared/data/mipnerf360_kitchen_25_unposed --out /tmp/kitchen_poses
#   python bench/stage_colmap.py /tmp/kitchen_poses .devdata/kitchen 0.5
# then run(command="bash bench/device_kitchen.sh", carry=[".device-wheels", ".devdata/kitchen"])
# (or, on a machine still warm from a call that carried .device-wheels, carry only the data).
# Writes kitchen_metrics.json and a few orbit frames (a call brings back only a few files).
source .device-wheels/setup.sh && source bench/device_setup.sh
t0=$(date +%s)
python3 -m voxsplat.scripts.cli reconstruct .devdata/kitchen --out /tmp/kitchen_ws --device cuda --quiet 2>&1 | grep -v -i warn | tail -3
echo "reconstruct_seconds $(( $(date +%s) - t0 ))"
python3 -m voxsplat.scripts.cli render /tmp/kitchen_ws --out /tmp/kitchen_orbit --frames ${FRAMES:-60} --device cuda | tail -1
cp /tmp/kitchen_ws/metrics.json $OUT/kitchen_metrics.json
for f in ${KEEP_FRAMES:-0 15 30 45}; do cp /tmp/kitchen_orbit/frame_$(printf "%05d" $f).png $OUT/kitchen_orbit_$f.png 2>/dev/null || ls /tmp/kitchen_orbit | head -2; done
