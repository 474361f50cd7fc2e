"""The learned sky as Gaussians on a far sphere (`export --sky`): what a splat viewer shows
behind the scene is the sky the workspace renders with."""

import math

import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.export.backdrop import scene_radius, sky_splats, texel_directions
from voxsplat.recon.gaussians import render_splats
from voxsplat.render.metrics import psnr
from voxsplat.render.sky import SkyMap, render_sky, sample_sky, sky_frame


def _smooth_sky(h: int = 32) -> SkyMap:
    el = math.pi / 2 - (torch.arange(h) + 0.5) * math.pi / h
    az = -math.pi + (torch.arange(2 * h) + 0.5) * math.pi / h
    E, A = torch.meshgrid(el, az, indexing="ij")
    texture = torch.stack([0.5 + 0.4 * E.sin(), 0.5 + 0.3 * A.cos() * E.cos(),
                           0.5 + 0.3 * A.sin() * E.cos()], -1)
    return SkyMap(texture, sky_frame(torch.nn.functional.normalize(torch.tensor([0.2, 0.1, 1.0]), dim=0)))


def test_texel_directions_read_back_their_texels():
    sky = _smooth_sky(8)
    d, east, north = texel_directions(sky)
    torch.testing.assert_close(sample_sky(sky.texture, sky.sky_from_world, d),
                               sky.texture.reshape(-1, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.cross(east, north), d, atol=1e-5, rtol=0)


def test_the_backdrop_renders_as_the_sky_behind_the_scene():
    scene = make_synthetic_scene(SyntheticConfig(width=96, height=72, n_train=6, n_test=0,
                                                 n_points=100)).scene
    sky = _smooth_sky()
    center = torch.zeros(3)
    radius = scene_radius(scene.cameras, center)
    splats = sky_splats(sky, center, radius, sh_degree=1)
    assert splats["means"].shape == (32 * 64, 3) and splats["shN"].shape == (32 * 64, 3, 3)
    cams = scene.cameras[[0, 3]]
    out = render_splats(splats, cams, 1, torch.zeros(3), "torch")
    assert float(out.alphas.min()) > 0.95  # no holes between the texels' Gaussians
    quality = psnr(out.colors, render_sky(sky.texture, sky.sky_from_world, cams))
    assert float(quality.min()) > 30.0, quality  # measured 35.2 / 35.6
    assert float(out.depths.min()) > 0.8 * radius  # far behind the scene
