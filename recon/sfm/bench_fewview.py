"""SfM on a handful of photos: registration and pose accuracy against the scenes' own poses.

usage: python -m voxsplat.recon.sfm.bench_fewview [SET ...] [--data ../shared/data]
       [--out bench/results/sfm_fewview.json] [--seeds 0,1,2] [--guided auto,no,yes]

Each set copies a few photos of a posed scene into a folder and poses that folder as a user's
photos would be (`load_or_run_sfm`, default settings but for `guided_matching` and the seed).
The registered cameras are compared with the scene's given poses after a similarity
alignment (`evaluate.pose_errors`). A set that does not register counts as failed, with the
error's first line. Sets: DTU scan24 (400x300) with its protocol's 3 training views and 3 or
6 neighbours more (the 6: 12-17 degrees from the nearest other), fern (504x378) with 3 and
5 photos picked as the LLFF protocol picks them, lego's 8-view protocol photos (400x400,
each 24-35 degrees from its nearest other).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...data.errors import VoxsplatError
from ...data.load import load_scene
from .colmap_steps import version
from .config import SfmConfig
from .evaluate import pose_errors, relative_pose_errors
from .run import REPORT_FILE, SFM_DIR, load_or_run_sfm

_DTU = tuple(f"{i:06d}" for i in (22, 25, 28, 23, 26, 29, 21, 24, 27))
_LEGO = ("r_26", "r_86", "r_2", "r_55", "r_75", "r_93", "r_16", "r_73")


def _fern(n: int) -> tuple[str, ...]:
    """`n` of fern's 20 photos as the LLFF protocol picks training views: evenly (np.linspace,
    rounded) from those whose index is not a multiple of 8."""
    rest = [i for i in range(20) if i % 8]
    return tuple(f"image{rest[k]:03d}" for k in np.round(np.linspace(0, len(rest) - 1, n)).astype(int))


# set -> (scene folder, photo folder inside it, photo stems, the scene's name prefix)
SETS = {
    "dtu24_3": ("dtu_scan24_400x300", "image", _DTU[:3], ""),
    "dtu24_6": ("dtu_scan24_400x300", "image", _DTU[:6], ""),
    "dtu24_9": ("dtu_scan24_400x300", "image", _DTU, ""),
    "fern_2": ("llff_fern", "images_8", _fern(2), ""),
    "fern_3": ("llff_fern", "images_8", _fern(3), ""),
    "fern_5": ("llff_fern", "images_8", _fern(5), ""),
    "lego_8": ("nerf_synthetic_lego_400", "train", _LEGO, "train/"),
}


def stage_photos(photos: Path, stems: Sequence[str], folder: Path) -> None:
    """Copy the photos named `stems` (any extension) from `photos` into `folder`."""
    folder.mkdir(parents=True)
    by_stem = {p.stem: p for p in photos.iterdir()}
    for stem in stems:
        shutil.copy2(by_stem[stem], folder / by_stem[stem].name)


def run_set(name: str, data_root: Path, config: SfmConfig) -> dict:
    """Pose one set's photos; registration, pose errors against the scene's poses, seconds."""
    folder, photo_dir, stems, prefix = SETS[name]
    root = data_root / folder
    if not (root / photo_dir).is_dir():
        raise SystemExit(f"{root / photo_dir}: benchmark data not found; pass --data pointing at "
                         f"shared/data")
    result = {"set": name, "n_images": len(stems), "seed": config.seed,
              "guided_matching": config.guided_matching}
    with tempfile.TemporaryDirectory() as work:
        stage_photos(root / photo_dir, stems, Path(work) / "photos")
        t0 = time.perf_counter()
        try:
            scene = load_or_run_sfm(Path(work) / "photos", Path(work) / "ws", config, progress=False)
        except VoxsplatError as e:
            return {**result, "registered": 0, "error": str(e).splitlines()[0],
                    "seconds": time.perf_counter() - t0}
        seconds = time.perf_counter() - t0
        report = json.loads((Path(work) / "ws" / SFM_DIR / REPORT_FILE).read_text())
    given = load_scene(root)
    index = {n: i for i, n in enumerate(given.names)}
    gt = given.cameras.cam_from_world[[index[prefix + n] for n in scene.names]]
    result.update(registered=len(scene.names), n_points=int(len(scene.points)), seconds=seconds,
                  guided=report["guided_matching"], stage_seconds=report["seconds"])
    est = scene.cameras.cam_from_world.double().numpy()
    if len(scene.names) >= 3:
        result.update(pose_errors(est, gt.double().numpy()))
    elif len(scene.names) == 2:
        result.update(relative_pose_errors(est, gt.double().numpy()))
    K_gt = given.cameras.Ks[index[prefix + scene.names[0]]]
    width_gt = int(given.cameras.widths[index[prefix + scene.names[0]]])
    result["focal_ratio"] = float(scene.cameras.Ks[0, 0, 0] / scene.cameras.widths[0]
                                  / (K_gt[0, 0] / width_gt))
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the sets (default: all) for each seed and guided setting; write one JSON file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="*", help=f"any of {', '.join(SETS)} (default: all)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/sfm_fewview.json"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--guided", default="auto,no,yes")
    args = ap.parse_args(argv)
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        ap.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    runs = []
    for name in args.sets or list(SETS):
        for guided in args.guided.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                r = run_set(name, args.data, replace(SfmConfig(), guided_matching=guided, seed=seed))
                print(json.dumps(r), flush=True)
                runs.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"runs": runs, "pycolmap": version(), "python": platform.python_version(),
           "config": SfmConfig().to_dict()}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
