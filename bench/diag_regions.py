"""Where the voxel model loses to explicit Gaussians on a few-view case: trains both (the
sparse preset, full protocol) and splits the test-view error by region (training views that see
the pixel, image texture, depth, border). Exploration tool: GPU or CPU.

python3 bench/diag_regions.py fern_3view OUTDIR [--downscale 1.0] [--device cuda]"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from voxsplat.recon import pipeline
from voxsplat.recon.gaussians import render_splats, sh_degree_of
from voxsplat.scripts.bench import source_spec, train_config
from voxsplat.scripts.bench_fewview import FEWVIEW_CASES, case_scene

p = argparse.ArgumentParser()
p.add_argument("case"); p.add_argument("out", type=Path)
p.add_argument("--data", type=Path, default=Path(".devdata/fv"))
p.add_argument("--downscale", type=float, default=1.0)
p.add_argument("--device", default="cuda")
p.add_argument("--steps", type=int, default=3000)
a = p.parse_args()
a.out.mkdir(parents=True, exist_ok=True)
dev = torch.device(a.device)
scene = case_scene(a.case, a.data, a.downscale)
folder = FEWVIEW_CASES[a.case][0]
renders = {}
for m in ("voxel", "gaussians"):
    cfg = train_config("sparse", a.steps, (f"downscale={a.downscale}",), m)
    ws = Path(f"/tmp/diag_ws_{a.case}_{m}")
    pipeline.reconstruct(scene, ws, cfg, source_spec(a.data, folder, cfg), device=a.device, progress=False)
    splats = {k: v.to(dev) for k, v in pipeline.load_splats(ws).items()}
    bg = torch.tensor(scene.background, device=dev)
    with torch.no_grad():
        renders[m] = [(o.colors[0].clamp(0, 1).cpu(), o.depths[0, ..., 0].cpu()) for o in
                      (render_splats(splats, scene.cameras[i].to(dev), sh_degree_of(splats), bg)
                       for i in scene.split("test"))]
train = list(scene.split("train")); cams = scene.cameras
stats, rows = {}, []
for t, i in enumerate(scene.split("test")):
    gt = scene.image(i); H, W = gt.shape[:2]
    d = renders["gaussians"][t][1]
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    K = cams.Ks[i]; world_from_cam = torch.linalg.inv(cams.cam_from_world[i])
    pc = torch.stack([(xs - K[0, 2]) / K[0, 0] * d, (ys - K[1, 2]) / K[1, 1] * d, d, torch.ones_like(d)], -1)
    pw = pc.reshape(-1, 4) @ world_from_cam.T
    count = torch.zeros(H * W)
    for j in train:
        q = pw @ cams.cam_from_world[j].T; z = q[:, 2].clamp_min(1e-6)
        u = cams.Ks[j][0, 0] * q[:, 0] / z + cams.Ks[j][0, 2]; v = cams.Ks[j][1, 1] * q[:, 1] / z + cams.Ks[j][1, 2]
        count += ((q[:, 2] > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)).float()
    count = count.reshape(H, W)
    g = gt.mean(-1); grad = torch.zeros_like(g)
    grad[1:-1, 1:-1] = ((g[2:, 1:-1] - g[:-2, 1:-1]) ** 2 + (g[1:-1, 2:] - g[1:-1, :-2]) ** 2).sqrt()
    tq = torch.quantile(grad.flatten(), torch.tensor([1 / 3, 2 / 3])); tex = (grad > tq[0]).long() + (grad > tq[1]).long()
    dq = torch.quantile(d.flatten(), torch.tensor([1 / 3, 2 / 3])); dbin = (d > dq[0]).long() + (d > dq[1]).long()
    border = torch.zeros(H, W, dtype=torch.bool); b = int(0.1 * min(H, W))
    border[:b] = border[-b:] = True; border[:, :b] = border[:, -b:] = True
    errs = {}
    for m in renders:
        e = ((renders[m][t][0] - gt) ** 2).mean(-1); errs[m] = e
        regions = {"all": torch.ones_like(e, dtype=torch.bool), "border10": border, "interior": ~border}
        regions |= {f"seen_by_{c}": count == c for c in range(len(train) + 1)}
        regions |= {f"texture_{n}": tex == k for k, n in enumerate(("low", "mid", "high"))}
        regions |= {f"depth_{n}": dbin == k for k, n in enumerate(("near", "mid", "far"))}
        for key, r in regions.items():
            stats.setdefault(key, {}).setdefault(m, []).append(e[r])
        rows.append((t, m, float(-10 * torch.log10(e.mean()))))
    # GT | voxel | explicit ; voxel err | explicit err | where voxel is worse (red) / better (green)
    ev, eg = (errs[m].sqrt().clamp(0, 0.3) / 0.3 for m in ("voxel", "gaussians"))
    diff = (errs["voxel"] - errs["gaussians"]).clamp(-0.05, 0.05) / 0.05
    dimg = torch.stack([diff.clamp_min(0), (-diff).clamp_min(0), torch.zeros_like(diff)], -1)
    top = torch.cat([gt, renders["voxel"][t][0], renders["gaussians"][t][0]], 1)
    bot = torch.cat([ev[..., None].expand(-1, -1, 3), eg[..., None].expand(-1, -1, 3), dimg], 1)
    import imageio.v3 as iio
    iio.imwrite(a.out / f"diag_{a.case}_view{t}.jpg", (torch.cat([top, bot], 0).numpy() * 255).astype(np.uint8), quality=90)
N = sum(len(x) for x in stats["all"]["voxel"]); res = {}
tot = torch.cat(stats["all"]["voxel"]).sum() - torch.cat(stats["all"]["gaussians"]).sum()
for key, mm in stats.items():
    v = torch.cat(mm["voxel"]); gs = torch.cat(mm["gaussians"])
    if len(v) == 0:
        continue
    res[key] = dict(frac=len(v) / N, psnr_voxel=float(-10 * torch.log10(v.mean())),
                    psnr_gauss=float(-10 * torch.log10(gs.mean())), share_of_sse_gap=float((v.sum() - gs.sum()) / tot))
    print(f"{key:14s} frac {res[key]['frac']:.3f} voxel {res[key]['psnr_voxel']:.2f} "
          f"gauss {res[key]['psnr_gauss']:.2f} share of gap {res[key]['share_of_sse_gap']:+.2f}")
json.dump({"case": a.case, "downscale": a.downscale, "steps": a.steps, "regions": res, "per_view": rows},
          open(a.out / f"diag_{a.case}.json", "w"), indent=1)
