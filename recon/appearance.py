"""What a run learns besides the Gaussians: the sky behind them (`recon.sky`), a colour
correction per training photo (exposure and white balance differ between photos taken with
auto-exposure, or by different cameras) and a correction of each training camera's pose
(structure from motion leaves small errors). The trainer holds one `Appearance`."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..data.cameras import Cameras, rotvec_to_rotmat
from ..render.sky import SkyMap
from .sky import LearnedSky

EXPOSURE_GAUGE_WEIGHT = 1.0
"""Weight of `ViewExposure.gauge_loss` in the training loss."""


def rows(param: Tensor, slots: Sequence[int]) -> Tensor:
    """`param[slots]` for a few Python ints, without sending an index tensor to the GPU: that
    copy blocks until the GPU has caught up, which would serialize every training step."""
    return torch.stack([param[i] for i in slots])


class ViewExposure(torch.nn.Module):
    """Per training view, a colour affine map (3x3 matrix and offset, starting at the
    identity) applied to the render before it is compared with that view's photo. Held-out
    views and exports take none: they show the mean appearance, pinned by `gauge_loss`."""

    def __init__(self, n_views: int):
        super().__init__()
        self.matrices = torch.nn.Parameter(torch.eye(3).repeat(n_views, 1, 1))
        self.offsets = torch.nn.Parameter(torch.zeros(n_views, 3))

    def forward(self, colors: Tensor, slots: Sequence[int]) -> Tensor:
        """`colors [B,H,W,3]` of the training views at `slots` (B ints), corrected."""
        m, b = rows(self.matrices, slots), rows(self.offsets, slots)
        return torch.einsum("bij,bhwj->bhwi", m, colors) + b[:, None, None]

    def gauge_loss(self) -> Tensor:
        """Squared distance of the mean correction from the identity: the Gaussians keep the
        photos' mean colours, the corrections only what differs between photos."""
        eye = torch.eye(3, device=self.matrices.device)
        return (self.matrices.mean(0) - eye).square().sum() + self.offsets.mean(0).square().sum()


def gauge_basis(points: Tensor) -> Tensor:
    """[6N,k] orthonormal columns spanning the first-order motions of N cameras at `points
    [N,3]` (their centres in scene units) that a similarity transform of the whole scene
    gives, in ViewPoses' layout (per camera a rotation vector, then a translation):
    translations, rotations about the centroid, scaling about it (k <= 7; fewer for one or
    two cameras)."""
    p = (points - points.mean(0)).double()
    n, eye = len(p), torch.eye(3, dtype=torch.float64, device=p.device)
    cols = []
    for k in range(3):  # every centre moves along axis k
        cols.append(torch.cat([torch.zeros(n, 3, dtype=p.dtype, device=p.device),
                               eye[k].expand(n, 3)], 1))
    for k in range(3):  # every camera turns about axis k through the centroid
        cols.append(torch.cat([eye[k].expand(n, 3), torch.linalg.cross(eye[k].expand(n, 3), p)], 1))
    cols.append(torch.cat([torch.zeros_like(p), p], 1))  # every centre moves away from it
    G = torch.stack([c.reshape(-1) for c in cols], 1)  # [6N,7]
    U, S, _ = torch.linalg.svd(G, full_matrices=False)
    return U[:, S > 1e-6 * S.max()].float()


class ViewPoses(torch.nn.Module):
    """Per training view, a rigid correction of its pose learned with the Gaussians, as
    gsplat's `pose_opt` and nerfstudio's camera optimizer do: the camera turns by the rotation
    vector `rotations [N,3]` (radians, world axes) about its centre, and the centre moves by
    `translations [N,3]` x `scale` (the scene's extent). Held-out views keep their poses, so
    the corrections are kept free of what moving all cameras together would be (a
    similarity transform of the scene, which the Gaussians would follow): after every step
    that part is removed (`remove_gauge`)."""

    def __init__(self, centers: Tensor, scale: float):
        super().__init__()
        n = len(centers)
        self.scale = float(scale)
        self.rotations = torch.nn.Parameter(torch.zeros(n, 3, device=centers.device))
        self.translations = torch.nn.Parameter(torch.zeros(n, 3, device=centers.device))
        self.register_buffer("gauge", gauge_basis(centers.float() / self.scale), persistent=False)

    def forward(self, cam_from_world: Tensor, slots: Sequence[int]) -> Tensor:
        """`cam_from_world [B,4,4]` of the training views at `slots` (B ints), corrected: the
        camera turned by `rot` about its centre c, which moves by scale x translation, so
        R' = R rot^T and t' = -R' c'."""
        rot = rotvec_to_rotmat(rows(self.rotations, slots))
        R, t = cam_from_world[:, :3, :3], cam_from_world[:, :3, 3:]
        centers = self.scale * rows(self.translations, slots)[..., None] - R.transpose(1, 2) @ t
        R = R @ rot.transpose(1, 2)
        return torch.cat([torch.cat([R, -(R @ centers)], 2), cam_from_world[:, 3:]], 1)

    @torch.no_grad()
    def remove_gauge(self) -> None:
        x = torch.cat([self.rotations, self.translations], 1).reshape(-1)
        x -= self.gauge @ (self.gauge.T @ x)
        self.rotations.copy_(x.view(-1, 6)[:, :3])
        self.translations.copy_(x.view(-1, 6)[:, 3:])

    @torch.no_grad()
    def summary(self) -> dict:
        """How far the poses moved: rotation in degrees, translation as a fraction of the
        scene's extent (mean and max over the views)."""
        deg = torch.rad2deg(self.rotations.norm(dim=1))
        move = self.translations.norm(dim=1)
        return {"views": len(deg), "rotation_deg_mean": float(deg.mean()),
                "rotation_deg_max": float(deg.max()), "translation_mean": float(move.mean()),
                "translation_max": float(move.max())}


class Appearance(torch.nn.Module):
    """The learned sky, the per-view exposure and the per-view pose corrections of a run, any
    may be absent, with one Adam optimizer over them."""

    def __init__(self, sky: Optional[LearnedSky], exposure: Optional[ViewExposure],
                 view_ids: list[int], lr_sky: float, lr_exposure: float, sky_smooth: float = 0.0,
                 poses: Optional[ViewPoses] = None, lr_pose: float = 0.0):
        super().__init__()
        self.sky, self.exposure, self.poses = sky, exposure, poses
        self.sky_smooth = sky_smooth
        self._slot = {v: j for j, v in enumerate(view_ids)}
        groups = ([{"params": list(sky.parameters()), "lr": lr_sky}] if sky is not None else []) + \
            ([{"params": list(exposure.parameters()), "lr": lr_exposure}] if exposure is not None else []) + \
            ([{"params": list(poses.parameters()), "lr": lr_pose}] if poses is not None else [])
        self.optimizer = torch.optim.Adam(groups) if groups else None

    @property
    def active(self) -> bool:
        return self.optimizer is not None

    def background(self, color: Tensor) -> Tensor | SkyMap:
        """What renders behind the Gaussians: the sky, else the constant `color [3]`."""
        return color if self.sky is None else self.sky.map()

    def posed(self, cams: Cameras, view_ids: list[int]) -> Cameras:
        """Training views `view_ids`' cameras with their learned pose corrections."""
        if self.poses is None:
            return cams
        slots = [self._slot[v] for v in view_ids]
        return Cameras(self.poses(cams.cam_from_world, slots), cams.Ks, cams.widths, cams.heights)

    def adjust(self, colors: Tensor, view_ids: list[int]) -> Tensor:
        """Renders `colors [B,H,W,3]` of training views `view_ids` as their photos look."""
        if self.exposure is None:
            return colors
        return self.exposure(colors, [self._slot[v] for v in view_ids])

    def regularizer(self) -> Tensor | float:
        """The loss terms that pin the mean exposure to the identity and smooth the sky
        (`SkyConfig.smooth_weight`); 0 without either."""
        loss = 0.0 if self.exposure is None else EXPOSURE_GAUGE_WEIGHT * self.exposure.gauge_loss()
        if self.sky is not None and self.sky_smooth > 0:
            loss = loss + self.sky_smooth * self.sky.roughness()
        return loss

    def step(self) -> None:
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if self.poses is not None:
            self.poses.remove_gauge()

    def checkpoint(self) -> dict:
        return {"appearance": self.state_dict(), "appearance_opt": self.optimizer.state_dict()}

    def restore(self, ckpt: dict) -> None:
        self.load_state_dict(ckpt["appearance"])
        self.optimizer.load_state_dict(ckpt["appearance_opt"])


def new_appearance(cams: Cameras, view_ids: list[int], mean_color: Optional[Tensor], sky: bool,
                   sky_resolution: int, lr_sky: float, exposure: bool,
                   lr_exposure: float, sky_smooth: float = 0.0, poses: bool = False,
                   lr_pose: float = 0.0, scale: float = 1.0) -> Appearance:
    """The Appearance of a run on training cameras `cams` (views `view_ids`); the sky starts
    at `mean_color [3]` (needed only with `sky`) and is smoothed with weight `sky_smooth`;
    `poses`: learn pose corrections (translations in units of the scene's extent `scale`)."""
    learned_sky = LearnedSky.create(cams, mean_color, sky_resolution) if sky else None
    per_view = ViewExposure(len(view_ids)).to(cams.device) if exposure else None
    view_poses = ViewPoses(cams.centers, scale) if poses else None
    return Appearance(learned_sky, per_view, view_ids, lr_sky, lr_exposure, sky_smooth,
                      view_poses, lr_pose)
