"""Pure scene transforms: each takes a Scene and returns a new one.

- `normalize`: a similarity that centres the scene and brings the cameras within radius 1.
- `downscale`: smaller images, masks and matching intrinsics.
- `split_every`: the usual "every n-th image is a test view" protocol.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from .cameras import Cameras
from .errors import VoxsplatError
from .images import resize_depth, resize_image
from .scene import Scene

# Axes whose least-squares intersection is worse conditioned than this (smallest / largest
# eigenvalue of sum(I - d d^T)) are treated as parallel, e.g. a forward-facing capture.
_MIN_AXES_CONDITION = 1e-4


def optical_axes_center(cameras: Cameras) -> Tensor | None:
    """The point closest (least squares) to all optical axes, or None when ill-defined.

    None when there are fewer than 2 cameras, the axes are (nearly) parallel, or the point
    lies behind half of the cameras or more.

    Returns:
        [3] float64 point in world coordinates, or None.
    """
    if len(cameras) < 2:
        return None
    world_from_cam = cameras.world_from_cam.double()
    dirs = cameras.optical_axes.double()  # [C,3]
    centers = world_from_cam[:, :3, 3]  # [C,3]
    projectors = torch.eye(3, dtype=torch.float64, device=dirs.device) - dirs[:, :, None] * dirs[:, None, :]  # [C,3,3]
    A = projectors.sum(0)
    b = (projectors @ centers[:, :, None]).sum(0)[:, 0]
    eigenvalues = torch.linalg.eigvalsh(A)
    if eigenvalues[0] <= _MIN_AXES_CONDITION * eigenvalues[-1]:
        return None
    point = torch.linalg.solve(A, b)
    depths = ((point[None] - centers) * dirs).sum(1)
    if (depths > 0).double().mean() <= 0.5:
        return None
    return point


def _points_center(points: Tensor) -> Tensor:
    """[3] float64 centre of the 1st-99th percentile box of [P,3] points (ignores outliers)."""
    array = points.detach().double().cpu().numpy()
    low, high = np.percentile(array, 1.0, axis=0), np.percentile(array, 99.0, axis=0)
    return torch.from_numpy((low + high) / 2.0)


def normalization(scene: Scene) -> Tensor:
    """The [4,4] float64 similarity `normalize` applies (new = T @ old).

    Centre: the middle of the points' bounding box (1st-99th percentile) when the scene has
    points; otherwise the least-squares intersection of the optical axes (the point the
    cameras look at); otherwise, for parallel axes or one camera, the mean camera centre.
    Scale: 1 / (largest camera distance from that centre), so every camera lies within
    radius 1. This keeps forward-facing captures, whose cameras sit close together, from
    being blown up, while a 360-degree capture ends with its cameras on the unit sphere.
    """
    centers = scene.cameras.centers.double()  # [C,3]
    center = None
    if scene.points is not None and len(scene.points) > 0:
        center = _points_center(scene.points)
    if center is None:
        center = optical_axes_center(scene.cameras)
    if center is None:
        center = centers.mean(0)
    radius = float((centers - center[None]).norm(dim=1).max())
    scale = 1.0 / radius if radius > 1e-12 else 1.0
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] *= scale
    T[:3, 3] = -scale * center
    return T


def normalize(scene: Scene) -> Scene:
    """Centre and scale the scene (see `normalization`); composes into `world_from_input`.

    Args:
        scene: any scene with at least one camera.

    Returns:
        The scene with cameras and points in the new frame.
    """
    T = normalization(scene)
    points = scene.points
    if points is not None:
        points = (points.double() @ T[:3, :3].T + T[:3, 3]).to(scene.points.dtype)
    world_from_input = T @ scene.world_from_input.double()  # float64: georeferenced inputs
    depths = scene.depths
    if depths is not None:  # camera z scales with the frame
        s = float(torch.linalg.det(T[:3, :3].double()).abs() ** (1.0 / 3.0))
        depths = tuple(d * s for d in depths)
    return replace(scene, cameras=scene.cameras.transformed(T.float()), points=points,
                   world_from_input=world_from_input, depths=depths)


OFF_SCALE_RADIUS = (0.1, 1000.0)
"""Camera radii (see `normalization`) outside which a posed scene is normalized."""
OFF_CENTRE_RADII = 3.0
"""A posed scene whose centre lies more than this many camera radii from the origin is
normalized (fern's forward-facing cameras: 0.98; the protocols' others: under 0.15)."""


def is_off_frame(scene: Scene) -> bool:
    """True where the scene's frame is far from the one training assumes: what its cameras
    look at near the origin, at a radius of order 1-100. Initialization (random Gaussians in a
    cube at the origin, the masks' visual hull) and the rasterizer's near plane (0.01) depend
    on it. A transforms.json in millimetres' thousandths or one offset far from its origin
    (a phone's capture app) scored 9.6 dB where the same scene near the origin scored 19.9."""
    T = normalization(scene)
    radius = 1.0 / float(T[0, 0])
    centre = float((T[:3, 3] * radius).norm())
    return not OFF_SCALE_RADIUS[0] <= radius <= OFF_SCALE_RADIUS[1] or centre > OFF_CENTRE_RADII * radius


def check_downscale(factor: float) -> None:
    """Raise a VoxsplatError unless `factor` is a number in (0, 1]."""
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and 0.0 < factor <= 1.0):
        raise VoxsplatError(f"downscale={factor!r}: must be in (0, 1] (0.5 halves the images)")


def downscale(scene: Scene, factor: float) -> Scene:
    """Shrink every image, mask and camera by `factor` (0.5 halves width and height).

    Sizes round to the nearest pixel (at least 1); intrinsics follow `Cameras.scaled`.
    Images use an area filter; masks are area-filtered and thresholded at one half; depth
    maps take their nearest sample (`resize_depth`).

    Raises:
        VoxsplatError: `factor` is not in (0, 1].
    """
    check_downscale(factor)
    if factor == 1.0:
        return scene
    return _resized(scene, scene.cameras.scaled(factor))


def cap_size(scene: Scene, max_side: int) -> Scene:
    """Shrink each image whose longest side is over `max_side` pixels to that, by a factor of
    its own (as `downscale` would); the others stay as they are. Photos of mixed sizes keep
    their detail: one factor for all, the largest one's, would shrink the small ones too."""
    factors = torch.tensor([min(1.0, max_side / max(scene.cameras.size(i)))
                            for i in range(len(scene))], dtype=torch.float64)
    return scene if bool((factors == 1.0).all()) else _resized(scene, scene.cameras.scaled(factors))


def _resized(scene: Scene, cameras) -> Scene:
    """`scene` with each image, mask and depth map resized to its camera in `cameras`."""
    sizes = [cameras.size(i) for i in range(len(cameras))]
    images = tuple(resize_image(img, size) for img, size in zip(scene.images, sizes))
    masks = scene.masks
    if masks is not None:
        masks = tuple(resize_image(m, size) for m, size in zip(masks, sizes))
    depths = scene.depths
    if depths is not None:
        depths = tuple(resize_depth(d, size) for d, size in zip(depths, sizes))
    return replace(scene, images=images, masks=masks, depths=depths, cameras=cameras)


def split_every(scene: Scene, n: int = 8) -> Scene:
    """Split into "test" (every n-th image by sorted name, starting with the first) and "train".

    This is the LLFF / Mip-NeRF 360 protocol. Indices in each split follow name order.
    """
    if n < 1:
        raise ValueError(f"split_every: n must be >= 1, got {n}")
    order = sorted(range(len(scene)), key=lambda i: scene.names[i])
    test = tuple(i for rank, i in enumerate(order) if rank % n == 0)
    train = tuple(i for rank, i in enumerate(order) if rank % n != 0)
    splits = {"train": train, "test": test}
    return scene.with_splits({k: v for k, v in splits.items() if v})
