"""Dense coloured point clouds of trained Gaussians (`voxsplat export --format points`).

What COLMAP/OpenMVS users take from a dense reconstruction (`fused.ply`): the surfaces as
points with normals and colours. The Gaussians' depth and colour are rendered into every
training view (as for meshes, ``mesh.render_views``), the opaque pixels back-projected, and
the points merged to one per voxel: the mean position, colour and normal of the samples that
fall in it, kept where at least `min_views` views saw it (a floater that one view alone shows
is dropped).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from ...data.cameras import Cameras
from ...data.errors import VoxsplatError
from .mesh import MeshConfig, default_voxel_size, render_views, rendered_points, scene_center
from .tsdf import pack_keys


@dataclass(frozen=True)
class PointsConfig:
    """How to sample the Gaussians' surfaces as points. Lengths are in scene units."""

    voxel_size: Optional[float] = None
    """One point per voxel of this edge. None: the footprint of one rendered pixel at the
    median camera distance from the scene centre (as for meshes)."""
    min_views: int = 2
    """Keep a voxel's point where at least this many training views see it (at most the
    number of views)."""
    render_scale: float = 1.0
    """Rendered size / training image size."""
    opacity_power: float = 4.0
    """Opacity sharpening for the rendered depth (``MeshConfig.opacity_power``)."""
    max_blend_offset: float = 0.02
    """Pixels that blend a nearer and a farther surface are left out
    (``MeshConfig.max_blend_offset``; 0 keeps them)."""

    def __post_init__(self) -> None:
        if self.voxel_size is not None and not 0 < self.voxel_size < float("inf"):
            raise VoxsplatError(f"--voxel-size must be > 0 and finite, got {self.voxel_size}")
        if self.min_views < 1 or not self.render_scale > 0 or not self.max_blend_offset >= 0:
            raise VoxsplatError("points: min_views must be >= 1, render_scale > 0 and "
                                "max_blend_offset >= 0")


def thin_points(points: Tensor, normals: Tensor, colors: Tensor, views: Tensor,
                voxel_size: float, min_views: int) -> tuple[Tensor, Tensor, Tensor]:
    """Merge samples to one point per voxel of edge `voxel_size`.

    Args:
        points, normals, colors: [P,3] samples (normals unit length).
        views: [P] int64 index of the view each sample comes from.
        min_views: voxels whose samples come from fewer distinct views are dropped.

    Returns:
        points [M,3] (mean of the voxel's samples), normals [M,3] (normalized mean), colours
        [M,3] (mean), ordered by voxel (x-major).
    """
    if len(points) == 0:
        return points, normals, colors
    cells = torch.floor((points - points.min(0).values) / voxel_size).long()
    keys, inverse = torch.unique(pack_keys(cells), return_inverse=True)
    M = len(keys)
    count = torch.zeros(M, device=points.device).index_add_(0, inverse, torch.ones_like(points[:, 0]))
    mean = lambda x: torch.zeros(M, x.shape[1], device=x.device).index_add_(0, inverse, x) / count[:, None]  # noqa: E731
    stride = int(views.max()) + 1  # (voxel, view) pairs as one key
    pairs = torch.unique(inverse * stride + views)
    n_views = torch.bincount(pairs // stride, minlength=M)
    keep = n_views >= min_views
    normal = torch.nn.functional.normalize(mean(normals), dim=-1)
    return mean(points)[keep], normal[keep], mean(colors)[keep]


@torch.no_grad()
def points_from_splats(splats: dict, cameras: Cameras, cfg: PointsConfig = PointsConfig(),
                       masks: Optional[Sequence[Tensor]] = None, backend: str = "auto",
                       progress: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The Gaussians' surfaces as points [M,3], normals [M,3] (towards the cameras that saw
    them) and colours [M,3] in [0,1], in the scene frame.

    Args:
        splats: Gaussians (raw parameters); rendering runs on their device.
        cameras: C training cameras (OpenCV, scene frame), of one size or not.
        cfg: voxel size and view support.
        masks: None, or C bool [H,W] masks of the training views (True = object).
        backend: rasterizer backend.
        progress: a progress bar over the rendered views.

    Raises:
        VoxsplatError: no rendered pixel is opaque, or no voxel is seen from enough views.
    """
    if len(cameras) == 0:
        raise VoxsplatError("points: the workspace has no training cameras")
    cams = cameras.scaled(cfg.render_scale) if cfg.render_scale != 1 else cameras
    footprint = default_voxel_size(cams, scene_center(splats))
    voxel = cfg.voxel_size or footprint
    mesh_cfg = MeshConfig(opacity_power=cfg.opacity_power, max_blend_offset=cfg.max_blend_offset)
    views = render_views(splats, cams, masks, mesh_cfg, backend, progress)
    points, normals, colors, view_ids = rendered_points(views)
    if len(points) == 0:
        raise VoxsplatError("points: no rendered pixel is opaque; the Gaussians are empty or "
                            "outside every camera")
    if voxel < SPARSE_BELOW * footprint:
        warnings.warn(f"points: this --voxel-size is {voxel / footprint:.2g} times a rendered "
                      f"pixel's footprint (the default); few voxels that small are seen from "
                      f"{cfg.min_views} views, so the cloud thins out: give a larger one")
    thinned = thin_points(points, normals, colors, view_ids, voxel, min(cfg.min_views, len(cams)))
    if len(thinned[0]) == 0:
        raise VoxsplatError(f"points: no voxel is seen from {min(cfg.min_views, len(cams))} "
                            f"views at this --voxel-size ({voxel / footprint:.2g} times a "
                            f"rendered pixel's footprint); give a larger one, or none")
    return thinned


SPARSE_BELOW = 0.5
"""Voxels smaller than this times a rendered pixel's footprint get a warning: the demo's
cloud has 51k points at 0.57 footprints, 2.6k at 0.11 and none at 0.006."""
