"""The optimization's progress bar, with a time-left estimate that knows coarse-to-fine.

Coarse-to-fine training (`optim.coarse_levels`) runs its first steps on images halved `level`
times, which cost a fraction of a full-size step (on a 2-core CPU, 10-60x less). tqdm's own
estimate extrapolates the current rate, so it promises minutes for an hour-long run while the
coarse steps last. `StepTimes` keeps each level's recent step time, fits ``t = a + b * pixels``
over the levels seen (a: the per-step cost that does not depend on the image size, such as the
voxel model's backbone), and sums the remaining steps of the schedule. Until two levels have
been seen the split between `a` and `b` is unknown, and the bar says ``left=?``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable, Mapping, Optional

MIN_STEPS = 5
"""Steps a level needs before its time counts (its first steps may warm caches up)."""

SMOOTHING = 0.05
"""Weight of each new step in a level's moving-average step time (the model grows as it trains)."""


def level_step_seconds(seen: Mapping[int, float], level: int) -> Optional[float]:
    """The time of a step at `level` (images halved `level` times) from `seen` {level: seconds
    a step}: measured, or fitted as ``a + b * 4**-level`` (a, b >= 0) over the measured
    levels; None with fewer than two measured levels to fit."""
    if level in seen:
        return seen[level]
    if len(seen) < 2:
        return None
    xs = [4.0 ** -lv for lv in seen]
    ys = list(seen.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    if b < 0:  # larger images not slower: a flat cost
        a, b = my, 0.0
    elif a < 0:  # a line through the origin: cost in proportion to the pixels
        a, b = 0.0, sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)
    return a + b * 4.0 ** -level


def seconds_left(seen: Mapping[int, float], todo: Mapping[int, int]) -> Optional[float]:
    """Seconds the `todo` {level: steps} will take at the step times `seen` {level: seconds};
    None when a level to do can be neither measured nor fitted."""
    total = 0.0
    for level, steps in todo.items():
        if steps <= 0:
            continue
        t = level_step_seconds(seen, level)
        if t is None:
            return None
        total += steps * t
    return total


class StepTimes:
    """Per-level step times of one run, and the time its remaining steps should take.

    `level_of(step)` gives the level of step `step` (0-based) in a run of `total` steps."""

    def __init__(self, level_of: Callable[[int], int], total: int):
        self.level_of = level_of
        self._steps: dict[int, list[int]] = {}  # {level: its steps, in order}
        for step in range(total):
            self._steps.setdefault(level_of(step), []).append(step)
        self._mean: dict[int, float] = {}
        self._count: dict[int, int] = {}
        self._pending: list[tuple[int, float]] = []

    def add(self, step: int, seconds: float) -> None:
        """Record that step `step` took `seconds` (on a GPU, maybe only to queue its kernels)."""
        self._pending.append((step, seconds))

    def flush(self) -> None:
        """Share the time of the steps added since the last flush evenly among them: call it
        where the device has caught up (a step that read its loss back), so that on a GPU the
        time one step waited counts for the queued steps before it."""
        if not self._pending:
            return
        each = sum(t for _, t in self._pending) / len(self._pending)
        for step, _ in self._pending:
            self._add(step, each)
        self._pending.clear()

    def _add(self, step: int, seconds: float) -> None:
        level = self.level_of(step)
        n = self._count.get(level, 0) + 1
        self._count[level] = n
        if n <= MIN_STEPS:  # a plain mean until the level counts, then a moving average
            self._mean[level] = self._mean.get(level, 0.0) + (seconds - self._mean.get(level, 0.0)) / n
        else:
            self._mean[level] += SMOOTHING * (seconds - self._mean[level])

    def seen(self) -> dict[int, float]:
        """{level: seconds a step} for the levels with at least MIN_STEPS steps."""
        return {lv: t for lv, t in self._mean.items() if self._count[lv] >= MIN_STEPS}

    def left(self, done: int) -> Optional[float]:
        """Seconds the steps after the first `done` should take (after a `flush`); None while
        unknown."""
        todo = {lv: len(steps) - bisect_left(steps, done) for lv, steps in self._steps.items()}
        return seconds_left(self.seen(), todo)


def format_seconds(seconds: Optional[float]) -> str:
    """``?``, ``MM:SS`` or ``H:MM:SS``, as tqdm writes times."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def progress_bar(total: int, start: int, enabled: bool, coarse: bool):
    """The optimization's tqdm bar (None when not `enabled`). With `coarse` (coarse-to-fine
    steps) its time left is the one the caller passes in the postfix (``left=``)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm
    fmt = ("{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]" if coarse
           else None)
    return tqdm(total=total, initial=start, desc="optimize", unit="step", dynamic_ncols=True,
                bar_format=fmt)
