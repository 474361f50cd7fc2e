"""Read any splat file voxsplat writes (or 3DGS tools do) back into splat tensors."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from ...data.errors import VoxsplatError

SPLAT_SUFFIXES = (".ply", ".splat", ".spz")


def is_compressed_ply(path: str | os.PathLike) -> bool:
    """Whether a .ply holds SuperSplat's compressed layout: an element named ``chunk`` (its
    header read to ``end_header``, however long its comments)."""
    try:
        with open(path, "rb") as f:
            for line in f:
                words = line.split()
                if words[:1] == [b"end_header"]:
                    return False
                if words[:2] == [b"element", b"chunk"]:
                    return True
    except OSError:  # the reader says why
        return False
    return False


def read_splat_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """The Gaussians of a 3DGS ``.ply``, a compressed ``.ply``, a ``.splat`` or a ``.spz``
    (by suffix and, for ``.ply``, by its elements), as float32 splat tensors on the CPU.

    Raises:
        VoxsplatError: another suffix, or the file's own reader's errors.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise VoxsplatError(f"{path}: no such file or folder; give a workspace folder or a "
                            f"splat file ({', '.join(SPLAT_SUFFIXES)})")
    if suffix not in SPLAT_SUFFIXES:
        raise VoxsplatError(f"{path}: not a splat file; expected one of "
                            f"{', '.join(SPLAT_SUFFIXES)} (or a workspace folder)")
    if not path.is_file():
        raise VoxsplatError(f"{path}: no such file")
    if suffix == ".spz":
        from .spz import read_spz
        return read_spz(path)
    if suffix == ".splat":
        from .splat import read_splat
        return read_splat(path)
    if is_compressed_ply(path):
        from .compressed_ply import read_compressed_ply
        return read_compressed_ply(path)
    from .ply import read_ply
    return read_ply(path)
