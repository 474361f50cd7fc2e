"""Entry points of the depth stage: depth maps and a fused point cloud for a posed scene."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from ...data.atomic import atomic_path
from ...data.cameras import Cameras
from ...data.errors import VoxsplatError
from ...data.scene import Scene
from ...data.writers import write_points_ply
from ...render.video import depth_to_rgb
from .config import MvsConfig
from .fill import fill_points
from .fusion import consistency_filter, fuse_depths
from .sweep import relative_projection, texture_std, view_depth
from .views import depth_bounds, pixel_rays, select_neighbours, working_views


@dataclass(frozen=True)
class DepthResult:
    """What `compute_depths` produced, on the CPU.

    Attributes:
        depths: [C,H,W] float32 camera z of the filtered depth maps; 0 = no depth. Views of
            different sizes share one canvas: view c covers its camera's size at the top-left
            (`depth_map(c)` crops it).
        confidence: [C,H,W] float32 aggregated NCC at the estimate in [0,1]; 0 = no depth.
        points: [P,3] float32 fused points in the scene frame.
        colors: [P,3] float32 their colours in [0,1].
        names: the C views' image names.
        view_ids: the C views' indices in the scene.
        cameras: the C cameras at the depth maps' (working) resolution, each at its size.
        neighbours: [C,S] int64 source views of each view (indices into the C views).
        n_matched: how many of the points come from matched depth; the rest (MvsConfig.
            fill_stride) are interpolated into the holes of the depth maps.
    """

    depths: Tensor
    confidence: Tensor
    points: Tensor
    colors: Tensor
    names: tuple[str, ...]
    view_ids: tuple[int, ...]
    cameras: Cameras
    neighbours: Tensor
    n_matched: int

    def depth_map(self, c: int) -> Tensor:
        """[h,w] depth map of view c (0 = no depth), at its own working size."""
        w, h = self.cameras.size(c)
        return self.depths[c, :h, :w]


def mvs_view_ids(scene: Scene, split: str) -> tuple[int, ...]:
    """The views of `split` ("all": every view) that MVS computes depth for."""
    if split != "all" and split not in scene.splits:
        raise VoxsplatError(f"{scene.source}: MVS split '{split}' not found (has: "
                            f"{sorted(scene.splits)}); set MvsConfig.split")
    ids = scene.split(split)
    if len(ids) < 2:
        raise VoxsplatError(f"{scene.source}: MVS needs at least 2 posed views in split "
                            f"'{split}', got {len(ids)}")
    return tuple(ids)


def _luminance(images: Tensor) -> Tensor:
    """[C,1,H,W] Rec. 601 luma of [C,3,H,W] images."""
    w = torch.tensor([0.299, 0.587, 0.114], device=images.device)
    return (images * w[:, None, None]).sum(1, keepdim=True)


def raw_depth_maps(images: Tensor, cams: Cameras, neighbours: Tensor, near: Tensor,
                   far: Tensor, cfg: MvsConfig,
                   on_view: Optional[Callable[[int], None]] = None,
                   valid: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Photometric depth [C,H,W] (0 = rejected) and confidence [C,H,W] of every view.

    Args:
        images: [C,K,H,W] matching images; cams: their cameras; neighbours: [C,S].
        near, far: [C] depth bounds; cfg: the MVS configuration.
        on_view: called with each finished view index (progress).
        valid: [C,H,W] bool, each view's own pixels on a shared canvas (None = all).
    """
    C, _, H, W = images.shape
    rays = pixel_rays(cams)  # [C,3,HW]
    depths = torch.zeros(C, H, W, device=images.device)
    conf = torch.zeros_like(depths)
    inside = torch.ones_like(images[:, :1]) if valid is None else valid[:, None].float()
    sources = torch.cat([images, inside], 1)  # + in-image channel
    for r in range(C):
        a, b = relative_projection(rays[r], cams.cam_from_world, cams.Ks, r, neighbours[r], W, H)
        inv, c, in_range = view_depth(images[r], sources[neighbours[r]], a, b, 1.0 / near[r],
                                      1.0 / far[r], cfg)
        textured = texture_std(images[r], cfg.patch_size) >= cfg.min_texture
        ok = in_range & (c >= cfg.min_ncc) & textured & (inside[r, 0] > 0)
        depths[r] = torch.where(ok, 1.0 / inv, torch.zeros_like(inv))
        conf[r] = c
        if on_view is not None:
            on_view(r)
    return depths, conf


@torch.no_grad()
def compute_depths(scene: Scene, cfg: MvsConfig = MvsConfig(), device="cpu",
                   on_view: Optional[Callable[[int], None]] = None) -> DepthResult:
    """Plane-sweep MVS depth maps for the views of `cfg.split`, filtered and fused.

    Args:
        scene: posed views (OpenCV cameras); its points, when present, set the depth bounds.
        cfg: MVS configuration (see MvsConfig and MVS_PRESETS).
        device: torch device to compute on ("cpu", "cuda", ...).
        on_view: optional progress callback, called with each finished view index.

    Returns:
        DepthResult on the CPU.

    Raises:
        VoxsplatError: fewer than 2 views, or a missing split.
    """
    device = torch.device(device)
    ids = mvs_view_ids(scene, cfg.split)
    images, own, masks, valid = working_views(scene, ids, cfg.max_image_size, device)
    cams = own.with_size(images.shape[-1], images.shape[-2])  # what per-pixel stages iterate
    if cfg.patch_size == 0:
        cfg = replace(cfg, patch_size=5 if max(images.shape[-2:]) <= 320 else 7)
    points = None if scene.points is None else scene.points.to(device)
    near, far = depth_bounds(own, points, cfg)
    neighbours = select_neighbours(own, points, near, far, cfg)
    matching = _luminance(images) if cfg.grayscale else images
    depths, conf = raw_depth_maps(matching, cams, neighbours, near, far, cfg, on_view, valid)
    if cfg.use_masks and masks is not None:
        depths = depths * masks
    depths, _ = consistency_filter(depths, cams, neighbours, cfg.n_consistent,
                                   cfg.max_reproj_px, cfg.max_rel_depth)
    conf = conf * (depths > 0)
    voxel = 0.0
    if cfg.voxel_px > 0 and bool((depths > 0).any()):
        voxel = cfg.voxel_px * float(depths[depths > 0].median()) / float(cams.Ks[:, 0, 0].mean())
    pts, cols = fuse_depths(depths, images.permute(0, 2, 3, 1), cams, voxel, cfg.max_points,
                            cfg.seed)
    n_matched = len(pts)
    if cfg.fill_stride > 0 and n_matched > 0:
        more, more_cols = fill_points(depths, images.permute(0, 2, 3, 1), cams, cfg.fill_stride,
                                       cfg.fill_far, valid)
        pts, cols = torch.cat([pts, more]), torch.cat([cols, more_cols])
    return DepthResult(depths.cpu(), conf.cpu(), pts.cpu(), cols.cpu(),
                       tuple(scene.names[i] for i in ids), ids, own.to("cpu"), neighbours.cpu(),
                       n_matched)


def write_depths(result: DepthResult, out_dir: str | Path) -> Path:
    """Write ``DIR/depth/<name>.npy`` (float32 [H,W], 0 = none), ``DIR/depth/<name>.png``
    (turbo preview, one depth scale for all views) and ``DIR/points.ply``, atomically.

    Returns:
        out_dir as a Path.
    """
    from PIL import Image
    out_dir = Path(out_dir)
    valid = result.depths[result.depths > 0]
    near, far = ((float(valid.quantile(0.01)), float(valid.quantile(0.99)))
                 if valid.numel() else (None, None))
    for c, name in enumerate(result.names):
        depth = result.depth_map(c)
        with atomic_path(out_dir / "depth" / f"{name}.npy") as tmp:
            np.save(tmp, depth.numpy().astype(np.float32))
        with atomic_path(out_dir / "depth" / f"{name}.png") as tmp:
            Image.fromarray(depth_to_rgb(depth, near, far)).save(tmp, format="PNG")
    write_points_ply(out_dir / "points.ply", result.points, result.colors)
    return out_dir


def scene_with_points(scene: Scene, points: Tensor, colors: Optional[Tensor] = None) -> Scene:
    """`scene` with its points replaced (e.g. by fused MVS points) for initialization.

    Args:
        points: [P,3] in the scene frame; colors: [P,3] in [0,1] or None.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise VoxsplatError(f"scene_with_points: expected points [P,3], got {tuple(points.shape)}")
    if colors is not None and colors.shape != points.shape:
        raise VoxsplatError(f"scene_with_points: colours {tuple(colors.shape)} do not match "
                            f"points {tuple(points.shape)}")
    return replace(scene, points=points.detach().float().cpu(),
                   point_colors=None if colors is None else colors.detach().float().cpu())
