"""Unseen views for few-view regularizers: cameras turned away from a training view about the
point it looks at (their render is checked against the training photo by
`losses.consistency_loss`), and the smoothness of the depth they see (RegNeRF's geometry
prior, without a learned network)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data.cameras import Cameras, rigid_inverse, rotvec_to_rotmat


def neighbour_degrees(cams: Cameras, others: Cameras) -> Tensor:
    """For each of `cams`, the angle (degrees) between its optical axis and the nearest one
    among `others`, leaving out cameras at its own centre (itself) [B]; 180 when there is no
    other."""
    cos = cams.optical_axes @ others.optical_axes.T  # [B,N]
    same = torch.cdist(cams.centers, others.centers) <= 1e-6
    cos = cos.masked_fill(same, -1.0).amax(1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


def orbited_cameras(cams: Cameras, pivots: Tensor, max_degrees: float | Tensor,
                    gen: torch.Generator) -> Cameras:
    """`cams` each turned rigidly about its `pivots [B,3]` (world points, usually on the
    optical axis at the rendered median depth) by an angle drawn uniformly in
    [0, max_degrees] (a number, or one per camera [B]) about a random axis across the viewing
    direction: the pivot stays at the same pixel and distance, the camera sees the scene from
    a nearby unseen direction (up, down or sideways). Same intrinsics and size."""
    B, dev, dt = len(cams), cams.device, cams.cam_from_world.dtype
    phi = torch.rand(B, generator=gen, device=gen.device).to(dev, dt) * (2 * math.pi)
    axes_cam = torch.stack([torch.cos(phi), torch.sin(phi), torch.zeros_like(phi)], -1)
    world_from_cam = cams.world_from_cam
    axes = (world_from_cam[:, :3, :3] @ axes_cam[..., None])[..., 0]
    limit = (torch.deg2rad(max_degrees.to(dev, dt)) if isinstance(max_degrees, Tensor)
             else math.radians(max_degrees))  # a number: no copy to the device, which would block
    angles = torch.rand(B, generator=gen, device=gen.device).to(dev, dt) * limit
    rot = rotvec_to_rotmat(axes * angles[:, None])
    world_from_world = torch.eye(4, dtype=dt, device=dev).repeat(B, 1, 1)  # turn about the pivot
    world_from_world[:, :3, :3] = rot
    world_from_world[:, :3, 3] = pivots - (rot @ pivots[..., None])[..., 0]
    return Cameras(rigid_inverse(world_from_world @ world_from_cam), cams.Ks, cams.widths,
                   cams.heights)


def depth_smoothness(depth: Tensor, alpha: Tensor, scale: Tensor) -> Tensor:
    """Mean squared difference of neighbouring depths [B,H,W] divided by `scale [B]` (e.g.
    the median depth), over pairs whose both pixels are solid (`alpha [B,H,W]` > 0.5, not
    differentiated): RegNeRF's smoothness prior on the geometry unseen views show; 0 when no
    pair is solid."""
    d = depth / scale.clamp_min(1e-6)[:, None, None]
    solid = alpha.detach() > 0.5
    total, count = d.new_zeros(()), d.new_zeros(())
    for dd, ok in (((d[:, 1:] - d[:, :-1]), solid[:, 1:] & solid[:, :-1]),
                   ((d[:, :, 1:] - d[:, :, :-1]), solid[:, :, 1:] & solid[:, :, :-1])):
        w = ok.to(d.dtype)
        total = total + (dd.square() * w).sum()
        count = count + w.sum()
    return total / count.clamp_min(1.0)
