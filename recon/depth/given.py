"""The depth stage from depth maps the input came with (``Scene.depths``: a depth sensor, or an
earlier ``export --format depth``) instead of multi-view stereo.

Each training view's known depth (inside its mask, when it has one) is back-projected into
coloured points for initialization, and the maps (inside the masks) serve the depth loss as MVS
maps would.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from ...data.cameras import Cameras, camera_rays
from ...data.errors import VoxsplatError
from ...data.scene import Scene
from .mvs import DepthResult

MAX_POINTS = 300_000
"""Pixels back-projected for initialization (every k-th pixel of each view), before keeping
one point per pixel footprint (`one_per_voxel`)."""


def _view_points(scene: Scene, i: int, stride: int) -> tuple[Tensor, Tensor]:
    """World points [P,3] and colours [P,3] of view i's known depth, every `stride`-th pixel."""
    depth = scene.depths[i]
    known = depth > 0
    if scene.masks is not None:
        known &= scene.masks[i]
    sample = torch.zeros_like(known)
    sample[::stride, ::stride] = True
    known &= sample
    W, H = scene.cameras.size(i)
    rays = camera_rays(scene.cameras.Ks[i:i + 1].double(), W, H)[0]
    cam = rays[known] * depth[known].double()[:, None]
    world_from_cam = scene.cameras[i].world_from_cam[0].double()
    points = cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]
    return points.float(), scene.images[i][known].float() / 255.0


def footprint(scene: Scene, ids, pixels: float = 1.0) -> float:
    """The size of `pixels` pixels at the views' median known depth (their median focal)."""
    known = torch.cat([scene.depths[i][scene.depths[i] > 0] for i in ids])
    focal = scene.cameras.Ks[list(ids)][:, [0, 1], [0, 1]].median()
    return float(pixels * known.median() / focal)


def one_per_voxel(points: Tensor, colors: Tensor, voxel: float) -> tuple[Tensor, Tensor]:
    """The first point (and its colour) in each cube of edge `voxel`: overlapping views see
    the same surface, and one seed per footprint is enough."""
    keys = torch.floor(points.double() / voxel).long()
    _, group = torch.unique(keys, dim=0, return_inverse=True)
    first = torch.full((int(group.max()) + 1,), len(points), dtype=torch.long)
    first = first.scatter_reduce(0, group, torch.arange(len(points)), reduce="amin")
    return points[first], colors[first]


UNIT_RATIO = 30.0
"""Depth maps whose median is this many times nearer or farther than what the cameras look
at (`_check_units`) are most likely in other units than their file says."""


def _check_units(scene: Scene, ids) -> None:
    """Warn where the maps' median depth is `UNIT_RATIO` times off the cameras' distance to
    what they look at (the point their optical axes meet): metres read as millimetres (the
    default `depth_unit_scale_factor` of 1e-3) put every seed 1000 times too near."""
    from ...render.camera_paths import focus_point
    cams = scene.cameras[list(ids)]
    target = focus_point(cams.cam_from_world) if len(cams) > 1 else None
    if target is None:
        return
    distance = float((cams.centers.double() - target.double()).norm(dim=-1).median())
    median = float(torch.cat([scene.depths[i][scene.depths[i] > 0] for i in ids]).median())
    ratio = median / max(distance, 1e-12)
    if not 1 / UNIT_RATIO <= ratio <= UNIT_RATIO:
        warnings.warn(f"{scene.source}: the depth maps' median depth ({median:.4g}) is "
                      f"{ratio if ratio > 1 else 1 / ratio:.0f} times {'farther' if ratio > 1 else 'nearer'} "
                      f"than what the cameras look at ({distance:.4g} away): are they in other "
                      f"units than 'depth_unit_scale_factor' says (default 1e-3, millimetres)?")


def given_depths(scene: Scene, split: str = "train", max_points: int = MAX_POINTS) -> DepthResult:
    """A DepthResult from the scene's own depth maps on the views of `split`.

    Raises:
        VoxsplatError: the scene has no depth maps, or none of those views has known depth.
    """
    if scene.depths is None:
        raise VoxsplatError(f"{scene.source}: the scene has no depth maps")
    ids = tuple(scene.split(split))
    known = sum(int((scene.depths[i] > 0).sum()) for i in ids)
    if known == 0:
        raise VoxsplatError(f"{scene.source}: the depth maps of the {split} views are all empty "
                            f"(0 = unknown); check 'depth_file_path' and 'depth_unit_scale_factor'")
    _check_units(scene, ids)
    stride = max(1, math.ceil(math.sqrt(known / max_points)))
    parts = [_view_points(scene, i, stride) for i in ids]
    if not sum(len(p) for p, _ in parts):
        raise VoxsplatError(f"{scene.source}: the {split} views' depth maps know no depth inside "
                            f"their masks; check that the masks and depth maps belong together")
    points, colors = one_per_voxel(torch.cat([p for p, _ in parts]),
                                   torch.cat([c for _, c in parts]), footprint(scene, ids))
    cams = scene.cameras[list(ids)]
    Wc, Hc = int(cams.widths.max()), int(cams.heights.max())
    depths = torch.zeros(len(ids), Hc, Wc)
    for c, i in enumerate(ids):
        H, W = scene.depths[i].shape
        d = scene.depths[i]
        depths[c, :H, :W] = d if scene.masks is None else d * scene.masks[i]  # the object only
    return DepthResult(depths=depths, confidence=(depths > 0).float(), points=points,
                       colors=colors, names=tuple(scene.names[i] for i in ids), view_ids=ids,
                       cameras=Cameras(cams.cam_from_world.clone(), cams.Ks.clone(),
                                       cams.widths.clone(), cams.heights.clone()),
                       neighbours=torch.zeros(len(ids), 0, dtype=torch.long),
                       n_matched=int(len(points)))
