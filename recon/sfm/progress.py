"""Per-stage progress of SfM: tqdm bars on stderr, a user callback, or nothing."""

from __future__ import annotations

import sys
import threading
from typing import Callable, Optional, Union

ProgressFn = Callable[[str, int, int], None]
"""Called as progress(stage, done, total), e.g. ("features", 3, 11); stages: `frames`,
`features`, `matching` (in blocks of image pairs, images for sequential matching, or
percent for retrieval's two passes),
`mapping` (done = images registered so far), `undistortion`."""

Progress = Union[bool, ProgressFn]
UNITS = {"frames": "frame", "features": "image", "matching": "block", "mapping": "image",
         "undistortion": "image"}
"""What each stage's bar counts (`start` takes another: sequential matching counts images,
retrieval percent)."""


class StageProgress:
    """Reports stages to a tqdm bar (progress=True), to a callback, or not at all.

    Updates may come from COLMAP's worker threads; they are serialized by a lock.
    """

    def __init__(self, progress: Progress) -> None:
        self._callback: Optional[ProgressFn] = progress if callable(progress) else None
        self._bars = bool(progress) and self._callback is None
        self._bar = None
        self._stage, self._total, self._done = "", 0, 0
        self._lock = threading.Lock()

    def start(self, stage: str, total: int, unit: Optional[str] = None) -> None:
        """Begin `stage` with `total` items (closes the previous stage's bar); `unit`: what
        they are, by default `UNITS[stage]`."""
        self.close()
        with self._lock:
            self._stage, self._total, self._done = stage, max(0, int(total)), 0
            if self._bars:
                from tqdm.auto import tqdm
                self._bar = tqdm(total=self._total, desc=f"sfm {stage}", dynamic_ncols=True,
                                 unit=unit or UNITS.get(stage, "it"), file=sys.stderr)
        self._emit()

    def set(self, done: int, total: Optional[int] = None) -> None:
        """Set the number of items of the current stage done so far (and its total)."""
        with self._lock:
            if total is not None and int(total) != self._total:
                self._total = int(total)
                if self._bar is not None:
                    self._bar.total = self._total
                    self._bar.refresh()
            done = min(int(done), self._total) if self._total else int(done)
            if self._bar is not None and done > self._done:
                self._bar.update(done - self._done)
            self._done = done
        self._emit()

    def note(self, message: str) -> None:
        """A one-line remark (printed with progress bars; callbacks don't get it)."""
        if self._bars:
            print(f"sfm: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the current stage's bar, if any."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _emit(self) -> None:
        if self._callback is not None and self._stage:
            self._callback(self._stage, self._done, self._total)
