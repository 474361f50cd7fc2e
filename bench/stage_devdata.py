"""Stage a slim copy of ../shared/data for a GPU device call (it carries at most 64 MiB).

For each few-view case, the images of its train and test views are copied; every other image
becomes a blank stand-in of the same size and mode, so the readers see the same scene layout
(names, counts, camera files) at a fraction of the bytes. Usage, from the project root:

    python bench/stage_devdata.py .devdata/fv lego_8view fern_3view dtu24_3view

The output folder is git-ignored (`/.devdata/`): the data's licences keep it out of the repo.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def kept_names(case: str, data_root: Path) -> set[str]:
    """Scene names (e.g. `train/r_26`, `000025`) of the case's train and test views."""
    from voxsplat.scripts.bench_fewview import case_scene
    scene = case_scene(case, data_root)
    return {scene.names[i] for split in ("train", "test") for i in scene.split(split)}


def _kept(rel: Path, names: set[str]) -> bool:
    stem = rel.with_suffix("").as_posix()
    numeric = rel.stem.isdigit()  # DTU: image/000025.png and mask/025.png are view 25
    return any(stem == n or (rel.stem == n and "/" not in n)
               or (numeric and n.isdigit() and int(n) == int(rel.stem)) for n in names)


def stage_folder(src: Path, dst: Path, names: set[str]) -> tuple[int, int]:
    """Copy `src` to `dst`, blanking images not named in `names`; returns (kept, blanked)."""
    kept = blanked = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        out = dst / rel
        if path.is_dir():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in IMAGE_SUFFIXES and not _kept(rel, names):
            with Image.open(path) as im:
                Image.new(im.mode, im.size).save(out, format=im.format)
            blanked += 1
        else:
            shutil.copy2(path, out)
            kept += path.suffix.lower() in IMAGE_SUFFIXES
    return kept, blanked


def main(argv: list[str]) -> None:
    from voxsplat.scripts.bench_fewview import FEWVIEW_CASES
    out, cases = Path(argv[0]), argv[1:]
    data_root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    names_by_folder: dict[str, set[str]] = {}
    for case in cases:
        folder = FEWVIEW_CASES[case][0]
        names_by_folder.setdefault(folder, set()).update(kept_names(case, data_root))
    for folder, names in names_by_folder.items():
        dst = out / folder
        if dst.exists():
            shutil.rmtree(dst)
        kept, blanked = stage_folder(data_root / folder, dst, names)
        print(f"{folder}: {kept} images kept, {blanked} blanked")


if __name__ == "__main__":
    main(sys.argv[1:])
