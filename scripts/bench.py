"""Named benchmark cases; each writes one JSON with metrics, timings, memory, GPU and versions.

usage: python -m voxsplat.scripts.bench CASE [--data ../shared/data] [--out bench/results]
       [--steps N] [--preset P] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

# case -> (scene folder under the data root, preset)
CASES = {
    "lego_dense": ("nerf_synthetic_lego_400", "dense"),
}


def environment() -> dict:
    """GPU name and library versions for the result file."""
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "cuda": torch.version.cuda}
    try:
        from importlib.metadata import version
        env["gsplat"] = version("gsplat")
    except Exception:
        env["gsplat"] = None
    return env


def run_case(case: str, data_root: Path, out_dir: Path, steps: Optional[int], preset: Optional[str],
             device: str) -> dict:
    from voxsplat.data.load import load_scene
    from voxsplat.recon import pipeline
    from voxsplat.recon.app import _config
    folder, default_preset = CASES[case]
    cfg = _config(preset or default_preset, steps, None)
    t0 = time.perf_counter()
    scene = load_scene(data_root / folder)
    load_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as ws:
        metrics = pipeline.reconstruct(scene, Path(ws), cfg, {"kind": "path", "path": str(data_root / folder)},
                                       device=device, progress=sys.stderr.isatty())
    result = {"case": case, "scene": folder, "preset": preset or default_preset,
              **{k: metrics[k] for k in ("psnr", "ssim", "train_seconds", "peak_gpu_mem_mb",
                                         "n_gaussians", "n_test_views", "steps", "device")},
              "load_seconds": load_seconds, **environment(), "config": cfg.to_dict(),
              "psnr_per_view": metrics["psnr_per_view"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="+", choices=sorted(CASES))
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--steps", type=int)
    p.add_argument("--preset")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    for case in a.cases:
        r = run_case(case, a.data, a.out, a.steps, a.preset, a.device)
        print(json.dumps({k: v for k, v in r.items() if k not in ("config", "psnr_per_view")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
