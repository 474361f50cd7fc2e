"""The optimization bar's time left under coarse-to-fine: fitted per-level step times."""

import pytest

from voxsplat.recon.engine import coarse_level
from voxsplat.recon.progress import (StepTimes, format_seconds, level_step_seconds,
                                     seconds_left)


def _cost(a, b):
    return lambda level: a + b * 4.0 ** -level


@pytest.mark.parametrize("a,b", [(0.0, 2.3), (0.5, 2.0), (0.05, 0.01), (1.0, 0.0)])
def test_unseen_levels_follow_a_line_in_the_pixel_count(a, b):
    cost = _cost(a, b)
    seen = {3: cost(3), 2: cost(2)}
    for level in (1, 0):
        assert level_step_seconds(seen, level) == pytest.approx(cost(level), rel=1e-9, abs=1e-12)
    assert seconds_left(seen, {2: 10, 1: 100, 0: 1000}) == pytest.approx(
        10 * cost(2) + 100 * cost(1) + 1000 * cost(0))


def test_one_level_seen_says_nothing_of_the_others():
    assert level_step_seconds({3: 0.1}, 3) == 0.1
    assert level_step_seconds({3: 0.1}, 0) is None
    assert seconds_left({3: 0.1}, {3: 10, 0: 5}) is None
    assert seconds_left({3: 0.1}, {3: 10, 0: 0}) == pytest.approx(1.0)  # nothing left at 0


def test_noisy_times_stay_non_negative():
    """Times that fall with the image size (noise) give a flat cost, and a negative intercept a
    cost in proportion to the pixels, never a negative time."""
    assert level_step_seconds({3: 0.30, 2: 0.20}, 0) == pytest.approx(0.25)
    t0 = level_step_seconds({3: 0.001, 2: 0.03, 1: 0.20}, 0)
    assert t0 > 0.2


def test_a_coarse_to_fine_run_is_timed_from_its_levels():
    """3 levels over the first half of 600 steps; steps cost 0.02 + 1.0 * pixels. The first
    level alone gives no estimate; from the second on it is the true time left."""
    steps, cost = 600, _cost(0.02, 1.0)
    level_of = lambda s: coarse_level(s, steps, 3, 0.5)  # noqa: E731
    times = StepTimes(level_of, steps)
    true_left = lambda done: sum(cost(level_of(s)) for s in range(done, steps))  # noqa: E731
    for step in range(steps):
        if step % 10 == 9:  # a step that reads its loss back waits for the nine queued before it
            times.add(step, 10 * cost(level_of(step)) - 9 * 1e-4)
        else:
            times.add(step, 1e-4)
        if step % 10 == 9:
            times.flush()
            left = times.left(step + 1)
            if step < 100 + 4:  # level 3 only (and level 2's first steps)
                assert left is None, step
            else:
                assert left == pytest.approx(true_left(step + 1), rel=1e-6), step
    assert times.left(steps) == 0.0


def test_format_seconds():
    assert [format_seconds(t) for t in (None, 0.4, 59.6, 61, 3600 + 62)] == [
        "?", "00:00", "01:00", "01:01", "1:01:02"]
