# GPU machine: the user's path on a few-view capture, `--preset auto` (the default) end to end.
# Lego's 8 protocol training views and 5 test views in a folder of their own, then reconstruct
# (auto: sparse settings, the voxel model on a GPU), eval, render, export. Log and metrics to $OUT.
# run(command="bash bench/device_auto.sh", carry=[".device-wheels", ".devdata/fv"])
source .device-wheels/setup.sh && source bench/device_setup.sh
rm -rf /tmp/lego8 /tmp/ws8 && python3 - <<'PY'
import json, shutil
from pathlib import Path
from voxsplat.scripts.bench_fewview import LEGO_8VIEW_TRAIN
src, dst = Path(".devdata/fv/nerf_synthetic_lego_400"), Path("/tmp/lego8")
for split, keep in (("train", LEGO_8VIEW_TRAIN), ("test", ("r_0", "r_40", "r_80", "r_120", "r_160"))):
    t = json.load(open(src / f"transforms_{split}.json"))
    t["frames"] = [f for f in t["frames"] if Path(f["file_path"]).name in keep]
    (dst / split).mkdir(parents=True)
    for f in t["frames"]:
        shutil.copy(src / (f["file_path"] + ".png"), dst / (f["file_path"] + ".png"))
    json.dump(t, open(dst / f"transforms_{split}.json", "w"), indent=1)
print("views", len(list((dst / "train").glob("*.png"))), len(list((dst / "test").glob("*.png"))))
PY
{ set -x
  time voxsplat reconstruct /tmp/lego8 --out /tmp/ws8 --device cuda --quiet
  voxsplat eval /tmp/ws8 --device cuda
  voxsplat render /tmp/ws8 --path orbit --frames 60 --out /tmp/ws8/orbit.mp4 --depth --device cuda
  voxsplat export /tmp/ws8 --format ply --out /tmp/ws8/lego8.ply
  voxsplat export /tmp/ws8 --format splat --out /tmp/ws8/lego8.splat
  ls -la /tmp/ws8; } > $OUT/auto_lego8_gpu.txt 2>&1
cp /tmp/ws8/metrics.json $OUT/auto_lego8_metrics.json; cp /tmp/ws8/scene.json $OUT/auto_lego8_scene.json
tail -40 $OUT/auto_lego8_gpu.txt
