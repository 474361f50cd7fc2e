"""Which preset for how many photos: fern (LLFF) with N training views picked evenly from the
17 of its every-8th split, one preset and model per call, scored on the 3 held-out views. The
`auto` preset takes `sparse` for at most 12 training views and `dense` (GPU) above.

python3 bench/views_threshold.py N PRESET MODEL OUT.json [--data .devdata/fa] [--steps S]
    [--downscale F] [--set section.field=value ...]"""
import argparse
import json
import tempfile
from pathlib import Path

import torch

from voxsplat.recon import pipeline
from voxsplat.scripts.bench import environment, few_view_split, load_case_scene, source_spec, train_config

p = argparse.ArgumentParser()
p.add_argument("n", type=int); p.add_argument("preset"); p.add_argument("model"); p.add_argument("out", type=Path)
p.add_argument("--data", type=Path, default=Path(".devdata/fa"))
p.add_argument("--steps", type=int, default=None, help="rescale the preset's schedule (checks)")
p.add_argument("--downscale", type=float, default=1.0, help="image scale (CPU checks)")
p.add_argument("--set", action="append", default=[], help="config overrides, e.g. depth=off")
a = p.parse_args()
scene = few_view_split(load_case_scene("llff_fern", a.data, a.downscale), a.n)
cfg = train_config(a.preset, a.steps, (f"downscale={a.downscale}", *a.set), a.model)
with tempfile.TemporaryDirectory() as ws:
    m = pipeline.reconstruct(scene, Path(ws), cfg, source_spec(a.data, "llff_fern", cfg),
                             device="cuda" if torch.cuda.is_available() else "cpu", progress=False)
res = {"n_train": a.n, "preset": a.preset, "model": a.model, "sets": a.set, **environment(),
       **{k: m.get(k) for k in ("psnr", "ssim", "psnr_per_view", "train_seconds", "n_gaussians",
                                "n_voxels", "steps", "peak_gpu_mem_mb")}}
print(json.dumps({k: v for k, v in res.items() if k != "psnr_per_view"}))
json.dump(res, open(a.out, "w"), indent=1)
