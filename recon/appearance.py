"""What a run learns besides the Gaussians: the sky behind them (`recon.sky`) and a colour
correction per training photo (exposure and white balance differ between photos taken with
auto-exposure, or by different cameras). The trainer holds one `Appearance`."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..data.cameras import Cameras
from ..render.sky import SkyMap
from .sky import LearnedSky

EXPOSURE_GAUGE_WEIGHT = 1.0
"""Weight of `ViewExposure.gauge_loss` in the training loss."""


class ViewExposure(torch.nn.Module):
    """Per training view, a colour affine map (3x3 matrix and offset, starting at the
    identity) applied to the render before it is compared with that view's photo. Held-out
    views and exports take none: they show the mean appearance, pinned by `gauge_loss`."""

    def __init__(self, n_views: int):
        super().__init__()
        self.matrices = torch.nn.Parameter(torch.eye(3).repeat(n_views, 1, 1))
        self.offsets = torch.nn.Parameter(torch.zeros(n_views, 3))

    def forward(self, colors: Tensor, slots: Tensor) -> Tensor:
        """`colors [B,H,W,3]` of the training views at `slots [B]`, corrected."""
        m, b = self.matrices[slots], self.offsets[slots]
        return torch.einsum("bij,bhwj->bhwi", m, colors) + b[:, None, None]

    def gauge_loss(self) -> Tensor:
        """Squared distance of the mean correction from the identity: the Gaussians keep the
        photos' mean colours, the corrections only what differs between photos."""
        eye = torch.eye(3, device=self.matrices.device)
        return (self.matrices.mean(0) - eye).square().sum() + self.offsets.mean(0).square().sum()


class Appearance(torch.nn.Module):
    """The learned sky and the per-view exposure of a run, either may be absent, with one
    Adam optimizer over both."""

    def __init__(self, sky: Optional[LearnedSky], exposure: Optional[ViewExposure],
                 view_ids: list[int], lr_sky: float, lr_exposure: float, sky_smooth: float = 0.0):
        super().__init__()
        self.sky, self.exposure = sky, exposure
        self.sky_smooth = sky_smooth
        self._slot = {v: j for j, v in enumerate(view_ids)}
        groups = ([{"params": list(sky.parameters()), "lr": lr_sky}] if sky is not None else []) + \
            ([{"params": list(exposure.parameters()), "lr": lr_exposure}] if exposure is not None else [])
        self.optimizer = torch.optim.Adam(groups) if groups else None

    @property
    def active(self) -> bool:
        return self.optimizer is not None

    def background(self, color: Tensor) -> Tensor | SkyMap:
        """What renders behind the Gaussians: the sky, else the constant `color [3]`."""
        return color if self.sky is None else self.sky.map()

    def adjust(self, colors: Tensor, view_ids: list[int]) -> Tensor:
        """Renders `colors [B,H,W,3]` of training views `view_ids` as their photos look."""
        if self.exposure is None:
            return colors
        slots = torch.tensor([self._slot[v] for v in view_ids], device=colors.device)
        return self.exposure(colors, slots)

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

    def checkpoint(self) -> dict:
        return {"appearance": self.state_dict(), "appearance_opt": self.optimizer.state_dict()}

    def restore(self, ckpt: dict) -> None:
        self.load_state_dict(ckpt["appearance"])
        self.optimizer.load_state_dict(ckpt["appearance_opt"])


def new_appearance(cams: Cameras, view_ids: list[int], mean_color: Optional[Tensor], sky: bool,
                   sky_resolution: int, lr_sky: float, exposure: bool,
                   lr_exposure: float, sky_smooth: float = 0.0) -> Appearance:
    """The Appearance of a run on training cameras `cams` (views `view_ids`); the sky starts
    at `mean_color [3]` (needed only with `sky`) and is smoothed with weight `sky_smooth`."""
    learned_sky = LearnedSky.create(cams, mean_color, sky_resolution) if sky else None
    per_view = ViewExposure(len(view_ids)).to(cams.device) if exposure else None
    return Appearance(learned_sky, per_view, view_ids, lr_sky, lr_exposure, sky_smooth)
