"""Hole filling of filtered depth maps: points where multi-view stereo found no consistent depth.

With 3 wide-baseline views the consistency filter keeps a few percent of the pixels, and a
representation that can only place Gaussians near its initial points (the voxel model) then
has nothing where the photos show untextured walls, sky or blurred background. Filling the
holes of each depth map by push-pull interpolation in inverse depth (a convex combination of
nearby kept depths, so it never leaves their range) gives a coarse surface there; the optimizer
keeps what the photos support and prunes the rest. `far_fill` (MvsConfig.fill_far) instead
gives each hole the farthest depth around it, so filled points never stand in front of the
surfaces that border them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...data.cameras import Cameras
from .fusion import backproject


def far_fill(depths: Tensor) -> Tensor:
    """Depth maps [C,H,W] with every hole given the farthest kept depth of the smallest aligned
    2^k block around it that has any (min-pool of inverse depth, then nearest upsampling):
    filled surfaces sit at the back of their surroundings, where they occlude nothing in new
    views. Views without any depth stay 0."""
    big = torch.finfo(depths.dtype).max
    inv = torch.where(depths > 0, 1.0 / depths.clamp_min(1e-12), torch.full_like(depths, big))[:, None]
    pyramid = [inv]
    while min(inv.shape[-2:]) > 1:
        inv = -F.max_pool2d(-inv, 2, ceil_mode=True)
        pyramid.append(inv)
    filled = pyramid[-1]
    for inv in reversed(pyramid[:-1]):
        up = F.interpolate(filled, size=inv.shape[-2:], mode="nearest")
        filled = torch.where(inv < big, inv, up)
    filled = filled[:, 0]
    return torch.where(filled < big, 1.0 / filled.clamp_min(1e-12), torch.zeros_like(filled))


def push_pull_fill(depths: Tensor) -> Tensor:
    """Depth maps [C,H,W] (camera z, 0 = none) with every hole filled from its surroundings.

    Push: average the valid inverse depths over 2x2 blocks, level by level, with weights (the
    valid fraction, capped at 1). Pull: from the coarsest level up, each pixel keeps its own
    value in proportion to its weight and takes the upsampled coarser value for the rest.
    Views without any depth stay 0.
    """
    inv = torch.where(depths > 0, 1.0 / depths.clamp_min(1e-12), torch.zeros_like(depths))[:, None]
    w = (depths > 0).float()[:, None]
    pyramid = [(inv, w)]
    while min(inv.shape[-2:]) > 1:
        num = F.avg_pool2d(inv * w, 2, ceil_mode=True)
        den = F.avg_pool2d(w, 2, ceil_mode=True)
        inv = torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))
        w = (4.0 * den).clamp(max=1.0)
        pyramid.append((inv, w))
    filled = pyramid[-1][0]
    for inv, w in reversed(pyramid[:-1]):
        up = F.interpolate(filled, size=inv.shape[-2:], mode="bilinear", align_corners=False)
        filled = w * inv + (1.0 - w) * up
    filled = filled[:, 0]
    has_any = (depths > 0).flatten(1).any(1)[:, None, None]
    return torch.where(has_any & (filled > 0), 1.0 / filled.clamp_min(1e-12),
                       torch.zeros_like(filled))


def fill_points(depths: Tensor, images: Tensor, cams: Cameras, stride: int,
                far: bool = False, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Points [P,3] and colours [P,3] on a `stride`-pixel grid of the holes of `depths`.

    Args:
        depths: [C,H,W] filtered depth maps (0 = no depth); images: [C,H,W,3] in [0,1] at the
        same resolution; cams: their cameras; stride: grid step in pixels (>= 1);
        far: `far_fill` instead of `push_pull_fill`; valid: [C,H,W] bool, each view's own
        pixels on a shared canvas (None = all): nothing is filled outside them.
    """
    filled = far_fill(depths) if far else push_pull_fill(depths)
    grid = torch.zeros_like(depths, dtype=torch.bool)
    grid[:, stride // 2::stride, stride // 2::stride] = True
    holes = grid & (depths <= 0) & (filled > 0)
    if valid is not None:
        holes &= valid
    points = backproject(filled, cams)[holes]
    return points, images[holes].float()
