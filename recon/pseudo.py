"""Unseen-view regularizers for few views: cameras orbited away from a training view, the
training image checked against what they render (warped back through the rendered depth), and
the smoothness of the depth they see (RegNeRF's geometry prior, without a learned network)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data.cameras import Cameras


def _axis_angle(axes: Tensor, angles: Tensor) -> Tensor:
    """[B,3,3] rotations by `angles [B]` (radians) about unit `axes [B,3]` (Rodrigues)."""
    x, y, z = axes.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(-1, 3, 3)
    s, c = torch.sin(angles)[:, None, None], torch.cos(angles)[:, None, None]
    eye = torch.eye(3, dtype=axes.dtype, device=axes.device).expand_as(skew)
    return eye + s * skew + (1 - c) * (skew @ skew)


def rigid_inverse(transforms: Tensor) -> Tensor:
    """[B,4,4] inverses of rigid transforms [B,4,4] (R|t -> R^T|-R^T t): no solver, so no
    device sync, unlike torch.linalg.inv."""
    rot_t = transforms[:, :3, :3].transpose(1, 2)
    out = torch.zeros_like(transforms)
    out[:, :3, :3] = rot_t
    out[:, :3, 3] = -(rot_t @ transforms[:, :3, 3:])[..., 0]
    out[:, 3, 3] = 1.0
    return out


def orbited_cameras(cams: Cameras, pivots: Tensor, max_degrees: float, gen: torch.Generator
                    ) -> Cameras:
    """`cams` each turned rigidly about its `pivots [B,3]` (world points, usually on the
    optical axis at the rendered median depth) by an angle drawn uniformly in
    [0, max_degrees] about a random axis across the viewing direction: the pivot stays at the
    same pixel and distance, the camera sees the scene from a nearby unseen direction (up, down
    or sideways). Same intrinsics and size."""
    B, dev, dt = len(cams), cams.device, cams.cam_from_world.dtype
    phi = torch.rand(B, generator=gen, device=gen.device).to(dev, dt) * (2 * math.pi)
    axes_cam = torch.stack([torch.cos(phi), torch.sin(phi), torch.zeros_like(phi)], -1)
    world_from_cam = rigid_inverse(cams.cam_from_world)
    axes = (world_from_cam[:, :3, :3] @ axes_cam[..., None])[..., 0]
    angles = torch.rand(B, generator=gen, device=gen.device).to(dev, dt) * math.radians(max_degrees)
    rot = _axis_angle(axes, angles)
    world_from_world = torch.eye(4, dtype=dt, device=dev).repeat(B, 1, 1)  # turn about the pivot
    world_from_world[:, :3, :3] = rot
    world_from_world[:, :3, 3] = pivots - (rot @ pivots[..., None])[..., 0]
    return Cameras(rigid_inverse(world_from_world @ world_from_cam), cams.Ks, cams.widths,
                   cams.heights)


def warp_from_view(image_b: Tensor, depth_a: Tensor, Ks_a: Tensor, Ks_b: Tensor,
                   b_from_a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Camera b's image sampled at where each pixel of camera a lands, through a's depth.

    Args:
        image_b: [B,H,W,K] images (any K channels) of the b cameras (same size as a's).
        depth_a: [B,H,W] camera-space z of a (<= 0: no depth).
        Ks_a, Ks_b: [B,3,3] intrinsics.
        b_from_a: [B,4,4] rigid transforms from a's camera frame to b's.

    Returns:
        warped [B,H,W,K] (bilinear; differentiable in `image_b` and `depth_a`), and the
        camera-b depth [B,H,W] of each point and valid [B,H,W] bool (a depth, in front of b,
        inside b's image).
    """
    B, H, W, _ = image_b.shape
    dt, dev = depth_a.dtype, depth_a.device
    v, u = torch.meshgrid(torch.arange(H, device=dev, dtype=dt) + 0.5,
                          torch.arange(W, device=dev, dtype=dt) + 0.5, indexing="ij")
    fx, fy, skew = Ks_a[:, 0, 0, None], Ks_a[:, 1, 1, None], Ks_a[:, 0, 1, None]
    y = (v.reshape(1, -1) - Ks_a[:, 1, 2, None]) / fy  # K^-1 in closed form: no solver sync
    x = (u.reshape(1, -1) - Ks_a[:, 0, 2, None] - skew * y) / fx
    rays = torch.stack([x, y, torch.ones_like(x)], -1)  # [B,HW,3], z = 1
    pts_a = rays * depth_a.reshape(B, -1, 1)
    pts_b = pts_a @ b_from_a[:, :3, :3].transpose(1, 2) + b_from_a[:, None, :3, 3]
    z_b = pts_b[..., 2]
    proj = pts_b @ Ks_b.transpose(1, 2)
    uv_b = proj[..., :2] / z_b.clamp_min(1e-6)[..., None]
    grid = torch.stack([uv_b[..., 0] / W * 2 - 1, uv_b[..., 1] / H * 2 - 1], -1).view(B, H, W, 2)
    warped = torch.nn.functional.grid_sample(image_b.permute(0, 3, 1, 2), grid, mode="bilinear",
                                             padding_mode="border", align_corners=False)
    inside = ((uv_b[..., 0] >= 0.5) & (uv_b[..., 0] <= W - 0.5) & (uv_b[..., 1] >= 0.5)
              & (uv_b[..., 1] <= H - 0.5)).view(B, H, W)
    valid = (depth_a > 0) & (z_b.view(B, H, W) > 1e-6) & inside
    return warped.permute(0, 2, 3, 1), z_b.view(B, H, W), valid


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
