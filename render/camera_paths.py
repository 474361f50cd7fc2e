"""Camera paths for novel-view videos: orbit, arc, LLFF-style spiral, interpolation, look-at.

Every function is pure and returns OpenCV ``cam_from_world`` matrices (x right, y down,
z forward) as float32 tensors; the work is done in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.cameras import Cameras, quat_from_rotmat, quat_to_rotmat
from ..data.errors import VoxsplatError

_F64 = torch.float64


def _as_vec3(x, name: str) -> Tensor:
    v = torch.as_tensor(x, dtype=_F64).reshape(-1)
    if v.shape != (3,):
        raise ValueError(f"{name}: expected 3 values, got shape {tuple(v.shape)}")
    return v


def _pose(rot_cam_from_world: Tensor, eye: Tensor) -> Tensor:
    """[...,4,4] cam_from_world from rotations [...,3,3] (rows = camera axes) and eyes [...,3]."""
    out = torch.zeros(*eye.shape[:-1], 4, 4, dtype=_F64)
    out[..., :3, :3] = rot_cam_from_world
    out[..., :3, 3] = -(rot_cam_from_world @ eye[..., None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def look_at(eye: Sequence[float] | Tensor, target: Sequence[float] | Tensor,
            up: Sequence[float] | Tensor) -> Tensor:
    """OpenCV camera at ``eye`` looking at ``target`` with ``up`` pointing up in the image.

    Args:
        eye: [3] camera centre, world frame.
        target: [3] point that lands on the principal point.
        up: [3] world direction that appears upward (-y in the camera). When it is parallel
            to the viewing direction, the world axis least aligned with it is used instead.

    Returns:
        cam_from_world [4,4] float32 with a proper rotation (det +1).
    """
    eye, target, up = _as_vec3(eye, "eye"), _as_vec3(target, "target"), _as_vec3(up, "up")
    fwd = target - eye
    if fwd.norm() < 1e-12:
        raise ValueError("look_at: eye and target coincide")
    fwd = fwd / fwd.norm()
    right = torch.linalg.cross(fwd, up)
    if right.norm() < 1e-6 * max(float(up.norm()), 1e-12):
        up = torch.eye(3, dtype=_F64)[int(fwd.abs().argmin())]
        right = torch.linalg.cross(fwd, up)
    right = right / right.norm()
    down = torch.linalg.cross(fwd, right)
    return _pose(torch.stack([right, down, fwd]), eye).float()


def _basis_around(up: Tensor, start: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Orthonormal e1, e2 spanning the plane perpendicular to unit ``up``; e1 towards start."""
    ref = None if start is None else start - (start @ up) * up
    if ref is None or ref.norm() < 1e-9:
        ref = torch.eye(3, dtype=_F64)[int(up.abs().argmin())]
        ref = ref - (ref @ up) * up
    e1 = ref / ref.norm()
    return e1, torch.linalg.cross(up, e1)


def orbit_path(center: Sequence[float] | Tensor, radius: float, elevation_deg: float,
               n_frames: int, up: Sequence[float] | Tensor,
               start_dir: Optional[Sequence[float] | Tensor] = None) -> Tensor:
    """Cameras circling ``center`` at a fixed distance and elevation, looking at it.

    Args:
        center: [3] point every frame looks at.
        radius: distance from ``center`` to every camera.
        elevation_deg: angle above the plane perpendicular to ``up``.
        n_frames: F; frames are evenly spaced over one turn without repeating the first.
        up: [3] world up direction (need not be unit length).
        start_dir: optional [3] direction from ``center`` whose azimuth frame 0 takes.

    Returns:
        cam_from_world [F,4,4] float32.
    """
    az = torch.arange(n_frames, dtype=_F64) * (2.0 * math.pi / max(n_frames, 1))
    return _around(center, radius, elevation_deg, up, start_dir, az)


def _around(center, radius: float, elevation_deg: float, up, start_dir, az: Tensor) -> Tensor:
    """Cameras at azimuths `az [F]` (radians, from `start_dir`'s, counter-clockwise about
    `up`) around `center`, at `radius` and `elevation_deg`, looking at it."""
    center, up = _as_vec3(center, "center"), _as_vec3(up, "up")
    up = up / up.norm()
    e1, e2 = _basis_around(up, None if start_dir is None else _as_vec3(start_dir, "start_dir"))
    el = math.radians(elevation_deg)
    dirs = (math.cos(el) * (torch.cos(az)[:, None] * e1 + torch.sin(az)[:, None] * e2)
            + math.sin(el) * up)
    eyes = center + radius * dirs
    return _stack([look_at(eye, center, up) for eye in eyes], len(az))


def arc_path(center: Sequence[float] | Tensor, radius: float, elevation_deg: float,
             n_frames: int, up: Sequence[float] | Tensor, start_dir: Sequence[float] | Tensor,
             span_deg: float) -> Tensor:
    """Cameras sweeping `span_deg` of an orbit from `start_dir`'s azimuth (counter-clockwise
    about `up`) and back, easing at both ends, so the video loops: the part of an orbit that
    cameras around one side of an object saw (see ``orbit_path`` for the other arguments).

    Returns:
        cam_from_world [F,4,4] float32; frame 0 at `start_dir`'s azimuth, frame F/2 at the
        far end.
    """
    t = torch.arange(n_frames, dtype=_F64) / max(n_frames, 1)
    az = math.radians(span_deg) * 0.5 * (1.0 - torch.cos(2.0 * math.pi * t))
    return _around(center, radius, elevation_deg, up, start_dir, az)


def _stack(poses: list[Tensor], n_frames: int) -> Tensor:
    return torch.stack(poses) if poses else torch.zeros(n_frames, 4, 4)


# ---------------------------------------------------------------------------------------------
# Estimating an orbit from training cameras.


@dataclass(frozen=True)
class Orbit:
    """Orbit parameters estimated from cameras (see ``estimate_orbit``).

    Attributes:
        center: [3] point the cameras look at.
        radius: mean camera distance from ``center``.
        elevation_deg: mean camera elevation above the plane perpendicular to ``up``.
        up: [3] unit world up (see ``estimate_up``).
        start_dir: [3] direction from ``center`` to the first camera.
    """

    center: Tensor
    radius: float
    elevation_deg: float
    up: Tensor
    start_dir: Tensor


def _axes_world(cam_from_world: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Camera centres [C,3], forward (+z) axes [C,3] and up (-y) axes [C,3] in the world."""
    pose = cam_from_world.to(_F64)
    rot = pose[:, :3, :3]
    centers = -(rot.transpose(1, 2) @ pose[:, :3, 3:])[..., 0]
    return centers, rot[:, 2], -rot[:, 1]


def focus_point(cam_from_world: Tensor) -> Optional[Tensor]:
    """[3] least-squares intersection of the optical axes, or None if they are near-parallel.

    Args:
        cam_from_world: [C,4,4] OpenCV poses.
    """
    centers, fwd, _ = _axes_world(cam_from_world)
    proj = torch.eye(3, dtype=_F64) - fwd[:, :, None] * fwd[:, None, :]  # [C,3,3]
    A, b = proj.sum(0), (proj @ centers[:, :, None]).sum(0)[:, 0]
    eig = torch.linalg.eigvalsh(A)
    if len(centers) < 2 or eig[0] < 1e-3 * eig[-1]:
        return None
    point = torch.linalg.solve(A, b)
    if ((point - centers) * fwd).sum(-1).mean() <= 0:  # behind the cameras
        return None
    return point


def estimate_up(cam_from_world: Tensor) -> Tensor:
    """[3] unit world up direction estimated from camera orientations (not assumed).

    Photographers rarely roll the camera, so the cameras' right (+x) axes lie nearly in the
    horizontal plane: up is the direction most perpendicular to all of them, signed to agree
    with the mean -y axis. When the right axes do not span a plane (e.g. every camera faces
    the same way), the mean -y axis is used.

    Args:
        cam_from_world: [C,4,4] OpenCV poses.
    """
    rot = cam_from_world[:, :3, :3].to(_F64)
    rights, mean_up = rot[:, 0], -rot[:, 1].mean(0)
    if mean_up.norm() < 1e-6:
        raise VoxsplatError("camera path: the cameras' up directions cancel out; "
                            "pass an explicit up vector to orbit_path")
    mean_up = mean_up / mean_up.norm()
    eigvals, eigvecs = torch.linalg.eigh(rights.T @ rights / len(rights))
    if eigvals[1] - eigvals[0] < 0.05:  # right axes all (nearly) parallel: plane undefined
        return mean_up.float()
    up = eigvecs[:, 0]
    return (up if up @ mean_up >= 0 else -up).float()


def estimate_orbit(cameras: Cameras) -> Orbit:
    """Orbit centre, radius, elevation and up direction from (training) cameras.

    The centre is where the optical axes meet (least squares); for near-parallel axes it is
    placed in front of the mean camera at the cameras' mean distance from their centroid
    (at least 1). The up direction comes from ``estimate_up``.
    """
    if len(cameras) == 0:
        raise VoxsplatError("camera path: no cameras to fit an orbit to")
    centers, fwd, _ = _axes_world(cameras.cam_from_world)
    up = estimate_up(cameras.cam_from_world).to(_F64)
    center = focus_point(cameras.cam_from_world)
    if center is None:
        mean_fwd = fwd.mean(0) / fwd.mean(0).norm().clamp(min=1e-12)
        spread = (centers - centers.mean(0)).norm(dim=-1).mean()
        center = centers.mean(0) + mean_fwd * max(float(spread), 1.0)
    offsets = centers - center
    dist = offsets.norm(dim=-1)
    elev = torch.rad2deg(torch.asin(((offsets @ up) / dist.clamp(min=1e-12)).clamp(-1.0, 1.0)))
    return Orbit(center=center.float(), radius=float(dist.mean()),
                 elevation_deg=float(elev.mean()), up=up.float(),
                 start_dir=(offsets[0] / dist[0].clamp(min=1e-12)).float())


def covered_arc(cameras: Cameras, orbit: Orbit) -> tuple[Tensor, float]:
    """The arc of azimuths about `orbit.up` around `orbit.center` that the cameras cover:
    (the direction [3] of its first end, its span in degrees, 360 minus the widest azimuth
    gap between neighbouring cameras). Counter-clockwise from the first end about up."""
    centers, _, _ = _axes_world(cameras.cam_from_world)
    up = orbit.up.to(_F64)
    e1, e2 = _basis_around(up, orbit.start_dir.to(_F64))
    offsets = centers - orbit.center.to(_F64)
    az = torch.sort(torch.atan2(offsets @ e2, offsets @ e1) % (2.0 * math.pi)).values
    gaps = torch.diff(torch.cat([az, az[:1] + 2.0 * math.pi]))
    widest = int(gaps.argmax())
    first = float(az[(widest + 1) % len(az)])  # the camera after the widest gap
    start = math.cos(first) * e1 + math.sin(first) * e2
    return start.float(), math.degrees(2.0 * math.pi - float(gaps[widest]))


def default_arc(cameras: Cameras, n_frames: int = 120) -> Tensor:
    """``arc_path`` over the azimuths the cameras cover (``covered_arc``), at their mean
    distance and elevation around what they look at."""
    orbit = estimate_orbit(cameras)
    start, span = covered_arc(cameras, orbit)
    return arc_path(orbit.center, orbit.radius, orbit.elevation_deg, n_frames, orbit.up,
                    start, span)


def default_orbit(cameras: Cameras, n_frames: int = 120) -> Tensor:
    """An orbit around what the cameras look at, at their mean distance and elevation.

    Returns:
        cam_from_world [F,4,4] float32, starting at the first camera's azimuth.
    """
    orbit = estimate_orbit(cameras)
    return orbit_path(orbit.center, orbit.radius, orbit.elevation_deg, n_frames, orbit.up,
                      start_dir=orbit.start_dir)


# ---------------------------------------------------------------------------------------------
# Spiral (forward-facing scenes).


SPIRAL_MIN_AGREEMENT = 0.5
"""A spiral needs cameras that face one way: the length of their mean optical axis (1 when
all are parallel; ~0 for cameras around an object) must be at least this."""


def _spiral_frame(cam_from_world: Tensor) -> tuple[Tensor, Tensor]:
    """(the mean pose [4,4], world_from_cam: mean centre, mean optical axis, no roll; the up
    [3] that the spiral's frames keep): up is `estimate_up`, or for cameras that all look
    straight down or up (a drone's nadir photos) the photos' mean up (-y) axis.

    Raises:
        VoxsplatError: the optical axes do not agree on a direction (`SPIRAL_MIN_AGREEMENT`),
            or no up is across their mean (cameras looking down from all sides).
    """
    centers, fwd, ups = _axes_world(cam_from_world)
    z = fwd.mean(0)
    if float(z.norm()) < SPIRAL_MIN_AGREEMENT:
        raise VoxsplatError("camera path: the training cameras face many ways (around the "
                            "scene), so a spiral in front of them has no front; use --path "
                            "orbit or arc")
    z = z / z.norm()
    for up in (estimate_up(cam_from_world).to(_F64), ups.mean(0) / ups.mean(0).norm()):
        x = torch.linalg.cross(-up, z)  # down x forward = right
        if float(x.norm()) >= 0.2:
            break
    else:
        raise VoxsplatError("camera path: the training cameras look down (or up) from all "
                            "sides, so a spiral has no upright frame; use --path orbit or arc")
    x = x / x.norm()
    world_from_cam = torch.eye(4, dtype=_F64)
    world_from_cam[:3, :3] = torch.stack([x, torch.linalg.cross(z, x), z], dim=1)
    world_from_cam[:3, 3] = centers.mean(0)
    return world_from_cam, up


def mean_pose(cam_from_world: Tensor) -> Tensor:
    """[4,4] world_from_cam of the average camera (see `_spiral_frame`), OpenCV axes."""
    return _spiral_frame(cam_from_world)[0]


def spiral_path(cam_from_world: Tensor, n_frames: int, *, radius_scale: float = 1.0,
                focus_depth: Optional[float] = None, n_rotations: float = 2.0,
                z_rate: float = 0.5) -> Tensor:
    """LLFF-style spiral around the mean of forward-facing cameras, looking at a focus point,
    upright about the cameras' up (`estimate_up`: no roll where the photos had none).

    Args:
        cam_from_world: [C,4,4] training poses (OpenCV).
        n_frames: F frames over ``n_rotations`` turns (the last frame is not the first).
        radius_scale: multiplies the spiral radii, which are the 90th percentile of the
            camera offsets from the mean pose along its x, y and z axes.
        focus_depth: distance along the mean viewing direction that every frame looks at;
            None uses the optical axes' intersection, or 5x the largest radius (at least 1)
            when the axes are near-parallel.
        n_rotations: turns of the spiral.
        z_rate: forward/backward oscillations per turn, relative to the turns.

    Returns:
        cam_from_world [F,4,4] float32.

    Raises:
        VoxsplatError: the cameras do not face one way (see `mean_pose`).
    """
    mean, up = _spiral_frame(cam_from_world)
    centers, _, _ = _axes_world(cam_from_world)
    local = (centers - mean[:3, 3]) @ mean[:3, :3]  # offsets in the mean camera's frame
    radii = torch.quantile(local.abs(), 0.9, dim=0) * radius_scale
    if focus_depth is None:
        point = focus_point(cam_from_world)
        depth = None if point is None else float((point - mean[:3, 3]) @ mean[:3, 2])
        focus_depth = depth if depth and depth > 0 else max(5.0 * float(radii.max()), 1.0)
    target = mean[:3, 3] + focus_depth * mean[:3, 2]
    theta = torch.arange(n_frames, dtype=_F64) * (2.0 * math.pi * n_rotations / max(n_frames, 1))
    offsets = torch.stack([torch.cos(theta), torch.sin(theta), torch.sin(theta * z_rate)], -1)
    eyes = mean[:3, 3] + (offsets * radii) @ mean[:3, :3].T
    return _stack([look_at(eye, target, up) for eye in eyes], n_frames)


# ---------------------------------------------------------------------------------------------
# Interpolation through given cameras.




def _slerp(q0: Tensor, q1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation [N,4] between unit quaternions [N,4] at fractions t [N]."""
    dot = (q0 * q1).sum(-1)
    q1 = torch.where(dot[:, None] < 0, -q1, q1)  # shortest arc
    dot = dot.abs().clamp(max=1.0)
    angle = torch.acos(dot)
    sin = torch.sin(angle)
    small = sin < 1e-6
    w0 = torch.where(small, 1 - t, torch.sin((1 - t) * angle) / sin.clamp(min=1e-12))
    w1 = torch.where(small, t, torch.sin(t * angle) / sin.clamp(min=1e-12))
    q = w0[:, None] * q0 + w1[:, None] * q1
    return q / q.norm(dim=-1, keepdim=True)


def keyframe_indices(n_cameras: int, n_frames: int) -> Tensor:
    """Frame index [C] at which ``interpolate_path`` passes through each input camera.

    The F-1 steps are split as evenly as possible over the C-1 segments; camera 0 is frame 0
    and the last camera is frame F-1.
    """
    if n_cameras < 1 or n_frames < n_cameras:
        raise VoxsplatError(f"camera path: cannot pass through {n_cameras} cameras in "
                            f"{n_frames} frames; use at least as many frames as cameras")
    if n_cameras == 1:
        return torch.zeros(1, dtype=torch.int64)
    steps = torch.arange(n_cameras, dtype=torch.int64) * (n_frames - 1)
    return steps // (n_cameras - 1)


def _tour_length(centers: Tensor, order: Tensor) -> float:
    return float((centers[order[1:]] - centers[order[:-1]]).norm(dim=-1).sum())


def tour_order(cam_from_world: Tensor, max_starts: int = 64, max_two_opt: int = 300) -> Tensor:
    """[C] an order of the cameras that visits them along a short route: the given order where
    it is about as short as the greedy one (a video's frames), else the shortest greedy
    nearest-neighbour route (from up to `max_starts` start cameras), shortened by 2-opt for
    up to `max_two_opt` cameras. Photos in name order may jump back and forth across the
    scene."""
    centers, _, _ = _axes_world(cam_from_world)
    C = len(centers)
    given = torch.arange(C)
    if C < 4:
        return given
    dist = torch.cdist(centers, centers).numpy()
    best, best_length = None, math.inf
    for start in np.unique(np.linspace(0, C - 1, min(C, max_starts)).round().astype(int)):
        order, free = [int(start)], np.ones(C, dtype=bool)
        free[start] = False
        for _ in range(C - 1):
            d = np.where(free, dist[order[-1]], np.inf)
            order.append(int(d.argmin()))
            free[order[-1]] = False
        length = float(dist[order[:-1], order[1:]].sum())
        if length < best_length:
            best, best_length = order, length
    if _tour_length(centers, given) <= 1.1 * best_length:
        return given
    improved = C <= max_two_opt
    while improved:  # 2-opt on an open route: reverse any stretch that shortens it
        improved = False
        for i in range(1, C - 1):
            for j in range(i + 1, C):
                tail = j + 1 < C
                before = dist[best[i - 1], best[i]] + (dist[best[j], best[j + 1]] if tail else 0.0)
                after = dist[best[i - 1], best[j]] + (dist[best[i], best[j + 1]] if tail else 0.0)
                if after < before - 1e-9:
                    best[i:j + 1] = best[i:j + 1][::-1]
                    improved = True
    return torch.tensor(best)


def through_views(cam_from_world: Tensor, n_frames: int, frames_per_view: int = 3) -> Tensor:
    """A smooth path through the (training) cameras in `tour_order`, keeping at most one camera
    per `frames_per_view` frames (evenly along the route) so that every frame count works.

    Returns:
        cam_from_world [F,4,4] float32.
    """
    order = tour_order(cam_from_world)
    keep = max(2, n_frames // frames_per_view)
    if len(order) > keep:
        order = order[torch.linspace(0, len(order) - 1, keep).round().long()]
    return interpolate_path(cam_from_world[order], n_frames)


def interpolate_path(cam_from_world: Tensor, n_frames: int) -> Tensor:
    """A smooth path through the given cameras, in the given order.

    Positions follow a Catmull-Rom spline through the camera centres; rotations are slerped.
    Camera k is reproduced exactly at frame ``keyframe_indices(C, n_frames)[k]``.

    Args:
        cam_from_world: [C,4,4] OpenCV poses.
        n_frames: F >= C.

    Returns:
        cam_from_world [F,4,4] float32.
    """
    C = int(cam_from_world.shape[0])
    keys = keyframe_indices(C, n_frames)
    centers, _, _ = _axes_world(cam_from_world)
    quats = quat_from_rotmat(cam_from_world[:, :3, :3].to(_F64))
    if C == 1:
        return cam_from_world.float().expand(n_frames, 4, 4).clone()
    frames = torch.arange(n_frames)
    seg = (torch.searchsorted(keys, frames, right=True) - 1).clamp(0, C - 2)
    t = (frames - keys[seg]).to(_F64) / (keys[seg + 1] - keys[seg]).to(_F64)
    padded = torch.cat([2 * centers[:1] - centers[1:2], centers, 2 * centers[-1:] - centers[-2:-1]])
    p0, p1, p2, p3 = padded[seg], padded[seg + 1], padded[seg + 2], padded[seg + 3]
    tt = t[:, None]
    eyes = 0.5 * (2 * p1 + (p2 - p0) * tt + (2 * p0 - 5 * p1 + 4 * p2 - p3) * tt**2
                  + (3 * p1 - p0 - 3 * p2 + p3) * tt**3)
    rots = quat_to_rotmat(_slerp(quats[seg], quats[seg + 1], t))
    return _pose(rots, eyes).float()
