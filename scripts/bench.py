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

# case -> (scene folder under the data root, or "synthetic" for the generated scene; preset)
CASES = {
    "lego_dense": ("nerf_synthetic_lego_400", "dense"),
    "synthetic_fast": ("synthetic", "fast"),
}


def load_case_scene(folder: str, data_root: Path):
    if folder == "synthetic":
        from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
        return make_synthetic_scene(SyntheticConfig()).scene
    from voxsplat.data.load import load_scene
    path = data_root / folder
    if not path.is_dir():
        raise SystemExit(f"{path}: benchmark data not found; pass --data pointing at shared/data")
    return load_scene(path)


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
             device: str, eval_at: tuple[int, ...] = (), sets: tuple[str, ...] = (),
             tag: str = "") -> dict:
    from dataclasses import replace
    from voxsplat.recon import pipeline
    from voxsplat.recon.app import _config
    folder, default_preset = CASES[case]
    from voxsplat.recon.config import override
    cfg = replace(_config(preset or default_preset, steps, None), checkpoint_every=0)
    for assignment in sets:
        cfg = override(cfg, assignment)
    t0 = time.perf_counter()
    scene = load_case_scene(folder, data_root)
    load_seconds = time.perf_counter() - t0
    curve = []

    def on_step(step: int, info: dict) -> None:
        if step in eval_at:
            splats = {k: v.detach() for k, v in info["splats"].items()}
            m = pipeline.evaluate(scene, splats, "test", splats["means"].device, cfg.backend)
            curve.append({"step": step, "psnr": m["psnr"], "ssim": m["ssim"],
                          "train_seconds": info["train_seconds"], "n_gaussians": m["n_gaussians"]})
            print(json.dumps(curve[-1]), flush=True)

    with tempfile.TemporaryDirectory() as ws:
        metrics = pipeline.reconstruct(scene, Path(ws), cfg, {"kind": "path", "path": str(data_root / folder)},
                                       device=device, progress=sys.stderr.isatty(), on_step=on_step)
    result = {"case": case, "scene": folder, "preset": preset or default_preset,
              **{k: metrics[k] for k in ("psnr", "ssim", "train_seconds", "peak_gpu_mem_mb",
                                         "n_gaussians", "n_test_views", "steps", "device")},
              "load_seconds": load_seconds, **environment(), "config": cfg.to_dict(),
              "curve": curve, "psnr_per_view": metrics["psnr_per_view"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="+", choices=sorted(CASES))
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--steps", type=int)
    p.add_argument("--preset")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], help="config override, e.g. optim.batch_size=4")
    p.add_argument("--tag", default="", help="suffix of the result file name")
    p.add_argument("--eval-at", default="", help="comma-separated steps to also evaluate at (not timed)")
    a = p.parse_args(argv)
    eval_at = tuple(int(x) for x in a.eval_at.split(",") if x)
    for case in a.cases:
        r = run_case(case, a.data, a.out, a.steps, a.preset, a.device, eval_at, tuple(a.set), a.tag)
        print(json.dumps({k: v for k, v in r.items() if k not in ("config", "psnr_per_view", "curve")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
