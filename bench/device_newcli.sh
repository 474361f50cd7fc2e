# The CLI's newer paths on the GPU, end to end (run from the repo root after bench/device_setup.sh):
# a synthetic scene moved into an SfM-like frame (scaled, turned, shifted: COLMAP layout),
# reconstructed on CUDA, then export --frame input (ply, points, mesh), render --path FILE.json
# and eval --renders. Writes $OUT/newcli.json.
set -e
W=/tmp/newcli; rm -rf $W; mkdir -p $W
python3 - <<'PY'
import json, math, time, torch, numpy as np
from pathlib import Path
from dataclasses import replace
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
W = Path("/tmp/newcli")
synth = make_synthetic_scene(SyntheticConfig(width=320, height=240, n_train=24, n_test=4))
scene = synth.scene
data = write_blender_dataset(scene, W / "input")
# the same views in a moved frame, as transforms.json: x_in = 7 R x + t
a = math.radians(120)
R = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])
T = torch.eye(4); T[:3, :3] = 7 * R; T[:3, 3] = torch.tensor([10.0, -4.0, 2.5])
meta = json.loads((data / "transforms_train.json").read_text())
for split in ("train", "test"):
    m = json.loads((data / f"transforms_{split}.json").read_text())
    for f in m["frames"]:
        c2w = torch.tensor(f["transform_matrix"])
        c2w = T @ c2w; c2w[:3, :3] /= 7
        f["transform_matrix"] = c2w.tolist()
    (data / f"transforms_{split}.json").write_text(json.dumps(m))
from voxsplat.data.writers import write_points_ply
write_points_ply(data / "points.ply", scene.points @ T[:3, :3].T + T[:3, 3], scene.point_colors)
(W / "T.json").write_text(json.dumps(T.tolist()))
PY
t0=$(date +%s.%N)
voxsplat reconstruct $W/input --out $W/ws --preset fast --device cuda --quiet
t1=$(date +%s.%N)
voxsplat export $W/ws --format ply --out $W/in.ply --quiet
voxsplat export $W/ws --format points --out $W/points.ply --device cuda --quiet
voxsplat export $W/ws --format mesh --out $W/mesh.ply --device cuda --quiet
voxsplat eval $W/ws --renders $W/renders --device cuda
python3 - <<'PY'
import json, torch
from pathlib import Path
W = Path("/tmp/newcli")
test = json.loads((W / "input" / "transforms_test.json").read_text())
(W / "path.json").write_text(json.dumps({"frames": [{k: f[k] for k in (
    "transform_matrix", "fl_x", "fl_y", "cx", "cy", "w", "h")} for f in test["frames"]]}))
PY
voxsplat render $W/ws --path $W/path.json --out $W/frames --device cuda --quiet
voxsplat render $W/ws --path $W/path.json --frames 30 --out $W/smooth --device cuda --quiet
python3 - <<PY
import json, numpy as np, torch
from pathlib import Path
from PIL import Image
from voxsplat.recon.export import read_ply
from voxsplat.render.metrics import psnr
W = Path("/tmp/newcli")
m = json.loads((W / "ws" / "metrics.json").read_text())
frames = sorted((W / "frames").iterdir())
gts = sorted(p for p in (W / "renders").iterdir() if p.name.endswith("_gt.png"))
pp = [float(psnr(torch.from_numpy(np.asarray(Image.open(f), np.float32) / 255),
                 torch.from_numpy(np.asarray(Image.open(g), np.float32) / 255))) for f, g in zip(frames, gts)]
from plyfile import PlyData
def xyz(p):
    v = PlyData.read(str(p))["vertex"]; return np.stack([v["x"], v["y"], v["z"]], -1)
rec = json.loads((W / "ws" / "scene.json").read_text())
out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
       "reconstruct_s": $t1 - $t0, "psnr": m["psnr"], "psnr_per_view": m["psnr_per_view"],
       "path_file_psnr_vs_photos": pp, "n_renders_files": len(list((W / "renders").iterdir())),
       "n_smooth_frames": len(list((W / "smooth").iterdir())),
       "world_from_input_is_identity": bool(np.allclose(rec["world_from_input"], np.eye(4))),
       "ply_means_center": read_ply(W / "in.ply")["means"].mean(0).tolist(),
       "points_center": xyz(W / "points.ply").mean(0).tolist(),
       "mesh_center": xyz(W / "mesh.ply").mean(0).tolist()}
print(json.dumps(out, indent=1))
import os; Path(os.environ.get("OUT", "/tmp")).joinpath("newcli.json").write_text(json.dumps(out, indent=1))
PY
