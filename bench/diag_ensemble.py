"""How much two models of one few-view case disagree where they are wrong: the PSNR of the
average of their test renders against each alone. A large ensemble gain says that a
co-regularization between two fields (CoR-GS) has room; none says the errors are shared.

Train one model and keep its test renders:
  python3 bench/diag_ensemble.py train CASE MODEL SEED OUTDIR [--set k=v ...]
Combine every pair of render files of one case:
  python3 bench/diag_ensemble.py combine CASE OUTDIR
Exploration tool: GPU or CPU (`--device`, `--downscale`)."""
import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from voxsplat.recon import pipeline
from voxsplat.recon.gaussians import render_splats, sh_degree_of
from voxsplat.scripts.bench import source_spec, train_config
from voxsplat.scripts.bench_fewview import FEWVIEW_CASES, case_scene

p = argparse.ArgumentParser()
p.add_argument("what", choices=("train", "combine"))
p.add_argument("case")
p.add_argument("rest", nargs="*")
p.add_argument("--data", type=Path, default=Path(".devdata/fv"))
p.add_argument("--downscale", type=float, default=1.0)
p.add_argument("--device", default="cuda")
p.add_argument("--steps", type=int, default=None)
p.add_argument("--set", action="append", default=[])
a = p.parse_args()
scene = case_scene(a.case, a.data, a.downscale)
folder, preset, masked = FEWVIEW_CASES[a.case]
test = list(scene.split("test"))


def view_psnrs(imgs: np.ndarray) -> list[float]:
    out = []
    for t, i in enumerate(test):
        gt = scene.image(i).numpy()
        e = (imgs[t].astype(np.float32) - gt) ** 2
        if masked:
            m = scene.masks[i].numpy().astype(bool)
            e = e[m]
        out.append(float(-10 * np.log10(e.mean())))
    return out


if a.what == "train":
    model, seed, out = a.rest[0], int(a.rest[1]), Path(a.rest[2])
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config(preset, a.steps, (f"downscale={a.downscale}", f"seed={seed}", *a.set), model)
    ws = Path(f"/tmp/ens_ws_{a.case}_{model}_{seed}")
    train_scene = replace(scene, masks=None) if masked else scene
    m = pipeline.reconstruct(train_scene, ws, cfg, source_spec(a.data, folder, cfg), device=a.device,
                             progress=False)
    dev = torch.device(a.device)
    splats = {k: v.to(dev) for k, v in pipeline.load_splats(ws).items()}
    bg = torch.tensor(scene.background, device=dev)
    with torch.no_grad():
        imgs = np.stack([render_splats(splats, scene.cameras[i].to(dev), sh_degree_of(splats), bg)
                         .colors[0].clamp(0, 1).cpu().numpy() for i in test])
    tag = "_".join([model, str(seed)] + [s.replace("=", "-").replace(".", "") for s in a.set])
    np.save(out / f"{a.case}__{tag}.npy", imgs.astype(np.float16))
    ps = view_psnrs(imgs)
    print(json.dumps({"case": a.case, "tag": tag, "psnr": float(np.mean(ps)),
                      "train_seconds": m.get("train_seconds")}))
    sys.exit(0)

out = Path(a.rest[0])
files = sorted(out.glob(f"{a.case}__*.npy"))
imgs = {f.stem.split("__", 1)[1]: np.load(f).astype(np.float32) for f in files}
res = {"case": a.case, "single": {k: float(np.mean(view_psnrs(v))) for k, v in imgs.items()}, "pairs": {}}
for x, y in itertools.combinations(sorted(imgs), 2):
    res["pairs"][f"{x} + {y}"] = float(np.mean(view_psnrs((imgs[x] + imgs[y]) / 2)))
if len(imgs) > 2:
    res["all"] = float(np.mean(view_psnrs(sum(imgs.values()) / len(imgs))))
print(json.dumps(res, indent=1))
json.dump(res, open(out / f"ensemble_{a.case}.json", "w"), indent=1)
