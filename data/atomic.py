"""Atomic file output: write to a temp file beside the target, then rename over it.

An interrupted run never leaves a truncated file at the final path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to `path` on success.

    The temp name keeps the target's suffix (writers such as imageio pick the format from it).
    On any exception the temp file is removed and the target is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temp file for writing; it replaces `path` only if the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            yield f


def check_replaceable(folder: str | os.PathLike, suffixes: tuple[str, ...] = (".png",)) -> None:
    """Raise a VoxsplatError unless `folder` is absent, empty, or holds only files with these
    suffixes (what an earlier run wrote there): `replace_folder` deletes what it replaces, so an
    output folder must never be a workspace or a folder of the user's data."""
    from .errors import VoxsplatError
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise VoxsplatError(f"{folder}: exists and is not a folder; give a folder name for the "
                            f"output")
    other = [p.name for p in folder.iterdir() if not (p.is_file() and p.suffix.lower() in suffixes)]
    if other:
        raise VoxsplatError(f"{folder}: holds {other[0]!r} and other files this output would "
                            f"delete; give a new or empty folder (an earlier output of this "
                            f"kind, {'/'.join(suffixes)} files only, is replaced)")


def replace_folder(tmp: Path, target: Path) -> None:
    """Move the finished folder `tmp` to `target`, replacing an older one only once it is done."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the folder the usual permissions
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
