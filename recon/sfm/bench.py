"""SfM benchmark cases on the shared real scenes; each writes `sfm_<case>.json`.

usage: python -m voxsplat.recon.sfm.bench [CASE ...] [--data ../shared/data]
       [--out bench/results] [--preset default|fast] [--max-image-size N]

Cases: `fountain` (Strecha fountain-P11: registered views, rotation error in degrees and
camera-centre error as a fraction of the scene extent after a similarity alignment to the
ground truth), `kitchen` (Mip-NeRF 360 kitchen, 25 views) and `sacre_coeur` (10 internet
photos from different cameras): registered views and seconds. Each result also records the
process CPU time and the machine's load average, since wall times on a shared machine
depend on what else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .colmap_steps import version
from .config import SfmConfig, sfm_preset
from .evaluate import pose_errors
from .run import REPORT_FILE, SFM_DIR, load_or_run_sfm

# case -> (scene folder under the data root, ground-truth camera folder or None)
CASES = {
    "fountain": ("strecha_fountain_p11_half", "gt_dense_cameras"),
    "kitchen": ("mipnerf360_kitchen_25_unposed", None),
    "sacre_coeur": ("sacre_coeur_10_unposed", None),
}


def read_strecha_camera(path: Path) -> np.ndarray:
    """[4,4] OpenCV cam_from_world from a Strecha `.camera` file.

    The file holds K (3 rows), the distortion row, R (3 rows, camera-to-world rotation), the
    camera centre C and the image size.
    """
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    R_world_from_cam = np.array(rows[4:7], dtype=np.float64)
    center = np.array(rows[7], dtype=np.float64)
    pose = np.eye(4)
    pose[:3, :3] = R_world_from_cam.T
    pose[:3, 3] = -R_world_from_cam.T @ center
    return pose


def _accuracy(scene, gt_dir: Path) -> dict:
    """Pose errors of the registered views against the Strecha ground truth."""
    files = [gt_dir / f"{name}.jpg.camera" for name in scene.names]
    gt = np.stack([read_strecha_camera(f) for f in files])
    return pose_errors(scene.cameras.cam_from_world.double().numpy(), gt)


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_case(case: str, data_root: Path, out_dir: Path, config: SfmConfig) -> dict:
    """Run SfM on one case and write `out_dir/sfm_<case>.json`."""
    folder, gt_folder = CASES[case]
    images = data_root / folder / "images"
    if not images.is_dir():
        raise SystemExit(f"{images}: benchmark data not found; pass --data pointing at shared/data")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        scene = load_or_run_sfm(images, Path(work), config, progress=sys.stderr.isatty())
        seconds, cpu_seconds = time.perf_counter() - t0, _cpu_seconds() - cpu0
        report = json.loads((Path(work) / SFM_DIR / REPORT_FILE).read_text())
    result = {"case": case, "scene": folder, "n_images": len(report["images"]),
              "registered": len(report["registered"]), "unregistered": report["unregistered"],
              "seconds": seconds, "cpu_seconds": cpu_seconds, "stage_seconds": report["seconds"],
              "load_avg_before": load_before, "load_avg_after": os.getloadavg()[0],
              "n_points": report["n_points"], "n_cameras": report["n_cameras"],
              "mean_reprojection_error_px": report["mean_reprojection_error_px"],
              "matcher": report["matcher"]}
    if gt_folder is not None:
        result.update(_accuracy(scene, data_root / folder / gt_folder))
    result.update(config=config.to_dict(), pycolmap=version(), python=platform.python_version(),
                  cpu_count=os.cpu_count())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"sfm_{case}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the named cases (default: all) and print one JSON summary line per case."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", choices=sorted(CASES), help="default: all")
    p.add_argument("--data", type=Path,
                   default=Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--preset", default="default", help="SfM preset: default or fast")
    p.add_argument("--max-image-size", type=int, help="override the preset's max_image_size")
    a = p.parse_args(argv)
    config = sfm_preset(a.preset)
    if a.max_image_size:
        config = replace(config, max_image_size=a.max_image_size)
    for case in a.cases or sorted(CASES):
        r = run_case(case, a.data, a.out, config)
        print(json.dumps({k: v for k, v in r.items() if k not in ("config", "stage_seconds")}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
