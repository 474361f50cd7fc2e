"""The learned sky as Gaussians on a far sphere (`voxsplat export --sky`), for splat viewers.

A workspace's sky (`sky.pt`, a latitude-longitude texture at infinity) is no Gaussian, so
`.ply`/`.splat` viewers show their own background where it was. This turns each texel into
one flat, opaque Gaussian on a sphere far around the scene, facing its centre and as wide as
the texel, so a viewer shows the sky behind the scene; from near the centre it looks as it
did at infinity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...data.cameras import Cameras, quat_from_rotmat
from ...render.sky import SkyMap
from ...render.sh import RGB2SH

BACKDROP_DISTANCE = 10.0
"""The sphere's radius, in multiples of the farthest training camera's distance from the
scene centre."""
_OPACITY = 0.99
_WIDTH = 0.7
"""A Gaussian's standard deviation along the sphere, in texel sizes (neighbours overlap)."""
_THICKNESS = 1e-3
"""Its standard deviation across the sphere, in multiples of the radius."""


def texel_directions(sky: SkyMap) -> tuple[Tensor, Tensor, Tensor]:
    """Unit world directions [h*w,3] through the texel centres of `sky`'s texture (rows zenith
    -> nadir, columns azimuth -pi -> pi, as `render.sky.sample_sky` reads it), and the sky
    frame's east and north there [h*w,3] each."""
    h, w = sky.texture.shape[:2]
    dev = sky.texture.device
    elevation = math.pi / 2 - (torch.arange(h, device=dev) + 0.5) * math.pi / h
    azimuth = -math.pi + (torch.arange(w, device=dev) + 0.5) * 2 * math.pi / w
    el, az = torch.meshgrid(elevation, azimuth, indexing="ij")
    el, az = el.reshape(-1), az.reshape(-1)
    d = torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], -1)
    east = torch.stack([-az.sin(), az.cos(), torch.zeros_like(az)], -1)
    north = torch.linalg.cross(d, east)
    world_from_sky = sky.sky_from_world.T.to(d)
    return d @ world_from_sky.T, east @ world_from_sky.T, north @ world_from_sky.T


def scene_radius(cameras: Cameras, center: Tensor) -> float:
    """The backdrop's radius for training `cameras` around `center [3]`."""
    return BACKDROP_DISTANCE * float((cameras.centers - center.to(cameras.centers)).norm(dim=-1).max())


def sky_splats(sky: SkyMap, center: Tensor, radius: float, sh_degree: int) -> dict[str, Tensor]:
    """One Gaussian per texel of `sky` (raw parameters, `sh_degree` like the scene's, view-
    independent colour) on the sphere of `radius` around `center [3]`."""
    h, w = sky.texture.shape[:2]
    d, east, north = texel_directions(sky)
    el = torch.asin((d @ sky.sky_from_world.to(d).T)[:, 2].clamp(-1, 1))
    along = radius * 2 * math.pi / w * el.cos().clamp_min(math.pi / w)  # texel width (azimuth)
    across = torch.full_like(along, radius * math.pi / h)  # texel height (elevation)
    scales = torch.stack([_WIDTH * along, _WIDTH * across,
                          torch.full_like(along, _THICKNESS * radius)], -1)
    rot = torch.stack([east, north, d], -1)  # local x, y, z (the normal) as columns
    n = h * w
    K = (sh_degree + 1) ** 2
    return {
        "means": center.to(d) + radius * d,
        "scales": scales.log(),
        "quats": quat_from_rotmat(rot),
        "opacities": torch.full((n,), math.log(_OPACITY / (1 - _OPACITY)), device=d.device),
        "sh0": RGB2SH(sky.texture.reshape(-1, 3).to(d).clamp(0, 1))[:, None, :],
        "shN": torch.zeros(n, K - 1, 3, device=d.device),
    }
