"""Photometric losses."""

from __future__ import annotations

from torch import Tensor

from ..render.metrics import ssim


def photometric_loss(render: Tensor, gt: Tensor, ssim_weight: float) -> Tensor:
    """(1-w) L1 + w (1 - SSIM) on [B,H,W,3] images in [0,1]."""
    l1 = (render - gt).abs().mean()
    if ssim_weight <= 0:
        return l1
    return (1.0 - ssim_weight) * l1 + ssim_weight * (1.0 - ssim(render, gt, padding="same").mean())
