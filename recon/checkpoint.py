"""Checkpoints: everything needed to resume a run at the same step, written atomically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import torch

from ..data.atomic import atomic_path, part_name, remove_stale_parts

_NAME = re.compile(r"^step_(\d{6,})\.pt$")
_PART = part_name(Path("step.pt"), stem=r"step_\d{6,}")
"""A checkpoint's temp file (`data.atomic.atomic_path`)."""


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:06d}.pt"


def latest_checkpoint(folder: Path) -> Optional[Path]:
    """The checkpoint with the highest step in `folder`, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None


def save_checkpoint(folder: Path, step: int, payload: dict, keep: int = 2) -> Path:
    """Write `payload` as step_<step>.pt (atomically) and delete all but the newest `keep`."""
    path = checkpoint_path(folder, step)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    remove_stale_parts(Path(folder), _PART)  # of other steps, from a killed run
    found = sorted((int(m.group(1)), p) for p in Path(folder).iterdir() if (m := _NAME.match(p.name)))
    for _, old in found[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, device) -> dict:
    return torch.load(path, map_location=device, weights_only=False)
