"""The optimization's progress bar, with a time-left estimate that knows coarse-to-fine.

Coarse-to-fine training (`optim.coarse_levels`) runs its first steps on images halved `level`
times, which cost a fraction of a full-size step (on a 2-core CPU, 10-60x less). tqdm's own
estimate extrapolates the current rate, so it promises minutes for an hour-long run while the
coarse steps last. `StepTimes` keeps each level's recent step time per Gaussian, fits
``t = a + b * pixels`` over the levels seen (a: the per-step cost that does not depend on the
image size, such as the voxel model's backbone), and sums the remaining steps of the schedule at
the current number of Gaussians (their growth to come is not foreseen). Until two levels have
been seen the split between `a` and `b` is unknown, and the bar gives the range between the two
extremes (``left=05:10-18:20``: a = 0, or b = 0), or only its low end (``left=>05:10``) where
that range is too wide to tell much.
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


def seconds_left(seen: Mapping[int, float],
                 todo: Mapping[int, int]) -> Optional[tuple[float, float]]:
    """Seconds the `todo` {level: steps} will take at the step times `seen` {level: seconds}, as
    (low, high): equal where every level to do is measured or fitted; with one level measured,
    a level to do lies between that level's time (a cost that ignores the image size) and that
    time scaled by the pixel count (a cost in proportion to it). None with no level measured."""
    if not seen:
        return None
    low = high = 0.0
    for level, steps in todo.items():
        if steps <= 0:
            continue
        t = level_step_seconds(seen, level)
        if t is not None:
            low, high = low + steps * t, high + steps * t
            continue
        (measured, t_measured), = seen.items()
        bounds = (t_measured, t_measured * 4.0 ** (measured - level))
        low, high = low + steps * min(bounds), high + steps * max(bounds)
    return low, high


class StepTimes:
    """Per-level step times of one run, and the time its remaining steps should take.

    `level_of(step)` gives the level of step `step` (0-based) in a run of `total` steps. A step's
    time is kept per unit of its `size` (the number of Gaussians: a step's cost grows with them
    at every image size), and the steps to come are taken at the latest size."""

    def __init__(self, level_of: Callable[[int], int], total: int):
        self.level_of = level_of
        self._steps: dict[int, list[int]] = {}  # {level: its steps, in order}
        for step in range(total):
            self._steps.setdefault(level_of(step), []).append(step)
        self._mean: dict[int, float] = {}  # {level: seconds a step per unit of size}
        self._count: dict[int, int] = {}
        self._pending: list[tuple[int, float, float]] = []
        self._size = 1.0

    def add(self, step: int, seconds: float, size: float = 1.0) -> None:
        """Record that step `step`, of `size`, took `seconds` (on a GPU, maybe only to queue
        its kernels)."""
        self._pending.append((step, seconds, max(float(size), 1e-9)))

    def flush(self) -> None:
        """Share the time of the steps added since the last flush evenly among them: call it
        where the device has caught up (a step that read its loss back), so that on a GPU the
        time one step waited counts for the queued steps before it."""
        if not self._pending:
            return
        each = sum(t for _, t, _ in self._pending) / len(self._pending)
        for step, _, size in self._pending:
            self._add(step, each / size)
        self._size = self._pending[-1][2]
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
        """{level: seconds a step per unit of size} for the levels with at least MIN_STEPS steps."""
        return {lv: t for lv, t in self._mean.items() if self._count[lv] >= MIN_STEPS}

    def left(self, done: int) -> Optional[tuple[float, float]]:
        """Seconds the steps after the first `done` should take at the latest size (after a
        `flush`), as `seconds_left`'s (low, high); None before any level has been measured."""
        todo = {lv: len(steps) - bisect_left(steps, done) for lv, steps in self._steps.items()}
        left = seconds_left(self.seen(), todo)
        return None if left is None else (left[0] * self._size, left[1] * self._size)


def format_seconds(seconds: Optional[float]) -> str:
    """``?``, ``MM:SS`` or ``H:MM:SS``, as tqdm writes times."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


MAX_RANGE = 4.0
"""A range of times left wider than this factor is shown as its low end, ``>MM:SS``."""


def format_left(left: Optional[tuple[float, float]]) -> str:
    """A `StepTimes.left` for the bar: ``?``, ``MM:SS``, a range ``MM:SS-MM:SS``, or, for a
    range too wide to tell much (from the coarsest of several levels), ``>MM:SS``."""
    if left is None:
        return "?"
    if left[1] > MAX_RANGE * left[0]:
        return ">" + format_seconds(left[0])
    low, high = (format_seconds(t) for t in left)
    return low if low == high else f"{low}-{high}"


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
