"""Depth-map accuracy against ground truth (synthetic scenes, benchmarks)."""

from __future__ import annotations

import torch
from torch import Tensor


def depth_accuracy(depths: Tensor, gt_depths: Tensor, tolerance: float = 0.01) -> dict:
    """How many estimated depths are right, and how much of the foreground they cover.

    A pixel is *valid* where the estimate is > 0 and the ground truth is foreground (> 0);
    it is *accurate* when |depth - gt| <= tolerance x (that view's foreground depth range).

    Args:
        depths: [C,H,W] estimated camera z, 0 = none.
        gt_depths: [C,H,W] ground-truth camera z, 0 = background.
        tolerance: fraction of each view's ground-truth depth range.

    Returns:
        accuracy (accurate / valid), coverage (valid / foreground), n_valid, n_foreground,
        median_error (median |error| as a fraction of the range) and outside_foreground
        (estimated pixels on ground-truth background, as a fraction of estimated pixels).
    """
    if depths.shape != gt_depths.shape:
        raise ValueError(f"depth_accuracy: shapes differ, {tuple(depths.shape)} vs "
                         f"{tuple(gt_depths.shape)}; compare at one resolution")
    fg = gt_depths > 0
    inf = torch.full_like(gt_depths, float("inf"))
    lo = torch.where(fg, gt_depths, inf).flatten(1).min(1).values
    hi = torch.where(fg, gt_depths, -inf).flatten(1).max(1).values
    span = (hi - lo).clamp_min(1e-9)[:, None, None]
    valid = fg & (depths > 0)
    err = ((depths - gt_depths).abs() / span)[valid]
    n_valid, n_fg, n_est = int(valid.sum()), int(fg.sum()), int((depths > 0).sum())
    return {"accuracy": float((err <= tolerance).float().mean()) if n_valid else 0.0,
            "coverage": n_valid / max(n_fg, 1), "n_valid": n_valid, "n_foreground": n_fg,
            "median_error": float(err.median()) if n_valid else float("nan"),
            "outside_foreground": (n_est - n_valid) / max(n_est, 1), "tolerance": tolerance}
