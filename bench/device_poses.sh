# GPU machine, after bench/device_formats.sh in the same call (its kitchen run, /tmp/kitchen_ws,
# is the one without): kitchen trained again with --refine-poses, both runs' held-out metrics.
#   run(command="SKIP_DEPTH=1 bash bench/device_formats.sh; bash bench/device_poses.sh",
#       carry=[".device-wheels", ".devdata/kitchen"])
source .device-wheels/setup.sh && source bench/device_setup.sh
t0=$(date +%s)
python3 -m voxsplat.scripts.cli reconstruct .devdata/kitchen --out /tmp/kitchen_refined --device cuda \
  --quiet --refine-poses ${KITCHEN_ARGS:-} 2>&1 | grep -v -i warn | tail -3
echo "reconstruct_seconds $(( $(date +%s) - t0 ))"
cp /tmp/kitchen_refined/metrics.json $OUT/kitchen_refine_poses_metrics.json
python3 - <<'PY'
import json
for name in ("/tmp/kitchen_ws", "/tmp/kitchen_refined"):
    m = json.load(open(f"{name}/metrics.json"))
    print(name, "psnr", round(m["psnr"], 2), "ssim", round(m["ssim"], 3), "train_s",
          round(m["train_seconds"], 1), m.get("pose_refinement"))
PY
