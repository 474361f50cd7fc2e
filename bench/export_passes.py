"""What the flying-pixel filter costs the geometry exports' renders, and that one render per
view gives what two did.

Per training view of a workspace, timed over every view (after one warm-up view):

- `plain`: the colour-and-depth render alone (`export --keep-blended`);
- `two_pass`: that render, then `blend_offset`'s own render of z, z^2, z^3 (the filter until
  the fifty-eighth session);
- `one_pass`: `mesh.render_view` with the filter: colour and the three moments as six
  channels of one render.

The one-pass and two-pass depth, colour and surface masks are compared exactly. Usage:

    python bench/export_passes.py WORKSPACE --out result.json [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from voxsplat.recon import pipeline, workspace as wsp
from voxsplat.recon.engine import resolve_device
from voxsplat.recon.export.mesh import MeshConfig, blend_offset, render_view, sharpened


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ws", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    rec = wsp.open_workspace(args.ws)
    cfg = MeshConfig()
    plain_cfg = replace(cfg, max_blend_offset=0.0)
    splats = sharpened({k: v.to(dev) for k, v in pipeline.exportable_splats(args.ws).items()},
                       cfg.opacity_power)
    cams = wsp.cameras_from_record(rec).to(dev)

    def plain(i):
        return render_view(splats, cams[i], None, plain_cfg)

    def two_pass(i):
        depth, color, surface, free = render_view(splats, cams[i], None, plain_cfg)
        surface = surface & (blend_offset(splats, cams[i]) <= cfg.max_blend_offset * depth)
        return depth, color, surface, free

    def one_pass(i):
        return render_view(splats, cams[i], None, cfg)

    seconds, mismatch = {}, {"depth_max_abs": 0.0, "color_max_abs": 0.0, "surface_pixels": 0}
    with torch.no_grad():
        for name, fn in (("plain", plain), ("two_pass", two_pass), ("one_pass", one_pass)):
            fn(0)
            _sync(dev)
            t0 = time.perf_counter()
            for i in range(len(cams)):
                fn(i)
            _sync(dev)
            seconds[name] = time.perf_counter() - t0
        for i in range(len(cams)):
            a, b = one_pass(i), two_pass(i)
            mismatch["depth_max_abs"] = max(mismatch["depth_max_abs"], float((a[0] - b[0]).abs().max()))
            mismatch["color_max_abs"] = max(mismatch["color_max_abs"], float((a[1] - b[1]).abs().max()))
            mismatch["surface_pixels"] += int((a[2] != b[2]).sum())
    W, H = cams.size(0)
    result = {"workspace": str(args.ws), "views": len(cams), "size": [W, H],
              "n_gaussians": int(splats["means"].shape[0]), "seconds": seconds,
              "filter_cost": {k: seconds[k] / seconds["plain"] - 1 for k in ("two_pass", "one_pass")},
              "one_pass_vs_two_pass": mismatch,
              "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
              "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
