"""Peak memory and time of loading a COLMAP scene of large JPEG photos with `--downscale`
(`recon.app.load_input`): each image resized as decoded (`decode_downscale`, now) against
every photo decoded at full size and the scene resized after (`--after`, as before).

    python bench/load_memory.py make /tmp/bigscene      # 40 photos of 6000x4000 (~1 min)
    python bench/load_memory.py load /tmp/bigscene 0.25 [--after]
prints one JSON line: seconds, peak RSS (MB, the process's own), the loaded size.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make(root: Path, n: int = 40, size=(6000, 4000)) -> None:
    model = root / "sparse" / "0"
    model.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    W, H = size
    (model / "cameras.txt").write_text(f"1 PINHOLE {W} {H} {W} {W} {W / 2} {H / 2}\n")
    (model / "images.txt").write_text("".join(f"{i + 1} 1 0 0 0 {0.1 * i} 0 4 1 p{i:02d}.jpg\n\n"
                                              for i in range(n)))
    (model / "points3D.txt").write_text("1 0 0 0 255 0 0 0.5 1 0\n")
    y, x = np.mgrid[0:H, 0:W].astype(np.float32) / 50.0
    for i in range(n):
        rgb = np.stack([np.sin(x + i), np.cos(y), np.sin(0.5 * x + y)], 2) * 100 + 128
        Image.fromarray(rgb.astype(np.uint8)).save(root / "images" / f"p{i:02d}.jpg", quality=90)


def load(root: Path, factor: float, after: bool) -> dict:
    from voxsplat.recon import app
    if after:  # as before: full size, then `transforms.downscale`
        app.decode_downscale = lambda f: contextlib.nullcontext([])
    t0 = time.perf_counter()
    scene = app.load_input(root, Path("/tmp/load_memory_ws"), factor, progress=False)
    seconds = time.perf_counter() - t0
    return {"mode": "after" if after else "as decoded", "factor": factor, "views": len(scene),
            "size": list(scene.cameras.size(0)), "seconds": round(seconds, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        print(json.dumps(load(Path(sys.argv[2]), float(sys.argv[3]), "--after" in sys.argv)))
