"""Atomic file output: write to a temp file beside the target, then rename over it.

An interrupted run never leaves a truncated file at the final path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


_RANDOM = r"[a-z0-9_]{8}"
"""The random part of a `tempfile.mkstemp` / `mkdtemp` name."""


def part_name(path: Path, stem: str | None = None) -> re.Pattern:
    """The names `atomic_path` gives the temp files of `path` (``.STEM.XXXXXXXX.partSUFFIX``);
    `stem`, a regular expression, stands for a family of stems (``step_\\d{6,}``)."""
    stem = re.escape(path.stem) if stem is None else stem
    return re.compile(rf"\.{stem}\.{_RANDOM}\.part{re.escape(path.suffix)}")


def output_of(path: str | os.PathLike) -> Path:
    """The output a temp path belongs to: `path` itself, or where it is (or lies inside) a
    temp copy that `atomic_path` (``.NAME.XXXXXXXX.partSUFFIX``) or `temp_folder_beside`
    (``.NAME.XXXXXXXX``) made, the file or folder that copy becomes (for messages)."""
    path = Path(path)
    for part in (path, *path.parents):
        for pattern, name in ((rf"\.(.+)\.{_RANDOM}\.part(\..*)?", r"\1\2"),
                              (rf"\.(.+)\.{_RANDOM}", r"\1")):
            if re.fullmatch(pattern, part.name):
                return part.with_name(re.sub(pattern, name, part.name))
    return path


def remove_stale_parts(folder: Path, name: re.Pattern) -> None:
    """Delete the temp files in `folder` whose names match `name`: what a killed writer
    (SIGKILL, power loss) left, which no `except` could remove."""
    if folder.is_dir():
        for p in folder.iterdir():
            if name.fullmatch(p.name) and p.is_file():
                p.unlink(missing_ok=True)


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> None:
    """Raise a VoxsplatError, before any work, where a file cannot be written at `path`: it
    is a folder, or a folder on its way is a file."""
    from .errors import VoxsplatError
    path = Path(path)
    if path.is_dir():
        raise VoxsplatError(f"{flag} {path}: is a folder; give a file name, e.g. "
                            f"{path / ('out' + (path.suffix or '.ply'))}")
    check_output_parent(path, flag)


def check_output_parent(path: str | os.PathLike, flag: str = "--out") -> None:
    """Raise a VoxsplatError where a folder on the way to `path` is a file."""
    from .errors import VoxsplatError
    for parent in Path(path).parents:
        if parent.exists():
            if not parent.is_dir():
                raise VoxsplatError(f"{flag} {path}: {parent} is a file, not a folder; give "
                                    f"another path")
            return


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to `path` on success.

    The temp name keeps the target's suffix (writers such as imageio pick the format from it).
    On any exception the temp file is removed and the target is left untouched; temp files
    of `path` that a killed writer left are removed first.
    """
    path = Path(path)
    check_output_file(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path.parent, part_name(path))
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


OUTPUT_MARKER = ".voxsplat-output"
"""The file that marks a folder of PNGs as written by voxsplat (see `check_replaceable`)."""


def mark_output(folder: Path, what: str) -> None:
    """Mark `folder` (a finished output's temp folder) as ours: a later run may replace it."""
    (Path(folder) / OUTPUT_MARKER).write_text(f"{what}, written by voxsplat: the next run with "
                                              f"this output folder replaces the whole folder\n")


def check_replaceable(folder: str | os.PathLike, suffixes: tuple[str, ...] = (".png",)) -> None:
    """Raise a VoxsplatError unless `folder` is absent, empty, or an earlier output of ours:
    `OUTPUT_MARKER` and files with these suffixes only. `replace_folder` deletes what it
    replaces, so an output folder must never be a workspace or a folder of the user's data
    (photos and masks are PNGs too)."""
    from .errors import VoxsplatError
    folder = Path(folder)
    check_output_parent(folder, "output")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise VoxsplatError(f"{folder}: exists and is not a folder; give a folder name for the "
                            f"output")
    entries = [p for p in folder.iterdir() if p.name != OUTPUT_MARKER]
    if not entries and not (folder / OUTPUT_MARKER).exists():
        return
    other = [p.name for p in entries if not (p.is_file() and p.suffix.lower() in suffixes)]
    if other:
        raise VoxsplatError(f"{folder}: holds {other[0]!r} and other files this output would "
                            f"delete; give a new or empty folder")
    if not (folder / OUTPUT_MARKER).is_file():
        raise VoxsplatError(f"{folder}: holds {entries[0].name!r} and other files that voxsplat "
                            f"did not write (no {OUTPUT_MARKER}), which this output would delete; "
                            f"give a new or empty folder")


def temp_folder_beside(folder: Path) -> Path:
    """A new hidden folder beside `folder` (``.NAME.XXXXXXXX``) to write its next version in,
    for `replace_folder`. The ones a killed writer left (SIGKILL, power loss: no `except` ran)
    are removed first, with the old versions a killed `replace_folder` left."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(rf"\.{re.escape(folder.name)}\.(old\.)?{_RANDOM}")
    for p in folder.parent.iterdir():
        if stale.fullmatch(p.name) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))


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
