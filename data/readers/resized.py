"""Resized copies of a scene's photos (`images_4/` beside `images/`): LLFF's, Mip-NeRF 360's
and nerfstudio's layout. A downscaled load reads the smallest copy that is still at least
the asked size, instead of decoding every full-size photo and shrinking it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ..errors import VoxsplatError
from ..images import is_image_file, list_images, stored_size
from .common import resized_copy
from .colmap import find_colmap_model, find_image_folder as colmap_image_folder
from .llff import POSES_FILE, _load_poses, find_image_folder as llff_image_folder


def full_folder(kind: str, reader_path: Path) -> Optional[Path]:
    """The image folder a reader of `kind` ("llff" | "colmap") reads by default."""
    if kind == "llff":
        return llff_image_folder(reader_path, len(_load_poses(reader_path / POSES_FILE)))
    model_dir = find_colmap_model(reader_path)
    return colmap_image_folder(model_dir) if model_dir is not None else None


def full_longest_side(kind: str, reader_path: Path) -> Optional[int]:
    """The longest side of the full-size photos, in pixels, from their headers, where they
    all have one size (photos of mixed sizes are each capped on their own: `cap_size`); None
    otherwise, or where none opens."""
    full = full_folder(kind, reader_path)
    if full is None:
        return None
    files = list_images(full) if kind == "llff" else [full / n for n in _images_below(full)]
    sizes = [size for size in map(stored_size, files) if size is not None]
    return max(sizes[0]) if sizes and len(set(sizes)) == 1 else None


def _images_below(folder: Path) -> list[Path]:
    """Every image file under `folder`, sub-folders included (COLMAP names may have them)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*")
                  if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def _copy_images(kind: str, full: Path, copy: Path) -> Optional[tuple[Path, Path]]:
    """The first image of `full` and its counterpart in `copy`, where `copy` has one image per
    image of `full`: by name for COLMAP (the model names them), by count for LLFF (whose own
    `images_8/` turned `IMG_4026.JPG` into `IMG_4026.png`)."""
    if kind == "llff":
        ours, theirs = list_images(full), list_images(copy)
        return (ours[0], theirs[0]) if ours and len(ours) == len(theirs) else None
    names = _images_below(full)
    if not names or not all((copy / n).is_file() for n in names):
        return None
    return full / names[0], copy / names[0]


def _sizes(kind: str, full: Path, copy: Path) -> Optional[tuple[tuple[int, int], tuple[int, int]]]:
    """The (width, height) of the first image of `full` and of its counterpart in `copy`
    (`_copy_images`), from their headers; None where `copy` is no copy or either won't open."""
    pair = _copy_images(kind, full, copy)
    sizes = pair and (stored_size(pair[0]), stored_size(pair[1]))
    return None if not sizes or None in sizes else sizes


def resized_folder(kind: str, reader_path: Path, factor: float) -> Optional[str]:
    """The name of the resized copy (a sibling `NAME_<k>` of the scene's image folder `NAME`)
    to read for a load downscaled by `factor`: the one with the smallest images that are at
    least `factor` times the full size (a pixel of rounding allowed) and have its aspect
    ratio; None where no copy fits, or `factor` is 1."""
    full = full_folder(kind, reader_path) if factor < 1.0 else None
    if full is None:
        return None
    best = None
    pattern = re.compile(re.escape(full.name) + r"_(\d+)")
    for copy in full.parent.iterdir():
        if not (pattern.fullmatch(copy.name) and copy.is_dir()):
            continue
        sizes = _sizes(kind, full, copy)
        if sizes is None or not resized_copy(*reversed(sizes)):  # (another aspect ratio)
            continue
        (W, H), (w, h) = sizes
        if w >= W * factor - 1 and h >= H * factor - 1 and (best is None or w < best[1]):
            best = (copy.name, w)
    return best[0] if best else None


def factor_left(kind: str, reader_path: Path, folder: str, factor: float) -> float:
    """What the images of copy `folder` are still to be resized by, for the size the full
    images downscaled by `factor` would have: 1 where the copy has it (within a pixel)."""
    full = full_folder(kind, reader_path)
    sizes = _sizes(kind, full, full.parent / folder) if full is not None else None
    if sizes is None:
        raise VoxsplatError(f"{reader_path}: {folder}/ no longer holds a resized copy of each "
                            f"photo; put them back, or start over (--downscale picks a copy)")
    (W, H), (w, h) = sizes
    if abs(w - W * factor) <= 1 and abs(h - H * factor) <= 1:
        return 1.0
    return min(1.0, factor * W / w)
