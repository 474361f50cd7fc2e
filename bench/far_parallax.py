"""How far each few-view protocol's farthest content moves across its training views, as a
share of the image width (`recon.sky.far_parallax`, what `sky.mode far` decides by), from the
depth stage the `sparse` preset's voxel model runs.

    python3 bench/far_parallax.py --data ../shared/data --out result.json [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from voxsplat.recon import pipeline
from voxsplat.recon.config import preset
from voxsplat.recon.engine import resolve_device
from voxsplat.recon.sky import depth_far_parallax
from voxsplat.scripts.bench import environment
from voxsplat.scripts.bench_fewview import FEWVIEW_CASES, case_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=["fern_3view", "dtu24_3view", "lego_8view"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    cfg, dev, rows = preset("sparse", "voxel"), resolve_device(args.device), []
    for case in args.cases:
        scene = case_scene(case, args.data)
        if FEWVIEW_CASES[case][2]:  # masks for the metrics only (DTU), as bench_fewview trains
            scene = replace(scene, masks=None)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as ws:  # the run's own depth stage
            _, depth = pipeline.dense_depth_stage(scene, cfg, Path(ws), dev, progress=False)
        if depth is None:  # no depth stage (lego: masks), so no sky either
            rows.append({"case": case, "far_parallax": None, "masked": scene.masked("train")})
            print(rows[-1], flush=True)
            continue
        share = depth_far_parallax(depth, scene.split("train"))  # (what the run decides by)
        rows.append({"case": case, "far_parallax": share, "n_matched": depth.n_matched,
                     "sky": share is not None and share <= cfg.sky.far_parallax,
                     "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bound": cfg.sky.far_parallax, "rows": rows,
                                    **environment()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
