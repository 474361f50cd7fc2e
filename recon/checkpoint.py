"""Checkpoints: everything needed to resume a run at the same step, written atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from ..data.atomic import atomic_path, part_name, remove_stale_parts
from ..data.errors import VoxsplatError

_NAME = re.compile(r"^step_(\d{6,})\.pt$")
_PART = part_name(Path("step.pt"), stem=r"step_\d{6,}")
"""A checkpoint's temp file (`data.atomic.atomic_path`)."""


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:06d}.pt"


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoints in `folder`, newest (highest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(folder: Path) -> Optional[Path]:
    """The checkpoint with the highest step in `folder`, or None."""
    found = checkpoints(folder)
    return found[0] if found else None


LOW_DISK_BYTES = 256 * 2**20
"""Where torch.save fails with this little space left on the disk, the disk is full."""


def torch_save(payload, tmp: Path, path: Path) -> None:
    """`torch.save(payload, tmp)` (the temp file of `path`), where a full disk raises an
    OSError (ENOSPC, naming `path`), which the CLI turns into one line: torch's own error is
    a RuntimeError ("unexpected pos", "iostream error") with a traceback."""
    try:
        torch.save(payload, tmp)
    except RuntimeError:
        try:
            stat = os.statvfs(Path(tmp).parent)
            full = stat.f_bavail * stat.f_frsize < LOW_DISK_BYTES
        except (OSError, AttributeError):  # (no statvfs on Windows)
            full = False
        if not full:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None


def save_checkpoint(folder: Path, step: int, payload: dict, keep: int = 2) -> Path:
    """Write `payload` as step_<step>.pt (atomically) and delete all but the newest `keep`."""
    path = checkpoint_path(folder, step)
    with atomic_path(path) as tmp:
        torch_save(payload, tmp, path)
    remove_stale_parts(Path(folder), _PART)  # of other steps, from a killed run
    found = sorted((int(m.group(1)), p) for p in Path(folder).iterdir() if (m := _NAME.match(p.name)))
    for _, old in found[:-keep]:
        old.unlink(missing_ok=True)
    return path


def foreign_files(folder: Path) -> list[str]:
    """The names of the entries of `folder` that are no checkpoint of ours (nor its temp file)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not (_NAME.match(p.name) or _PART.match(p.name)))


def remove_checkpoints(folder: Path) -> None:
    """Delete the checkpoints of `folder` (and their temp files); the folder goes when empty."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if _NAME.match(p.name) or _PART.match(p.name):
            p.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


def load_checkpoint(path: Path, device) -> dict:
    """The checkpoint at `path`.

    Raises:
        VoxsplatError: it cannot be read (truncated by a full disk, copied in part, not ours).
    """
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(ckpt, dict) or not {"step", "model"} <= ckpt.keys():
            raise ValueError("not a voxsplat checkpoint")
        return ckpt
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError,
            AttributeError, ImportError, IndexError, KeyError, TypeError) as e:
        raise VoxsplatError(f"{path}: cannot read the checkpoint ({str(e).splitlines()[0]}); "
                            f"delete it to resume from an earlier one, or run without "
                            f"--resume") from None


def require_checkpoints(folder: Path) -> list[Path]:
    """`checkpoints(folder)`, which --resume needs one of.

    Raises:
        VoxsplatError: there is none.
    """
    found = checkpoints(folder)
    if not found:
        raise VoxsplatError(f"{folder}: --resume, but there is no checkpoint to resume from; "
                            "run without --resume")
    return found


def load_latest_checkpoint(folder: Path, device) -> tuple[Path, dict]:
    """The newest checkpoint in `folder` that can be read, warning about newer ones that
    cannot (a run killed while the disk filled up).

    Raises:
        VoxsplatError: there is none, or none can be read.
    """
    found = require_checkpoints(folder)
    for i, path in enumerate(found):
        try:
            ckpt = load_checkpoint(path, device)
        except VoxsplatError as e:
            if i + 1 == len(found):
                if i == 0:
                    raise
                raise VoxsplatError(f"{folder}: none of its {len(found)} checkpoints can be "
                                    f"read (the last: {e}); run without --resume") from None
            warnings.warn(f"{str(e).split('; ')[0]}; resuming from {found[i + 1].name} (the "
                          f"unreadable one is removed)")
            continue
        for unreadable in found[:i]:  # (it would shadow the next ones, and count towards `keep`)
            unreadable.unlink(missing_ok=True)
        return path, ckpt
    raise AssertionError("unreachable")


@contextlib.contextmanager
def stop_at_step_end(enabled: bool = True) -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) or SIGTERM while training asks the loop to stop at the end of its step,
    where it saves a checkpoint (so that --resume goes on from there, not from the last
    periodic one); a second Ctrl-C stops at once. Yields the question "was a stop asked?". Off (Ctrl-C stops
    at once, as before) where not `enabled` (several processes: they could stop at different
    steps) or off the main thread (no signal handlers there)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = []

    def ask(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "Ctrl-C again to stop at once"
        print(f"\nvoxsplat: stopping after this step with a checkpoint ({what})", file=sys.stderr)

    # SIGTERM too: `docker stop`, `timeout`, a cluster's preemption (they send SIGKILL later)
    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(asked)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
