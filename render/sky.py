"""A sky behind the Gaussians: an environment map at infinity, looked up by ray direction in a
latitude-longitude texture and composited where the Gaussians leave a pixel open.

Outdoor photos show sky that no Gaussian can hold (it has no depth and no texture for MVS), so
without it open pixels take the scene's constant background colour (white) in training, and
novel views show white holes. The texture lives in a "sky frame" whose third axis is up
(`sky_frame`): rows run from the zenith (top) to the nadir, columns once around the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.cameras import Cameras, camera_rays


def pixel_directions(cams: Cameras) -> Tensor:
    """[C,H,W,3] unit world directions of the rays through the pixel centres of `cams` (all
    of one size; pixel centres at half-integers, as the rasterizers use)."""
    W, H = cams.size(0)
    rays_cam = camera_rays(cams.Ks, W, H)  # [C,H,W,3]
    rot_world_from_cam = cams.world_from_cam[:, :3, :3]
    rays = torch.einsum("cij,chwj->chwi", rot_world_from_cam, rays_cam)
    return F.normalize(rays, dim=-1)


def sky_frame(up: Tensor) -> Tensor:
    """[3,3] `sky_from_world` rotation whose rows are two horizontal axes and `up [3]`."""
    up = F.normalize(up.float(), dim=0)
    helper = torch.zeros_like(up)
    helper[int(up.abs().argmin())] = 1.0  # the world axis least aligned with up
    east = F.normalize(torch.linalg.cross(helper, up), dim=0)
    north = torch.linalg.cross(up, east)
    return torch.stack([east, north, up])


def sample_sky(texture: Tensor, sky_from_world: Tensor, directions: Tensor) -> Tensor:
    """Colours [...,3] of the sky `texture [h,w,3]` (rows zenith -> nadir, columns azimuth
    -pi -> pi, bilinear, wrapping around the horizon) along unit world `directions [...,3]`;
    differentiable in `texture`."""
    d = directions @ sky_from_world.T.to(directions)
    elevation = torch.asin(d[..., 2].clamp(-1.0, 1.0))  # [-pi/2, pi/2]
    azimuth = torch.atan2(d[..., 1], d[..., 0])  # [-pi, pi]
    h, w = texture.shape[:2]
    wrapped = torch.cat([texture[:, -1:], texture, texture[:, :1]], 1)  # a column each side
    gx = azimuth / math.pi * (w / (w + 2))  # align_corners=False: texel centres of the padding
    gy = -elevation / (math.pi / 2)
    grid = torch.stack([gx, gy], -1).reshape(1, -1, 1, 2)
    img = wrapped.permute(2, 0, 1)[None].to(directions)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, :, 0].T.reshape(*directions.shape[:-1], 3)


def texture_roughness(texture: Tensor) -> Tensor:
    """Mean squared colour difference between neighbouring texels of `texture [h,w,3]`, down
    the rows and along the columns (wrapping around the horizon): 0 for a constant sky."""
    down = texture[1:] - texture[:-1]
    around = texture - torch.roll(texture, 1, dims=1)
    return 0.5 * (down.square().mean() + around.square().mean())


def composite_sky(colors: Tensor, alphas: Tensor, sky: Tensor) -> Tensor:
    """Renders `colors [C,H,W,3]` made on a black background, with accumulated `alphas
    [C,H,W,1]`, put in front of `sky [C,H,W,3]`."""
    return colors + (1.0 - alphas) * sky


def render_sky(texture: Tensor, sky_from_world: Tensor, cams: Cameras) -> Tensor:
    """[C,H,W,3] the sky `texture` seen by `cams` (one size)."""
    return sample_sky(texture, sky_from_world, pixel_directions(cams))


@dataclass
class SkyMap:
    """A sky to render behind Gaussians: pass it wherever a background colour goes
    (`recon.gaussians.render_splats`).

    Attributes:
        texture: [h,w,3] colours in [0,1], rows zenith -> nadir, columns azimuth -pi -> pi.
        sky_from_world: [3,3] rotation into the sky frame (third row = up).
    """

    texture: Tensor
    sky_from_world: Tensor

    def render(self, cams: Cameras) -> Tensor:
        """[C,H,W,3] the sky seen by `cams` (one size)."""
        return render_sky(self.texture, self.sky_from_world, cams)

    def to(self, device) -> "SkyMap":
        return SkyMap(self.texture.to(device), self.sky_from_world.to(device))

    def detach(self) -> "SkyMap":
        return SkyMap(self.texture.detach(), self.sky_from_world.detach())
