"""How many rendered depth pixels `MeshConfig.max_blend_offset` leaves out, and how many of those
kept are off the true depth (where a ground-truth folder is given: the demo's).

    python3 bench/depth_spread.py WS [--truth WS/ground_truth/depth] --out result.json

For each measure (`spread`: the standard deviation of the blended depths; `offset`: the one
the filter uses, `mesh.blend_offset`), both over the depth, and each threshold: the fraction
of the surface pixels (alpha > 0.5, inside the mask) left out, and, with the truth, the
fraction of all surface pixels kept whose depth is more than 5% off it (flying pixels
between an edge's surfaces). The pixels kept and those left out at 0.02 are also checked
against the nearest 8 other views (`agreement`): the share that some view confirms (its
rendered depth there within 1%), and the share that none confirms and some contradicts (the
point would float in front of what that view renders).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from voxsplat.recon import pipeline, workspace as wsp
from voxsplat.recon.app import input_scene
from voxsplat.recon.engine import resolve_device
from voxsplat.recon.export.frame import frame_scale, input_from_world
from voxsplat.recon.export.mesh import (MeshConfig, depth_moments, offset_of_moments, render_view,
                                        sharpened)

THRESHOLDS = (0.0, 0.01, 0.02, 0.04)


def _save_png(path: Path, depth, surface, spread) -> None:
    from PIL import Image
    d = depth[surface]
    lo, hi = (float(d.min()), float(d.max())) if len(d) else (0.0, 1.0)
    grey = torch.where(surface, 1 - (depth - lo) / max(hi - lo, 1e-9), torch.zeros_like(depth))
    rgb = grey[..., None].repeat(1, 1, 3)
    rgb[surface & (spread > 0.02)] = torch.tensor([1.0, 0.85, 0.0], device=rgb.device)
    rgb[surface & (spread > 0.04)] = torch.tensor([1.0, 0.0, 0.0], device=rgb.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rgb.clamp(0, 1) * 255).byte().cpu().numpy()).save(path)


def agreement(depths, surfaces, cams, i: int, neighbours: int = 8, tol: float = 0.01):
    """[H,W] bools (confirmed, contradicted) of view i's surface pixels: back-projected into
    its nearest other views, the point lands within `tol` of the depth some view renders there
    (confirmed), or, seen by none that way, in front of what some view renders (that view
    should have seen it: a point in mid-air)."""
    H, W = depths[i].shape
    v, u = torch.meshgrid(torch.arange(H, device=depths[i].device),
                          torch.arange(W, device=depths[i].device), indexing="ij")
    z = depths[i]
    pix = torch.stack([(u + 0.5) * z, (v + 0.5) * z, z], -1).reshape(-1, 3)
    cam = pix @ torch.linalg.inv(cams.Ks[i]).T
    world_from_cam = torch.linalg.inv(cams.cam_from_world[i])
    X = cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]
    dist = (cams.centers - cams.centers[i]).norm(dim=-1)
    dist[i] = float("inf")
    others = dist.argsort()[:min(neighbours, len(depths) - 1)].tolist()
    confirmed = torch.zeros(H * W, dtype=torch.bool, device=z.device)
    contradicted = torch.zeros_like(confirmed)
    for j in others:
        Hj, Wj = depths[j].shape
        xc = X @ cams.cam_from_world[j, :3, :3].T + cams.cam_from_world[j, :3, 3]
        p = xc @ cams.Ks[j].T
        zj = p[:, 2]
        uj = torch.floor(p[:, 0] / zj.clamp_min(1e-9)).long()
        vj = torch.floor(p[:, 1] / zj.clamp_min(1e-9)).long()
        inside = (zj > 0) & (uj >= 0) & (uj < Wj) & (vj >= 0) & (vj < Hj)
        ui, vi = uj.clamp(0, Wj - 1), vj.clamp(0, Hj - 1)
        seen = depths[j][vi, ui]
        valid = inside & surfaces[j][vi, ui]
        rel = (zj - seen) / seen.clamp_min(1e-9)
        confirmed |= valid & (rel.abs() <= tol)
        contradicted |= valid & (rel < -tol)
    contradicted &= ~confirmed
    return confirmed.reshape(H, W) & surfaces[i], contradicted.reshape(H, W) & surfaces[i]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ws", type=Path)
    ap.add_argument("--truth", type=Path, help="folder of NAME.npy camera-z maps (input frame)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--png", type=Path, help="the first view's depth (grey), with the pixels "
                    "left out at 0.02 in yellow and at 0.04 in red")
    args = ap.parse_args()
    dev = resolve_device("auto")
    rec = wsp.open_workspace(args.ws)
    cfg = MeshConfig(max_blend_offset=0.0)
    splats = sharpened({k: v.to(dev) for k, v in pipeline.exportable_splats(args.ws).items()},
                       cfg.opacity_power)
    cams = wsp.cameras_from_record(rec).to(dev)
    scale = frame_scale(input_from_world(rec))
    scene = input_scene(args.ws, "")
    masks = None if scene is None else scene.masks
    counts = {(kind, t): {"surface": 0, "left_out": 0, "off_5pct": 0}
              for kind in ("spread", "offset") for t in THRESHOLDS}
    depths, surfaces, ratios = [], [], []
    with torch.no_grad():
        for i, image in enumerate(rec["images"]):
            mask = None if masks is None else masks[i]
            depth, _, surface, _ = render_view(splats, cams[i], mask, cfg)
            std, mu3 = depth_moments(splats, cams[i])  # (one render for both measures)
            measures = {"spread": std / depth.clamp_min(1e-9),
                        "offset": offset_of_moments(std, mu3) / depth.clamp_min(1e-9)}
            if i == 0 and args.png is not None:
                for kind, measure in measures.items():
                    _save_png(args.png.with_name(f"{args.png.stem}_{kind}.png"), depth, surface, measure)
            truth = None
            if args.truth is not None and (args.truth / f"{Path(image['name']).stem}.npy").is_file():
                truth = torch.from_numpy(np.load(args.truth / f"{Path(image['name']).stem}.npy")).to(dev) / scale
            off = None if truth is None else ((depth - truth).abs() > 0.05 * truth) & (truth > 0)
            for (kind, t), c in counts.items():
                kept = surface & (measures[kind] <= t) if t > 0 else surface
                c["surface"] += int(surface.sum())
                c["left_out"] += int((surface & ~kept).sum())
                if off is not None:
                    c["off_5pct"] += int((kept & off).sum())
            depths.append(depth)
            surfaces.append(surface)
            ratios.append(measures)
        # multi-view agreement of the pixels kept and of those left out at 0.02
        views = {(kind, part): [0, 0, 0] for kind in ("spread", "offset") for part in ("kept", "left_out")}
        for i in range(len(depths)):
            confirmed, contradicted = agreement(depths, surfaces, cams, i)
            for kind in ("spread", "offset"):
                out = ratios[i][kind] > 0.02
                for part, sel in (("kept", surfaces[i] & ~out), ("left_out", surfaces[i] & out)):
                    c = views[(kind, part)]
                    c[0] += int(sel.sum())
                    c[1] += int((sel & confirmed).sum())
                    c[2] += int((sel & contradicted).sum())
    result = {"workspace": str(args.ws), "views": len(rec["images"]), "device": str(dev),
              "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
              "torch": torch.__version__, "truth": args.truth is not None,
              "thresholds": {f"{kind} {t}": {"left_out": c["left_out"] / max(c["surface"], 1),
                                      **({"kept_off_5pct": c["off_5pct"] / max(c["surface"], 1)}
                                         if args.truth is not None else {})}
                             for (kind, t), c in counts.items()},
              "agreement_at_0.02": {f"{kind} {part}": {
                  "pixels": c[0], "confirmed": c[1] / max(c[0], 1),
                  "contradicted": c[2] / max(c[0], 1)} for (kind, part), c in views.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["thresholds"]))
    print(json.dumps(result["agreement_at_0.02"]))


if __name__ == "__main__":
    main()
