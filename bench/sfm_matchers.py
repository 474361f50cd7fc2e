"""SfM's matchers on one set of unordered photos with known poses: registration, pose errors
against the scene's poses and matching time, for exhaustive, sequential and retrieval matching.

python3 bench/sfm_matchers.py OUT.json [--data ../shared/data] [--matchers exhaustive,sequential,retrieval]

The set: lego's 100 training views (400x400), whose names (r_0 ... r_99) say nothing of where
the camera stood (random places on the upper hemisphere), as an unordered photo folder; the
scene's own poses are the reference (`recon/sfm/bench_fewview.run_set`).
"""
import argparse
import json
import platform
import sys
from dataclasses import replace
from pathlib import Path

from voxsplat.recon.sfm import SfmConfig
from voxsplat.recon.sfm import bench_fewview
from voxsplat.recon.sfm.colmap_steps import version

bench_fewview.SETS["lego_100"] = ("nerf_synthetic_lego_400", "train", tuple(f"r_{i}" for i in range(100)),
                                  "train/")

ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path)
ap.add_argument("--data", type=Path, default=Path("../shared/data"))
ap.add_argument("--matchers", default="exhaustive,sequential,retrieval")
args = ap.parse_args()
runs = []
for matcher in args.matchers.split(","):
    r = bench_fewview.run_set("lego_100", args.data, replace(SfmConfig(), matcher=matcher))
    r["matcher"] = matcher
    print(json.dumps(r), flush=True)
    runs.append(r)
args.out.write_text(json.dumps({"runs": runs, "pycolmap": version(), "python": platform.python_version(),
                                "machine": "2-core CPU", "config": SfmConfig().to_dict()}, indent=1) + "\n")
sys.exit(0)
