"""What to match against what: working-resolution views, depth bounds, neighbour selection."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...data.cameras import Cameras
from ...data.errors import VoxsplatError
from ...data.scene import Scene
from ...data.transforms import optical_axes_center
from .config import MvsConfig

_MIN_POINTS_PER_VIEW = 20
"""A view seeing fewer scene points gets bounds and overlap from its frustum instead."""
_MAX_SCORE_POINTS = 4096
"""Scene points used to score neighbours (a deterministic stride through the cloud)."""


def working_views(scene: Scene, view_ids: Sequence[int], max_size: int,
                  device) -> tuple[Tensor, Cameras, Optional[Tensor], Tensor]:
    """The views to match, each at most `max_size` pixels on its longer side, on `device`.

    Views of different sizes (mixed cameras, portrait and landscape) share one canvas: each
    view sits in its top-left corner (its intrinsics unchanged), and `valid` marks its own
    pixels. Views of one size fill the canvas.

    Returns:
        images [C,3,H,W] float32 in [0,1] (0 outside each view), their cameras at each view's
        working size, masks [C,H,W] bool or None when the scene has none, and valid [C,H,W]
        bool.
    """
    cams = scene.cameras[list(view_ids)]
    scaled = []
    for j in range(len(cams)):
        factor = min(1.0, max_size / max(cams.size(j)))
        scaled.append(cams[j].scaled(factor) if factor < 1.0 else cams[j])
    scaled = Cameras.cat(scaled)
    C, Wc, Hc = len(scaled), int(scaled.widths.max()), int(scaled.heights.max())
    images = torch.zeros(C, 3, Hc, Wc, device=device)
    valid = torch.zeros(C, Hc, Wc, dtype=torch.bool, device=device)
    masks = None if scene.masks is None else torch.zeros_like(valid)
    for j, i in enumerate(view_ids):
        w, h = scaled.size(j)
        image = scene.images[i].to(device).permute(2, 0, 1)[None].float() / 255.0
        mask = None if masks is None else scene.masks[i].to(device)[None, None].float()
        if (w, h) != cams.size(j):
            image = F.interpolate(image, size=(h, w), mode="area")
            mask = None if mask is None else F.interpolate(mask, size=(h, w), mode="area")
        images[j, :, :h, :w] = image[0]
        valid[j, :h, :w] = True
        if masks is not None:
            masks[j, :h, :w] = mask[0, 0] > 0.5
    return images, scaled.to(device), masks, valid


def project_points(cam_from_world: Tensor, Ks: Tensor, points: Tensor, W: int,
                   H: int) -> tuple[Tensor, Tensor, Tensor]:
    """World points [P,3] (or per-camera [C,P,3]) in C cameras of size W x H.

    Args:
        cam_from_world: [C,4,4]; Ks: [C,3,3]; points: [P,3] or [C,P,3]; W, H: numbers, or
        [C,1] tensors for cameras of different sizes.

    Returns:
        pixels uv [C,P,2], depths z [C,P] and in-image flags [C,P] (z > 0 and inside).
    """
    X = points.expand(cam_from_world.shape[0], *points.shape[-2:])
    p_cam = X @ cam_from_world[:, :3, :3].transpose(1, 2) + cam_from_world[:, None, :3, 3]
    z = p_cam[..., 2]
    uvw = p_cam @ Ks.transpose(1, 2)
    uv = uvw[..., :2] / torch.where(z > 1e-9, z, torch.ones_like(z))[..., None]
    u, v = uv[..., 0], uv[..., 1]
    inside = (z > 1e-9) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    return uv, z, inside


def project(cams: Cameras, points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`project_points` for a batch of cameras, each inside its own image size."""
    return project_points(cams.cam_from_world, cams.Ks, points, *_image_sizes(cams))


def _image_sizes(cams: Cameras) -> tuple[Tensor, Tensor]:
    """Each camera's image width and height as [C,1] float tensors on its device."""
    return tuple(x.to(cams.device, torch.float32)[:, None] for x in (cams.widths, cams.heights))


def pixel_centers(W: int, H: int, device) -> Tensor:
    """[H*W,2] (u, v) of every pixel centre, row-major; pixel (i, j) is at (i+0.5, j+0.5)."""
    v, u = torch.meshgrid(torch.arange(H, device=device, dtype=torch.float32) + 0.5,
                          torch.arange(W, device=device, dtype=torch.float32) + 0.5, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], -1)


def pixel_rays(cams: Cameras) -> Tensor:
    """[C,3,H*W] camera-frame rays with z = 1 through every pixel centre (row-major)."""
    W, H = cams.size(0)
    uv = pixel_centers(W, H, cams.device)
    pix = torch.cat([uv, torch.ones_like(uv[:, :1])], 1).T
    return torch.linalg.inv(cams.Ks) @ pix


def _fallback_bounds(cams: Cameras, cfg: MvsConfig) -> tuple[Tensor, Tensor]:
    """Near/far [C] without points: from the depth of the point the optical axes meet.

    For (nearly) parallel axes, from the baseline to the nearest other camera: the sweep
    then covers disparities between 0.5 px and half the image width.
    """
    if len(cams) < 2:
        raise VoxsplatError("MVS needs at least 2 views with known poses")
    lo, hi = cfg.fallback_range
    center = optical_axes_center(cams.to("cpu"))  # a small CPU solve, once
    if center is not None:
        center = center.to(cams.cam_from_world)
        _, z, _ = project(cams, center[None])
        dist = (cams.centers - center).norm(dim=-1)
        depth = torch.where(z[:, 0] > 0, z[:, 0], dist)
        return lo * depth, hi * depth
    c = cams.centers
    dists = torch.cdist(c, c) + torch.eye(len(c), device=c.device) * 1e30
    baseline = dists.min(1).values.clamp_min(1e-9)
    W = cams.widths.to(c)
    focal = cams.Ks[:, 0, 0]
    return focal * baseline / (0.5 * W), focal * baseline / 0.5


def depth_bounds(cams: Cameras, points: Optional[Tensor], cfg: MvsConfig) -> tuple[Tensor, Tensor]:
    """Per-view depth range [C] for the sweep.

    From the 1st/99th percentile depth of the scene points each view sees (widened by
    `cfg.depth_margin`); views without enough points fall back to `_fallback_bounds`.
    """
    near, far = _fallback_bounds(cams, cfg)
    if points is None or len(points) == 0:
        return near, far
    pts = points[:: max(1, len(points) // 100_000)].to(cams.cam_from_world)
    _, z, inside = project(cams, pts)
    zq = torch.where(inside, z, torch.full_like(z, math.nan))
    q_lo = torch.nanquantile(zq, 0.01, dim=1) * (1.0 - cfg.depth_margin)
    q_hi = torch.nanquantile(zq, 0.99, dim=1) * (1.0 + cfg.depth_margin)
    enough = inside.sum(1) >= _MIN_POINTS_PER_VIEW
    return torch.where(enough, q_lo, near), torch.where(enough, q_hi, far)


def _frustum_samples(cams: Cameras, near: Tensor, far: Tensor) -> Tensor:
    """[C,P,3] world points on a 16x12 pixel grid at three depths between near and far."""
    dev = cams.device
    W, H = _image_sizes(cams)
    vv, uu = torch.meshgrid((torch.arange(12, device=dev) + 0.5) / 12,
                            (torch.arange(16, device=dev) + 0.5) / 16, indexing="ij")
    pix = torch.stack([uu.reshape(1, -1) * W, vv.reshape(1, -1) * H,
                       torch.ones(len(cams), uu.numel(), device=dev)], 1)
    rays = torch.linalg.inv(cams.Ks) @ pix  # [C,3,192]
    t = torch.tensor([0.25, 0.5, 0.75], device=dev)
    inv = 1.0 / far[:, None] + (1.0 / near[:, None] - 1.0 / far[:, None]) * t  # [C,3]
    p_cam = (rays[:, None] / inv[:, :, None, None]).permute(0, 1, 3, 2).reshape(len(cams), -1, 3)
    world = cams.world_from_cam
    return torch.einsum("cij,cpj->cpi", world[:, :3, :3], p_cam) + world[:, None, :3, 3]


def _angle_weight(theta_deg: Tensor, cfg: MvsConfig) -> Tensor:
    """MVSNet-style piecewise Gaussian preference for triangulation angles."""
    best = cfg.best_angle_deg
    sigma = torch.where(theta_deg < best, torch.full_like(theta_deg, best / 2.0),
                        torch.full_like(theta_deg, 2.0 * best))
    w = torch.exp(-((theta_deg - best) ** 2) / (2.0 * sigma**2))
    return w * (theta_deg >= cfg.min_angle_deg)


def select_neighbours(cams: Cameras, points: Optional[Tensor], near: Tensor, far: Tensor,
                      cfg: MvsConfig) -> Tensor:
    """Source views for every reference view.

    Score(r, n) = sum over sample points seen by r and n of a preference for their
    triangulation angle. Samples are the scene points a view sees, or points of its
    frustum when it sees too few. Ties (no overlap) go to the most similar viewing direction.

    Returns:
        [C,S] int64 indices into `cams`, best first, S = min(cfg.n_neighbours, C-1).
    """
    C = len(cams)
    if C < 2:
        raise VoxsplatError("MVS needs at least 2 views with known poses; got 1")
    samples = _frustum_samples(cams, near, far)
    weights = torch.ones(samples.shape[:2], device=samples.device)
    if points is not None and len(points) > 0:
        pts = points[:: max(1, len(points) // _MAX_SCORE_POINTS)].to(samples)
        _, _, seen = project(cams, pts)
        few = seen.sum(1, keepdim=True) < _MIN_POINTS_PER_VIEW
        samples = torch.cat([pts.expand(C, *pts.shape), samples], 1)
        weights = torch.cat([seen.float(), weights * few], 1)
    centers = cams.centers
    axes = cams.world_from_cam[:, :3, 2]
    scores = torch.empty(C, C, device=samples.device)
    for r in range(C):
        _, _, inside = project(cams, samples[r])  # [C,P]
        rays = F.normalize(samples[r][None] - centers[:, None], dim=-1)  # [C,P,3]
        cos = (rays * rays[r:r + 1]).sum(-1).clamp(-1.0, 1.0)
        theta = torch.rad2deg(torch.acos(cos))
        scores[r] = (weights[r] * inside * _angle_weight(theta, cfg)).sum(1)
    scores = scores + 1e-6 * (axes @ axes.T)  # tie-break: similar viewing direction
    scores.fill_diagonal_(-math.inf)
    return scores.topk(min(cfg.n_neighbours, C - 1), dim=1).indices
