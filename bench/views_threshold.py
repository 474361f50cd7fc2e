"""Which preset for how many photos, one preset and model per call. fern (LLFF): N training
views picked evenly from the 17 of its every-8th split, scored on the 3 held-out views. lego:
N picked evenly from its 100 training views (numeric order), scored on every 8th test view
(the 8-view protocol's 25). The `auto` preset takes `sparse` for at most 12 training views and
`dense` (GPU) above.

python3 bench/views_threshold.py N PRESET MODEL OUT.json [--case fern|lego] [--data .devdata/fa]
    [--steps S] [--downscale F] [--set section.field=value ...]
python3 bench/views_threshold.py --stage DIR N [N ...]    # lego's images for those N, the
    # rest blanked (bench/stage_devdata.py), so a device call carries a few MB"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from voxsplat.recon import pipeline
from voxsplat.scripts.bench import environment, few_view_split, load_case_scene, source_spec, train_config
from voxsplat.scripts.bench_fewview import lego_8view

FOLDERS = {"fern": "llff_fern", "lego": "nerf_synthetic_lego_400"}


def lego_split(scene, n_train: int):
    """N of lego's 100 training views picked evenly by number; the 8-view protocol's test views."""
    import numpy as np
    idx = {n: i for i, n in enumerate(scene.names)}
    picks = np.round(np.linspace(0, 99, n_train)).astype(int)
    return scene.with_splits({"train": [idx[f"train/r_{k}"] for k in picks],
                              "test": list(lego_8view(scene).split("test"))})


def split(case: str, scene, n_train: int):
    return lego_split(scene, n_train) if case == "lego" else few_view_split(scene, n_train)


if len(sys.argv) > 1 and sys.argv[1] == "--stage":
    sys.path.insert(0, str(Path(__file__).parent))
    from stage_devdata import stage_folder
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    scene = load_case_scene(FOLDERS["lego"], root)
    names = {scene.names[i] for n in sys.argv[3:] for s in ("train", "test")
             for i in lego_split(scene, int(n)).split(s)}
    print(stage_folder(root / FOLDERS["lego"], Path(sys.argv[2]) / FOLDERS["lego"], names))
    sys.exit(0)

p = argparse.ArgumentParser()
p.add_argument("n", type=int); p.add_argument("preset"); p.add_argument("model"); p.add_argument("out", type=Path)
p.add_argument("--case", choices=sorted(FOLDERS), default="fern")
p.add_argument("--data", type=Path, default=Path(".devdata/fa"))
p.add_argument("--steps", type=int, default=None, help="rescale the preset's schedule (checks)")
p.add_argument("--downscale", type=float, default=1.0, help="image scale (CPU checks)")
p.add_argument("--set", action="append", default=[], help="config overrides, e.g. depth=off")
a = p.parse_args()
scene = split(a.case, load_case_scene(FOLDERS[a.case], a.data, a.downscale), a.n)
cfg = train_config(a.preset, a.steps, (f"downscale={a.downscale}", *a.set), a.model)
with tempfile.TemporaryDirectory() as ws:
    m = pipeline.reconstruct(scene, Path(ws), cfg, source_spec(a.data, FOLDERS[a.case], cfg),
                             device="cuda" if torch.cuda.is_available() else "cpu", progress=False)
res = {"case": a.case, "n_train": a.n, "preset": a.preset, "model": a.model, "sets": a.set, **environment(),
       **{k: m.get(k) for k in ("psnr", "ssim", "psnr_per_view", "train_seconds", "n_gaussians",
                                "n_voxels", "steps", "peak_gpu_mem_mb")}}
print(json.dumps({k: v for k, v in res.items() if k != "psnr_per_view"}))
json.dump(res, open(a.out, "w"), indent=1)
