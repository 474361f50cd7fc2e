# GPU machine: how many depth pixels the flying-pixel filter (`MeshConfig.max_blend_offset`)
# leaves out on real captures: lego's 8 views with the voxel model, fern's 17 training views
# (dense); with DEMO=1 also on the demo, whose true depth counts the flying pixels kept
# (bench/depth_spread.py). JSON and PNGs to $OUT, and lego's workspace (splats.ply, scene.json).
# Fern needs all 20 photos, not a few-view staging (whose other photos are blank): copy
# ../shared/data/llff_fern into .devdata/fern/ and
# run(command="FERN=.devdata/fern/llff_fern bash bench/device_depth_spread.sh",
#     carry=[".device-wheels", ".devdata/l8", ".devdata/fern"]); LEGO=0 leaves lego out.
source .device-wheels/setup.sh && source bench/device_setup.sh
DEVDATA=${DEVDATA:-.devdata/l8}
rm -rf /tmp/ws8 /tmp/wsf /tmp/demo
set -x
if [ "${LEGO:-1}" = 1 ]; then
  python3 bench/stage_lego8.py "$DEVDATA" /tmp/lego8
  time voxsplat reconstruct /tmp/lego8 --out /tmp/ws8 --device cuda --quiet
  python3 bench/depth_spread.py /tmp/ws8 --out $OUT/depth_spread_lego8.json --png $OUT/depth_spread_lego8.png
  [ "$(stat -c %s /tmp/ws8/splats.ply)" -lt 16000000 ] && cp /tmp/ws8/splats.ply $OUT/lego8_splats.ply
  cp /tmp/ws8/scene.json $OUT/lego8_scene.json
fi
if [ -n "${FERN:-}" ]; then
  time voxsplat reconstruct "$FERN" --out /tmp/wsf --device cuda --quiet
  python3 bench/depth_spread.py /tmp/wsf --out $OUT/depth_spread_fern.json --png $OUT/depth_spread_fern.png
fi
if [ "${DEMO:-0}" = 1 ]; then
  time voxsplat demo --out /tmp/demo --device cuda --quiet
  python3 bench/depth_spread.py /tmp/demo --truth /tmp/demo/ground_truth/depth --out $OUT/depth_spread_demo.json
fi
