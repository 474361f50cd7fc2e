"""Where the voxel lattice lives: the world frame, or a reference camera's perspective frame.

The perspective lattice divides ``u = (x/z, y/z, log z)`` of points ``(x, y, z)`` in a reference
camera's frame (``ref_from_world [4,4]``, OpenCV: z forward). A lattice step ``s`` is about
``s * z`` world units along every axis at depth ``z``, so each voxel covers about the same number
of pixels at every depth: fine voxels near the cameras, coarse ones far away, as in the images of
a forward-facing scene (LLFF). Every lattice point maps to a world point in front of the
reference camera (``z = exp(u_z) > 0``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...data.errors import VoxsplatError


def mean_camera(cam_from_world: Tensor) -> Tensor:
    """A reference frame [4,4] for the cameras `cam_from_world [C,4,4]`: their mean centre and
    the rotation nearest (SVD) to the mean of their rotations."""
    R, t = cam_from_world[:, :3, :3].double(), cam_from_world[:, :3, 3].double()
    centers = -(R.transpose(1, 2) @ t[..., None])[..., 0]
    U, _, Vh = torch.linalg.svd(R.mean(0))
    R_ref = U @ Vh
    if torch.det(R_ref) < 0:
        R_ref = U @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=R.dtype)) @ Vh
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3], out[:3, 3] = R_ref, -R_ref @ centers.mean(0)
    return out.to(cam_from_world.dtype)


def to_lattice(points: Tensor, ref_from_world: Tensor | None) -> Tensor:
    """Lattice coordinates [P,3] of world `points [P,3]` (unchanged for a world lattice).

    Raises VoxsplatError when a point is not in front of the reference camera."""
    if ref_from_world is None:
        return points
    T = ref_from_world.to(points)
    p = points @ T[:3, :3].T + T[:3, 3]
    z = p[:, 2]
    scale = float(z.abs().max()) if len(z) else 1.0
    behind = z <= 1e-6 * max(scale, 1e-12)
    if bool(behind.any()):
        raise VoxsplatError(f"{int(behind.sum())} of {len(z)} points lie behind the cameras' mean "
                            "view: the depth lattice is for forward-facing scenes; use "
                            "--set voxel.lattice=world")
    return torch.stack([p[:, 0] / z, p[:, 1] / z, torch.log(z)], -1)


def to_world(u: Tensor, ref_from_world: Tensor | None) -> tuple[Tensor, Tensor]:
    """World points [P,3] of lattice points `u [P,3]`, and the world length [P] of one lattice
    unit there (1 for a world lattice, the depth z for a perspective one)."""
    if ref_from_world is None:
        return u, torch.ones_like(u[:, 0])
    T = ref_from_world.to(u)
    z = torch.exp(u[:, 2])
    p = torch.stack([u[:, 0] * z, u[:, 1] * z, z], -1)
    return (p - T[:3, 3]) @ T[:3, :3], z


def cameras_face_forward(cam_from_world: Tensor, max_angle_deg: float = 45.0) -> bool:
    """Whether every camera of `cam_from_world [C,4,4]` looks within `max_angle_deg` of their
    mean view's axis (a forward-facing capture, as LLFF's or DTU's; not cameras around an
    object, as lego's)."""
    return _within_cone(cam_from_world, mean_camera(cam_from_world), max_angle_deg)


def _within_cone(cam_from_world: Tensor, ref: Tensor, max_angle_deg: float) -> bool:
    """Whether every camera's optical axis lies within `max_angle_deg` of `ref [4,4]`'s."""
    axes = cam_from_world[:, 2, :3]  # each camera's optical axis in the world frame
    return float((axes @ ref[2, :3]).min()) >= math.cos(math.radians(max_angle_deg))


def is_forward_facing(cam_from_world: Tensor, points: Tensor, max_angle_deg: float = 45.0,
                      min_depth_ratio: float = 0.05) -> bool:
    """Whether the cameras face forward (`cameras_face_forward`) and every point `[P,3]` lies
    in front of their mean view, at least `min_depth_ratio` of the points' median depth away
    (a point near the camera plane would stretch the lattice's x/z and y/z over a wide range)."""
    ref = mean_camera(cam_from_world)
    if not _within_cone(cam_from_world, ref, max_angle_deg):
        return False
    if points.shape[0] == 0:
        return True
    z = points.to(ref) @ ref[2, :3] + ref[2, 3]
    return bool(float(z.min()) > min_depth_ratio * float(z.median()) > 0)
