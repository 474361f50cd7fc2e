"""Stage a posed workspace (`voxsplat poses` output) for a GPU device call, at reduced size.

pycolmap does not fit on the GPU machine, so SfM runs here and its model travels: the binary
model in `SRC/sfm/sparse/0` is copied, and the undistorted images are resized by SCALE and
stored as JPEG under their original names (the COLMAP reader scales the intrinsics of
uniformly resized images). Usage, from the project root:

    voxsplat poses ../shared/data/mipnerf360_kitchen_25_unposed --out /tmp/kitchen_poses
    python bench/stage_colmap.py /tmp/kitchen_poses .devdata/kitchen 0.5   # ~12 MiB
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image


def stage(src: Path, dst: Path, scale: float) -> int:
    """Copy the model and resized images of workspace `src` to the COLMAP scene `dst`."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src / "sfm" / "sparse" / "0", dst / "sparse" / "0")
    n = 0
    for path in sorted((src / "sfm" / "images").rglob("*")):
        if not path.is_file():
            continue
        out = dst / "images" / path.relative_to(src / "sfm" / "images")
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            size = (round(im.width * scale), round(im.height * scale))
            im.convert("RGB").resize(size, Image.LANCZOS).save(out, format="JPEG", quality=90)
        n += 1
    return n


if __name__ == "__main__":
    src, dst, scale = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    print(f"{stage(src, dst, scale)} images staged in {dst}")
