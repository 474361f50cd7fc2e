"""An interrupted SfM run goes on from its features and matches.

A run works in a hidden folder (`OUT/.sfm.XXXX`, see `run`) whose `resume.json` names what
its COLMAP database was made from: the photos (names, sizes and the files' bytes), the SfM
config, the matcher and, when features are taken inside masks, the masks. When a run stops
for any reason but its input (Ctrl-C, a crash, out of memory, a killed process), the folder
keeps its database. The next run with the same key moves that database into its own folder:
COLMAP's extractor skips the images that have features, and its matchers skip the pairs
that are matched, so only the rest is computed. Leftovers with another key are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path
from typing import Optional, Sequence

from .config import SfmConfig
from .inputs import InputImage

RESUME_FILE = "resume.json"
DATABASE = "database.db"
WORK_PREFIX = ".sfm."
"""Name prefix of a run's hidden work folder in OUT (made by `run.run_sfm`)."""


def kept(out_dir: Path) -> list[Path]:
    """The work folders in `out_dir` that carry a key: stopped runs' (or one in progress)."""
    return sorted(p for p in Path(out_dir).glob(WORK_PREFIX + "*") if (p / RESUME_FILE).is_file())


def resume_key(images: Sequence[InputImage], config: SfmConfig, matcher: str,
               feature_mask_dir: Optional[Path], pycolmap_version: str) -> dict:
    """What a database depends on (JSON-ready). `feature_mask_dir`: the staged masks when
    features are taken only inside them, else None."""
    photos = hashlib.sha256()  # by content: a video's frames are written again on each run
    for im in images:
        photos.update(f"{im.name}\0{im.width}\0{im.height}\0".encode())
        with open(im.source, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                photos.update(block)
    masks = None
    if feature_mask_dir is not None:
        h = hashlib.sha256()
        for p in sorted(feature_mask_dir.iterdir()):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        masks = h.hexdigest()
    config_json = json.loads(json.dumps(config.to_dict()))  # as read back (tuples -> lists)
    return {"photos": photos.hexdigest(), "n_photos": len(images), "config": config_json,
            "matcher": matcher, "feature_masks": masks, "pycolmap": pycolmap_version}


def start(work: Path, key: dict) -> Optional[Path]:
    """Record `key` in the new work folder `work`; move in the database of an earlier run in
    `work.parent` that stopped with the same key (returns the folder it came from), and
    remove the leftovers of runs with other keys."""
    (work / RESUME_FILE).write_text(json.dumps(key))
    found = None
    for old in kept(work.parent):
        if old == work:
            continue
        try:
            same = json.loads((old / RESUME_FILE).read_text()) == key
        except (OSError, ValueError):
            same = False
        if same and found is None and (old / DATABASE).is_file():
            (old / DATABASE).replace(work / DATABASE)
            found = old
        shutil.rmtree(old, ignore_errors=True)
    return found


def keep(work: Path) -> bool:
    """After a run stopped: keep only the work folder's key and database (True), or nothing
    to keep (False: no database yet)."""
    if not (work / DATABASE).is_file() or not (work / RESUME_FILE).is_file():
        return False
    for p in work.iterdir():
        if p.name not in (DATABASE, RESUME_FILE):
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    return True
