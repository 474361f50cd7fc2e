"""The splat export formats on a trained workspace: for each, the file's size, the time to
write it and the held-out views rendered from the file read back, scored against the photos
and against the workspace's own Gaussians (what the format's quantization costs).

usage: python -m voxsplat.scripts.bench_formats WS [--out FILE.json] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

FORMATS = {"ply": "scene.ply", "compressed-ply": "scene.compressed.ply", "splat": "scene.splat",
           "spz": "scene.spz", "spz-v2": "scene_v2.spz"}
"""Export format -> the file it is written to (and read back from, by its suffix); spz-v2 is
`--format spz --spz-version 2`."""


def bench_formats(ws: Path, device: str = "auto") -> dict:
    """{format: bytes, write_seconds, psnr, ssim, psnr_vs_workspace (mean, min)} and the
    workspace's own held-out PSNR/SSIM, for the formats in FORMATS (frame: the scene's)."""
    from voxsplat.recon import pipeline
    from voxsplat.recon.app import load_workspace_scene
    from voxsplat.recon.engine import resolve_device
    from voxsplat.recon.export.read import read_splat_file
    from voxsplat.recon.sky import read_sky
    from voxsplat.render.metrics import psnr

    dev = resolve_device(device)
    scene, rec = load_workspace_scene(ws)
    split, sky = pipeline.measured_split(scene), read_sky(ws)
    backend = rec["config"].get("backend", "auto")
    splats = pipeline.load_splats(ws)
    own: dict = {}
    base = pipeline.evaluate(scene, splats, split, dev, backend, sky=sky,
                             on_view=lambda i, img, gt: own.__setitem__(i, img))
    out = {"workspace": {"psnr": base["psnr"], "ssim": base["ssim"],
                         "n_gaussians": base["n_gaussians"], "n_test_views": base["n_test_views"]}}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, name in FORMATS.items():
            path = Path(tmp) / name
            t0 = time.perf_counter()
            if fmt == "spz-v2":
                pipeline.export(ws, "spz", path, frame="scene", spz_version=2)
            else:
                pipeline.export(ws, fmt, path, frame="scene")
            seconds = time.perf_counter() - t0
            decoded = read_splat_file(path)
            same: list[float] = []
            m = pipeline.evaluate(scene, decoded, split, dev, backend, sky=sky,
                                  on_view=lambda i, img, gt: same.append(float(psnr(img, own[i]))))
            out[fmt] = {"bytes": path.stat().st_size, "write_seconds": round(seconds, 2),
                        "psnr": m["psnr"], "ssim": m["ssim"],
                        "psnr_vs_workspace": _finite(np.mean(same)),  # null: identical
                        "psnr_vs_workspace_min": _finite(np.min(same))}
    return out


def _finite(value) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", type=Path)
    p.add_argument("--out", type=Path, help="JSON file (default: print only)")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    from voxsplat.scripts.bench import environment
    result = {"formats": bench_formats(a.workspace, a.device), "environment": environment()}
    text = json.dumps(result, indent=1)
    if a.out is not None:
        from voxsplat.data.atomic import atomic_open
        with atomic_open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
