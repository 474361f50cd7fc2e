"""The optimization bar's time left under coarse-to-fine: fitted per-level step times."""

import pytest

from voxsplat.recon.engine import coarse_level
from voxsplat.recon.progress import (StepTimes, format_left, format_seconds, level_step_seconds,
                                     seconds_left)


def _cost(a, b):
    return lambda level: a + b * 4.0 ** -level


@pytest.mark.parametrize("a,b", [(0.0, 2.3), (0.5, 2.0), (0.05, 0.01), (1.0, 0.0)])
def test_unseen_levels_follow_a_line_in_the_pixel_count(a, b):
    cost = _cost(a, b)
    seen = {3: cost(3), 2: cost(2)}
    for level in (1, 0):
        assert level_step_seconds(seen, level) == pytest.approx(cost(level), rel=1e-9, abs=1e-12)
    total = 10 * cost(2) + 100 * cost(1) + 1000 * cost(0)
    assert seconds_left(seen, {2: 10, 1: 100, 0: 1000}) == pytest.approx((total, total))


def test_one_level_seen_bounds_the_others():
    """From level 3 alone, a full-size step costs between level 3's time (no cost in the image
    size) and 64 times it (a cost in proportion to the pixels)."""
    assert level_step_seconds({3: 0.1}, 3) == 0.1
    assert level_step_seconds({3: 0.1}, 0) is None
    assert seconds_left({3: 0.1}, {3: 10, 0: 5}) == pytest.approx((1.5, 1.0 + 5 * 6.4))
    assert seconds_left({3: 0.1}, {3: 10, 0: 0}) == pytest.approx((1.0, 1.0))
    assert seconds_left({}, {3: 10}) is None


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
            truth = true_left(step + 1)
            if step < 100 + 4:  # level 3 only (and level 2's first steps): bounds
                assert left[0] < truth < left[1], step
            else:
                assert left == pytest.approx((truth, truth), rel=1e-6), step
    assert times.left(steps) == (0.0, 0.0)


def test_format_seconds():
    assert [format_seconds(t) for t in (None, 0.4, 59.6, 61, 3600 + 62)] == [
        "?", "00:00", "01:00", "01:01", "1:01:02"]
    assert [format_left(t) for t in (None, (61.0, 61.2), (70.0, 250.0), (70.0, 3700.0))] == [
        "?", "01:01", "01:10-04:10", ">01:10"]


def test_step_times_are_kept_per_gaussian():
    """A step costs in proportion to the Gaussians at every image size: the model doubling
    during level 1 is not mistaken for full-size steps costing more; the steps to come are
    timed at the latest count."""
    steps = 400
    level_of = lambda s: coarse_level(s, steps, 2, 0.5)  # noqa: E731  levels 2, 1, then 0
    size = lambda s: 1000 if s < 100 else 1000 + 10 * (s - 100) if s < 200 else 2000  # noqa: E731
    cost = lambda s: size(s) * (1e-5 + 1e-4 * 4.0 ** -level_of(s))  # noqa: E731
    times = StepTimes(level_of, steps)
    for step in range(200):
        times.add(step, cost(step), size(step))
        if step % 10 == 9:
            times.flush()
    true_left = sum(cost(s) for s in range(200, steps))
    assert times.left(200) == pytest.approx((true_left, true_left), rel=0.02)
