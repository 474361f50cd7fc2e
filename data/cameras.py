"""Pinhole cameras in the OpenCV convention (x right, y down, z forward).

Conversions from other conventions (Blender/OpenGL, LLFF) happen only in the readers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[...,3,3] rotation matrices from (w,x,y,z) quaternions [...,4], normalized here.

    Differentiable; the one torch copy of this formula (Gaussians, camera paths, densification).
    """
    w, x, y, z = torch.nn.functional.normalize(quats, p=2, dim=-1).unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(quats.shape[:-1] + (3, 3))


def quat_from_rotmat(rot: Tensor) -> Tensor:
    """Unit quaternions [N,4] (w,x,y,z) from rotation matrices [N,3,3] (Shepperd's method);
    the inverse of `quat_to_rotmat` up to the quaternion's sign."""
    m = rot
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cands = torch.stack([
        torch.stack([1 + trace, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0],
                     m[:, 1, 0] - m[:, 0, 1]], -1),
        torch.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                     m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], -1),
        torch.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0],
                     1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], m[:, 1, 2] + m[:, 2, 1]], -1),
        torch.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                     1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1),
    ], 1)  # [N,4 candidates,4]; candidate k is 4*q*q_k, best conditioned when q_k is largest
    diag = torch.stack([trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    diag[:, 1:] = 2 * diag[:, 1:] - trace[:, None]  # proportional to q_k^2 ordering
    q = cands[torch.arange(len(m)), diag.argmax(-1)]
    return q / q.norm(dim=-1, keepdim=True)


def rigid_inverse(transforms: Tensor) -> Tensor:
    """[B,4,4] inverses of rigid transforms [B,4,4] (R|t -> R^T|-R^T t): no solver, so no
    device sync, unlike torch.linalg.inv."""
    rot_t = transforms[:, :3, :3].transpose(1, 2)
    out = torch.zeros_like(transforms)
    out[:, :3, :3] = rot_t
    out[:, :3, 3] = -(rot_t @ transforms[:, :3, 3:])[..., 0]
    out[:, 3, 3] = 1.0
    return out


@dataclass(frozen=True)
class Cameras:
    """A batch of C pinhole cameras.

    Attributes:
        cam_from_world: [C,4,4] float32 world-to-camera transforms (OpenCV).
        Ks: [C,3,3] float32 intrinsics, pixel centres at half-integers (gsplat's convention).
        widths: [C] int64 image widths in pixels.
        heights: [C] int64 image heights in pixels.
    """

    cam_from_world: Tensor
    Ks: Tensor
    widths: Tensor
    heights: Tensor

    def __post_init__(self) -> None:
        C = self.cam_from_world.shape[0]
        if self.cam_from_world.shape != (C, 4, 4) or self.Ks.shape != (C, 3, 3):
            raise ValueError(f"Cameras: expected [C,4,4] and [C,3,3], got "
                             f"{tuple(self.cam_from_world.shape)} and {tuple(self.Ks.shape)}")
        if self.widths.shape != (C,) or self.heights.shape != (C,):
            raise ValueError("Cameras: widths and heights must be [C]")

    def __len__(self) -> int:
        return int(self.cam_from_world.shape[0])

    def __getitem__(self, idx) -> "Cameras":
        """Select cameras by int, slice, list or index tensor; always returns a batch. An int
        or a list costs no copy between host and GPU (an int is a slice; a list goes up once):
        the trainer selects cameras every step."""
        if isinstance(idx, int):
            if not -len(self) <= idx < len(self):
                raise IndexError(f"camera {idx} of {len(self)}")
            idx = slice(idx, idx + 1 or None)
        if isinstance(idx, list):
            idx = torch.as_tensor(idx, dtype=torch.long)
        if torch.is_tensor(idx):
            dev_idx, cpu_idx = idx.to(self.cam_from_world.device), idx.cpu()
        else:
            dev_idx = cpu_idx = idx
        return Cameras(self.cam_from_world[dev_idx], self.Ks[dev_idx], self.widths[cpu_idx],
                       self.heights[cpu_idx])

    @staticmethod
    def cat(cams: list["Cameras"]) -> "Cameras":
        return Cameras(torch.cat([c.cam_from_world for c in cams]), torch.cat([c.Ks for c in cams]),
                       torch.cat([c.widths for c in cams]), torch.cat([c.heights for c in cams]))

    @property
    def device(self) -> torch.device:
        return self.cam_from_world.device

    def to(self, device) -> "Cameras":
        """Poses and intrinsics on `device`; widths/heights stay on the CPU (no syncs to read them)."""
        return Cameras(self.cam_from_world.to(device), self.Ks.to(device), self.widths, self.heights)

    @property
    def world_from_cam(self) -> Tensor:
        """[C,4,4] camera-to-world transforms (poses are rigid: see rigid_inverse)."""
        return rigid_inverse(self.cam_from_world)

    @property
    def optical_axes(self) -> Tensor:
        """[C,3] unit viewing directions (each camera's +z, OpenCV) in world coordinates."""
        axes = self.world_from_cam[:, :3, 2]
        return axes / axes.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @property
    def centers(self) -> Tensor:
        """[C,3] camera centres in world coordinates."""
        return self.world_from_cam[:, :3, 3]

    def size(self, i: int) -> tuple[int, int]:
        """(width, height) of camera i."""
        return int(self.widths[i]), int(self.heights[i])

    def with_size(self, width: int, height: int) -> "Cameras":
        """The same cameras with every image size set to `width` x `height`, intrinsics
        unchanged: views of different sizes placed at the top-left of one canvas."""
        C = len(self)
        return Cameras(self.cam_from_world, self.Ks, torch.full((C,), int(width)),
                       torch.full((C,), int(height)))

    def scaled(self, factor: float) -> "Cameras":
        """Cameras for images resized by `factor` (0.5 halves width and height).

        Sizes round to the nearest pixel; focal lengths and principal points scale by the
        actual size ratio so the image borders stay where they were.
        """
        new_w = torch.clamp((self.widths.double() * factor).round(), min=1).long()
        new_h = torch.clamp((self.heights.double() * factor).round(), min=1).long()
        Ks = self.Ks.clone()
        Ks[:, 0, :] *= (new_w.double() / self.widths.double()).to(Ks)[:, None]
        Ks[:, 1, :] *= (new_h.double() / self.heights.double()).to(Ks)[:, None]
        Ks[:, 2, :] = torch.tensor([0.0, 0.0, 1.0], dtype=Ks.dtype)
        return Cameras(self.cam_from_world.clone(), Ks, new_w, new_h)

    def transformed(self, world_from_old: Tensor) -> "Cameras":
        """Cameras after a similarity transform of the world (new = world_from_old @ old).

        Args:
            world_from_old: [4,4] similarity s*R|t. The scale is removed from the rotation
                part so cam_from_world stays rigid; translations scale by s.
        """
        s = torch.linalg.det(world_from_old[:3, :3]).abs() ** (1.0 / 3.0)
        world_from_cam = world_from_old.to(self.cam_from_world) @ self.world_from_cam
        world_from_cam[:, :3, :3] = world_from_cam[:, :3, :3] / s
        return Cameras(torch.linalg.inv(world_from_cam), self.Ks.clone(), self.widths.clone(),
                       self.heights.clone())


def camera_rays(Ks: Tensor, width: int, height: int) -> Tensor:
    """[C,H,W,3] camera-frame rays (z = 1) through the pixel centres (half-integers, as the
    rasterizers use) of cameras with intrinsics `Ks [C,3,3]`; K^-1 in closed form, skew
    included (no solver, no sync)."""
    dt, dev = Ks.dtype, Ks.device
    v, u = torch.meshgrid(torch.arange(height, device=dev, dtype=dt) + 0.5,
                          torch.arange(width, device=dev, dtype=dt) + 0.5, indexing="ij")
    fx, fy = Ks[:, 0, 0, None, None], Ks[:, 1, 1, None, None]
    y = (v - Ks[:, 1, 2, None, None]) / fy
    x = (u - Ks[:, 0, 2, None, None] - Ks[:, 0, 1, None, None] * y) / fx
    return torch.stack([x, y, torch.ones_like(x)], -1)


def nearest_view_angles(cams: Cameras, ids: list[int], ref_ids: list[int]) -> Tensor:
    """[len(ids)] smallest angle in degrees between each view's optical axis and those of the
    `ref_ids` views (e.g. held-out views against the training views: a large angle means the
    view looks at what no training view saw head-on, so its PSNR measures extrapolation).
    Zeros when `ref_ids` is empty (nothing to compare with)."""
    if not ids or not ref_ids:
        return torch.zeros(len(ids))
    axes = cams.optical_axes.float().cpu()
    cos = (axes[ids] @ axes[ref_ids].T).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos.max(dim=1).values))


def skew(v: Tensor) -> Tensor:
    """[N,3] -> [N,3,3] cross-product matrices (skew(v) @ x = v x x)."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(-1, 3, 3)


def rotvec_to_rotmat(rotvecs: Tensor) -> Tensor:
    """[N,3] rotation vectors (axis times angle, radians) -> [N,3,3] rotation matrices by
    Rodrigues' formula, with its Taylor series near 0 so the gradient is exact there too.

    The closed form, unlike ``torch.linalg.matrix_exp``, never waits for the GPU (that picks
    its series' degree from a norm it copies to the host), so a training step that turns its
    cameras with it stays asynchronous."""
    theta2 = (rotvecs * rotvecs).sum(-1)[:, None, None]
    small = theta2 < 1e-4  # below 0.01 rad, where 1 - cos loses float32's digits
    theta = theta2.clamp_min(1e-4).sqrt()
    a = torch.where(small, 1 - theta2 / 6 + theta2 ** 2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 ** 2 / 720,
                    (1 - torch.cos(theta)) / theta2.clamp_min(1e-4))
    k = skew(rotvecs)
    eye = torch.eye(3, dtype=rotvecs.dtype, device=rotvecs.device)
    return eye + a * k + b * (k @ k)


def perturbed_poses(cam_from_world: Tensor, degrees: float, shift: float,
                    gen: torch.Generator) -> Tensor:
    """[C,4,4] poses each turned by `degrees` about a random axis through the camera's centre
    and with the centre moved by a normal draw of `shift` per axis (world units): the errors
    that structure from motion leaves, for robustness tests and benchmarks."""
    C = len(cam_from_world)
    axes = torch.nn.functional.normalize(torch.randn(C, 3, generator=gen), dim=1)
    world_from_cam = rigid_inverse(cam_from_world)
    moved = world_from_cam.clone()
    turn = rotvec_to_rotmat(axes * math.radians(degrees)).to(cam_from_world)
    moved[:, :3, :3] = turn @ world_from_cam[:, :3, :3]
    moved[:, :3, 3] += (torch.randn(C, 3, generator=gen) * shift).to(cam_from_world)
    return rigid_inverse(moved)


def rotation_angles_deg(cam_from_world: Tensor, other: Tensor) -> Tensor:
    """[C] angle in degrees between the orientations of two sets of poses [C,4,4]."""
    rel = cam_from_world[:, :3, :3] @ other[:, :3, :3].transpose(1, 2)
    cos = (rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))
