"""Depth maps -> points: geometric consistency across views, back-projection, voxel fusion."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ...data.cameras import Cameras
from .views import pixel_centers, pixel_rays, project_points


def backproject(depths: Tensor, cams: Cameras) -> Tensor:
    """World points [C,H,W,3] of depth maps [C,H,W] (camera z) seen by `cams`."""
    C, H, W = depths.shape
    p_cam = pixel_rays(cams) * depths.reshape(C, 1, H * W)  # [C,3,HW]
    world = cams.world_from_cam
    p_world = world[:, :3, :3] @ p_cam + world[:, :3, 3:]
    return p_world.permute(0, 2, 1).reshape(C, H, W, 3)


def _round_trip(ref: int, nbrs: Tensor, depths: Tensor, points: Tensor, cam_from_world: Tensor,
                Ks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Reference depth -> neighbour's depth -> back into the reference.

    Args:
        ref: reference index; nbrs: [S] neighbour indices (device tensor: no host sync).
        depths: [C,H,W]; points: [H*W,3] world points of the reference's depth.
        cam_from_world: [C,4,4]; Ks: [C,3,3].

    Returns:
        pixel error [S,H*W], reprojected reference depth [S,H*W] and validity [S,H*W]
        (the point lands inside the neighbour on four valid depth samples).
    """
    H, W = depths.shape[1:]
    n_pose, n_K = cam_from_world[nbrs], Ks[nbrs]
    uv, _, inside = project_points(n_pose, n_K, points, W, H)  # [S,HW,2]
    grid = torch.stack([uv[..., 0] * (2.0 / W) - 1.0, uv[..., 1] * (2.0 / H) - 1.0], -1)[:, None]
    nd = depths[nbrs][:, None]
    d_n = F.grid_sample(nd, grid, mode="bilinear", align_corners=False)[:, 0, 0]
    support = F.grid_sample((nd > 0).float(), grid, mode="bilinear", align_corners=False)[:, 0, 0]
    uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], -1)  # [S,HW,3]
    p_n = uv1 @ torch.linalg.inv_ex(n_K).inverse.transpose(1, 2) * d_n[..., None]
    rel = cam_from_world[ref] @ torch.linalg.inv_ex(n_pose).inverse  # [S,4,4] ref_from_nbr
    p_r = p_n @ rel[:, :3, :3].transpose(1, 2) + rel[:, None, :3, 3]
    z = p_r[..., 2]
    uv_r = (p_r @ Ks[ref].T)[..., :2] / torch.where(z > 1e-9, z, torch.ones_like(z))[..., None]
    err = (uv_r - pixel_centers(W, H, depths.device)[None]).norm(dim=-1)
    return err, z, inside & (support > 0.999) & (z > 1e-9)


def consistency_filter(depths: Tensor, cams: Cameras, neighbours: Tensor, min_views: int,
                       max_px: float, max_rel: float) -> tuple[Tensor, Tensor]:
    """Keep depths that at least `min_views` neighbours confirm; average the confirmations.

    A neighbour confirms a pixel when the point, looked up in the neighbour's depth map and
    projected back, lands within `max_px` pixels and `max_rel` relative depth.

    Args:
        depths: [C,H,W] camera z, 0 = invalid.
        cams: the C cameras; neighbours: [C,S] indices of each view's neighbours.
        min_views: confirmations required (capped at S).

    Returns:
        filtered depths [C,H,W] (mean of the reference and confirming depths, 0 = dropped)
        and the number of confirming views [C,H,W].
    """
    C, H, W = depths.shape
    need = min(min_views, neighbours.shape[1])
    points = backproject(depths, cams).reshape(C, H * W, 3)
    out, counts = torch.zeros_like(depths), torch.zeros_like(depths, dtype=torch.int64)
    for r in range(C):
        d_r = depths[r].reshape(1, -1)
        err, z, valid = _round_trip(r, neighbours[r], depths, points[r], cams.cam_from_world,
                                    cams.Ks)
        ok = valid & (err < max_px) & ((z - d_r).abs() < max_rel * d_r) & (d_r > 0)
        n = ok.sum(0)
        mean = (d_r[0] + (z * ok).sum(0)) / (1 + n)
        keep = (n >= need) & (d_r[0] > 0)
        out[r] = torch.where(keep, mean, torch.zeros_like(mean)).reshape(H, W)
        counts[r] = n.reshape(H, W)
    return out, counts


def voxel_average(points: Tensor, colors: Tensor, voxel_size: float) -> tuple[Tensor, Tensor]:
    """Merge points [P,3] (and colours [P,3]) that fall in one voxel into their mean."""
    if voxel_size <= 0 or len(points) == 0:
        return points, colors
    keys = torch.floor(points / voxel_size).long()
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    n = int(inverse.max()) + 1
    values = torch.cat([points, colors, torch.ones_like(points[:, :1])], 1)  # + a count column
    sums = torch.zeros(n, 7, device=points.device).index_add_(0, inverse, values)
    mean = sums[:, :6] / sums[:, 6:]
    return mean[:, :3], mean[:, 3:]


def fuse_depths(depths: Tensor, images: Tensor, cams: Cameras, voxel_size: float = 0.0,
                max_points: Optional[int] = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A coloured point cloud from (filtered) depth maps.

    Args:
        depths: [C,H,W] camera z, 0 = no point.
        images: [C,H,W,3] colours in [0,1] at the depth maps' resolution.
        cams: the C cameras of the depth maps.
        voxel_size: points within one voxel of this size (scene units) are averaged; 0 keeps all.
        max_points: random subsample to at most this many points (None = no limit).
        seed: subsampling seed.

    Returns:
        points [P,3] and colours [P,3] in [0,1], on the depths' device.
    """
    valid = depths > 0
    points = backproject(depths, cams)[valid]
    colors = images[valid].float()
    points, colors = voxel_average(points, colors, voxel_size)
    if max_points is not None and len(points) > max_points:
        gen = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(points), generator=gen)[:max_points].to(points.device)
        points, colors = points[keep], colors[keep]
    return points, colors
