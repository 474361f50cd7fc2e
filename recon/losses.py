"""Photometric losses, and the binocular consistency of a rendered stereo pair."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.cameras import Cameras
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
    cam_from_shifted = torch.eye(4, device=shifts.device, dtype=cams.cam_from_world.dtype)
    cam_from_shifted = cam_from_shifted.repeat(len(cams), 1, 1)
    cam_from_shifted[:, 0, 3] = -shifts
    return Cameras(cam_from_shifted @ cams.cam_from_world, cams.Ks, cams.widths, cams.heights)


def warp_from_shifted(image_b: Tensor, depth_a: Tensor, Ks: Tensor, shifts: Tensor
                      ) -> tuple[Tensor, Tensor]:
    """Warp the right-eye image into the left eye of a stereo pair through the left depth.

    A left-eye pixel at column u with depth z shows in the right eye (camera moved by `shift`
    along its +x) at column u - fx * shift / z, same row.

    Args:
        image_b: [B,H,W,3] right-eye images.
        depth_a: [B,H,W] left-eye camera-space z (<= 0: no depth).
        Ks: [B,3,3] intrinsics of both eyes.
        shifts: [B] baselines in world units.

    Returns:
        warped [B,H,W,3] (bilinear; differentiable in `image_b` and `depth_a`) and valid
        [B,H,W] bool (a depth, and the sample lands inside the right image).
    """
    B, H, W, _ = image_b.shape
    has_depth = depth_a > 0
    disparity = Ks[:, 0, 0, None, None] * shifts[:, None, None] / torch.where(
        has_depth, depth_a, torch.ones_like(depth_a))
    u = torch.arange(W, device=depth_a.device, dtype=depth_a.dtype) + 0.5  # pixel centres
    v = torch.arange(H, device=depth_a.device, dtype=depth_a.dtype) + 0.5
    u_b = u[None, None, :] - disparity
    grid = torch.stack([u_b / W * 2 - 1, (v[None, :, None] / H * 2 - 1).expand(B, H, W)], -1)
    warped = torch.nn.functional.grid_sample(image_b.permute(0, 3, 1, 2), grid, mode="bilinear",
                                             padding_mode="border", align_corners=False)
    valid = has_depth & (u_b >= 0.5) & (u_b <= W - 0.5)
    return warped.permute(0, 2, 3, 1), valid


def binocular_loss(image_b: Tensor, depth_a: Tensor, gt_a: Tensor, Ks: Tensor, shifts: Tensor
                   ) -> Tensor:
    """L1 between the left-eye ground truth `gt_a [B,H,W,3]` and the rendered right-eye
    `image_b` warped into the left eye through the rendered left depth (binocular consistency,
    Han et al., NeurIPS 2024): wrong depth moves the warped pixels. Averaged over valid pixels
    (see warp_from_shifted; a depth of 0 leaves a pixel out); 0 when none is valid."""
    warped, valid = warp_from_shifted(image_b, depth_a, Ks, shifts)
    w = valid[..., None].to(gt_a.dtype)
    return ((warped - gt_a).abs() * w).sum() / (3 * w.sum()).clamp_min(1.0)
