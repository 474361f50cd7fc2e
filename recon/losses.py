"""Photometric losses, and the consistency of a training view with views rendered from moved
cameras (a stereo partner, a turned view), warped back through the rendered depth."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..data.cameras import Cameras, camera_rays
from ..render.metrics import ssim


def photometric_loss(render: Tensor, gt: Tensor, ssim_weight: float) -> Tensor:
    """(1-w) L1 + w (1 - SSIM) on [B,H,W,3] images in [0,1]."""
    l1 = (render - gt).abs().mean()
    if ssim_weight <= 0:
        return l1
    return (1.0 - ssim_weight) * l1 + ssim_weight * (1.0 - ssim(render, gt, padding="same").mean())


def shifted_cameras(cams: Cameras, shifts: Tensor) -> Cameras:
    """`cams` moved by `shifts [C]` (world units) along each camera's own +x axis: the right
    eye of a stereo pair whose left eye is `cams` (same orientation and intrinsics)."""
    return Cameras(_sideways(shifts, cams.cam_from_world.dtype) @ cams.cam_from_world, cams.Ks,
                   cams.widths, cams.heights)


def _sideways(shifts: Tensor, dtype) -> Tensor:
    """[B,4,4] transforms from cameras to their copies moved by `shifts [B]` along their +x."""
    shifted_from_cam = torch.eye(4, device=shifts.device, dtype=dtype).repeat(len(shifts), 1, 1)
    shifted_from_cam[:, 0, 3] = -shifts
    return shifted_from_cam


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
    dt = depth_a.dtype
    rays = camera_rays(Ks_a.to(dt), W, H).reshape(B, -1, 3)  # z = 1
    pts_a = rays * depth_a.reshape(B, -1, 1)
    pts_b = pts_a @ b_from_a[:, :3, :3].transpose(1, 2) + b_from_a[:, None, :3, 3]
    z_b = pts_b[..., 2]
    proj = pts_b @ Ks_b.transpose(1, 2)
    uv_b = proj[..., :2] / z_b.clamp_min(1e-6)[..., None]
    grid = torch.stack([uv_b[..., 0] / W * 2 - 1, uv_b[..., 1] / H * 2 - 1], -1).view(B, H, W, 2)
    warped = torch.nn.functional.grid_sample(image_b.permute(0, 3, 1, 2), grid, mode="bilinear",
                                             padding_mode="border", align_corners=False)
    lo = 0.5 - 1e-3  # between the outer pixel centres, to rounding (a stereo move keeps v)
    inside = ((uv_b[..., 0] >= lo) & (uv_b[..., 0] <= W - lo) & (uv_b[..., 1] >= lo)
              & (uv_b[..., 1] <= H - lo)).view(B, H, W)
    valid = (depth_a > 0) & (z_b.view(B, H, W) > 1e-6) & inside
    return warped.permute(0, 2, 3, 1), z_b.view(B, H, W), valid


def consistency_loss(image_b: Tensor, depth_a: Tensor, gt_a: Tensor, Ks_a: Tensor, Ks_b: Tensor,
                     b_from_a: Tensor, depth_b: Optional[Tensor] = None) -> Tensor:
    """L1 between the training images `gt_a [B,H,W,3]` and the images `image_b` rendered from
    moved cameras, warped back into a through a's rendered depth (see warp_from_view): wrong
    depth moves the warped pixels. Averaged over valid pixels; 0 when none is valid. With b's
    rendered depth `depth_b [B,H,W]`, points more than 5% behind what b sees there (hidden from
    b) are left out too."""
    if depth_b is None:
        warped, _, valid = warp_from_view(image_b, depth_a, Ks_a, Ks_b, b_from_a)
    else:
        both = torch.cat([image_b, depth_b.detach()[..., None]], -1)
        warped, z_b, valid = warp_from_view(both, depth_a, Ks_a, Ks_b, b_from_a)
        valid = valid & (z_b.detach() <= warped[..., 3].detach() * 1.05)
        warped = warped[..., :3]
    w = valid[..., None].to(gt_a.dtype)
    return ((warped - gt_a).abs() * w).sum() / (3 * w.sum()).clamp_min(1.0)


def binocular_loss(image_b: Tensor, depth_a: Tensor, gt_a: Tensor, Ks: Tensor, shifts: Tensor
                   ) -> Tensor:
    """consistency_loss for the right eyes `image_b` of stereo pairs whose left eyes are the
    training views, moved by `shifts [B]` (world units) along their +x (shifted_cameras):
    binocular consistency, Han et al., NeurIPS 2024."""
    return consistency_loss(image_b, depth_a, gt_a, Ks, Ks, _sideways(shifts, Ks.dtype))
