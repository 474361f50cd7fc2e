"""Depth supervision for training: rendered depth against MVS depth."""

from __future__ import annotations

from typing import Optional

from torch import Tensor


def depth_loss(rendered_depth: Tensor, target_depth: Tensor,
               confidence: Optional[Tensor] = None) -> Tensor:
    """Confidence-weighted L1 on inverse depth, over pixels where both depths are valid.

    Args:
        rendered_depth: [B,H,W,1] rendered camera z (e.g. RasterOutput.depths).
        target_depth: [B,H,W] target camera z, 0 = no target.
        confidence: [B,H,W] weights in [0,1], or None for 1.

    Returns:
        Scalar loss; 0 (still differentiable) when no pixel is valid.
    """
    pred = rendered_depth[..., 0]
    valid = (target_depth > 0) & (pred > 1e-6)
    weight = valid.to(pred.dtype)
    if confidence is not None:
        weight = weight * confidence.to(pred.dtype)
    inv_pred = 1.0 / pred.clamp_min(1e-6)
    inv_target = 1.0 / target_depth.clamp_min(1e-6)
    return ((inv_pred - inv_target).abs() * weight).sum() / weight.sum().clamp_min(1.0)
