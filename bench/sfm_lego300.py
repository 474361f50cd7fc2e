"""SfM of 300 photos the way `auto` poses them (more than 150: retrieval matching), against
matching every pair: lego's 100 training and 200 test views (400x400) in one folder, posed
from the photos alone and compared with the scene's own poses.

python3 bench/sfm_lego300.py OUT.json [--data ../shared/data] [--matchers auto,exhaustive]
"""
import argparse
import json
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from voxsplat.data.load import load_scene
from voxsplat.recon.sfm import SfmConfig, load_or_run_sfm
from voxsplat.recon.sfm.colmap_steps import version
from voxsplat.recon.sfm.evaluate import pose_errors
from voxsplat.recon.sfm.run import REPORT_FILE, SFM_DIR

ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path)
ap.add_argument("--data", type=Path, default=Path("../shared/data"))
ap.add_argument("--matchers", default="auto,exhaustive")
args = ap.parse_args()
root = args.data / "nerf_synthetic_lego_400"
given = load_scene(root)  # names "train/r_0", "test/r_0", ...
index = {n: i for i, n in enumerate(given.names)}
runs = []
for matcher in args.matchers.split(","):
    with tempfile.TemporaryDirectory() as work:
        photos = Path(work) / "photos"
        photos.mkdir()
        for split in ("train", "test"):
            for p in (root / split).glob("r_*.png"):
                if "_depth" not in p.stem and "_normal" not in p.stem:
                    shutil.copy2(p, photos / f"{split}_{p.name}")
        t0 = time.perf_counter()
        scene = load_or_run_sfm(photos, Path(work) / "ws", replace(SfmConfig(), matcher=matcher),
                                progress=False)
        seconds = time.perf_counter() - t0
        report = json.loads((Path(work) / "ws" / SFM_DIR / REPORT_FILE).read_text())
    gt = given.cameras.cam_from_world[[index[n.replace("_", "/", 1)] for n in scene.names]]
    r = {"matcher": matcher, "used": report["matcher"], "n_images": len(list(index)),
         "registered": len(scene.names), "seconds": seconds, "stage_seconds": report["seconds"],
         **pose_errors(scene.cameras.cam_from_world.double().numpy(), gt.double().numpy())}
    print(json.dumps(r), flush=True)
    runs.append(r)
args.out.write_text(json.dumps({"runs": runs, "pycolmap": version(), "python": platform.python_version(),
                                "machine": "2-core CPU", "config": SfmConfig().to_dict()}, indent=1) + "\n")
