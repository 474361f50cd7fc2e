"""The sky behind the Gaussians: rays through pixel centres, texture lookups by direction."""

import math

import pytest
import torch

from voxsplat.data.cameras import Cameras
from voxsplat.render.sky import pixel_directions, sample_sky, sky_frame
from voxsplat.render.camera_paths import look_at


def _cams() -> Cameras:
    poses = torch.stack([look_at([3.0, -2.0, 1.5], [0.0, 0.0, 0.2], [0.0, 0.0, 1.0]),
                         look_at([-1.0, 2.5, 0.5], [0.3, 0.0, 0.0], [0.0, 0.0, 1.0])]).float()
    K = torch.tensor([[50.0, 0.7, 20.5], [0.0, 45.0, 14.0], [0.0, 0.0, 1.0]])
    return Cameras(poses, K.expand(2, 3, 3).clone(), torch.tensor([40, 40]), torch.tensor([30, 30]))


def test_pixel_directions_pass_through_the_pixel_centres():
    cams = _cams()
    dirs = pixel_directions(cams)  # [2,30,40,3]
    assert dirs.shape == (2, 30, 40, 3)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(2, 30, 40))
    points = cams.centers[:, None, None] + 2.5 * dirs  # a point on each ray, projected back
    cam_pts = torch.einsum("cij,chwj->chwi", cams.cam_from_world[:, :3, :3], points) \
        + cams.cam_from_world[:, None, None, :3, 3]
    px = torch.einsum("cij,chwj->chwi", cams.Ks, cam_pts)
    px = px[..., :2] / px[..., 2:]
    v, u = torch.meshgrid(torch.arange(30.0) + 0.5, torch.arange(40.0) + 0.5, indexing="ij")
    torch.testing.assert_close(px, torch.stack([u, v], -1).expand(2, -1, -1, -1),
                               atol=1e-3, rtol=0)


def _direction(elevation: torch.Tensor, azimuth: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(elevation) * torch.cos(azimuth),
                        torch.cos(elevation) * torch.sin(azimuth), torch.sin(elevation)], -1)


def test_sample_sky_reads_texel_centres_and_wraps_around_the_horizon():
    h, w = 4, 8
    texture = torch.rand(h, w, 3, generator=torch.Generator().manual_seed(0))
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    elevation = math.pi / 2 - (rows + 0.5) * math.pi / h  # row 0 is the zenith band
    azimuth = -math.pi + (cols + 0.5) * 2 * math.pi / w
    got = sample_sky(texture, torch.eye(3), _direction(elevation.double(), azimuth.double()).float())
    torch.testing.assert_close(got, texture, atol=1e-4, rtol=0)
    # either side of azimuth +-pi reads the mean of the first and the last column
    el = torch.full((2,), math.pi / 2 - 1.5 * math.pi / h)
    seam = sample_sky(texture, torch.eye(3), _direction(el, torch.tensor([math.pi - 1e-6, -math.pi + 1e-6])))
    mean = (texture[1, 0] + texture[1, -1]) / 2
    torch.testing.assert_close(seam, mean.expand(2, 3), atol=1e-4, rtol=0)
    # the sky frame turns world directions into the texture's frame before the lookup
    frame = sky_frame(torch.tensor([0.2, -0.9, 0.3]))
    world = torch.nn.functional.normalize(torch.randn(50, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
    torch.testing.assert_close(sample_sky(texture, frame, world),
                               sample_sky(texture, torch.eye(3), world @ frame.T), atol=1e-5, rtol=0)

def test_sky_frame_is_a_rotation_with_up_as_its_last_row():
    for up in (torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.3, -0.8, 0.2]), torch.tensor([0.0, -1.0, 0.0])):
        frame = sky_frame(up)
        torch.testing.assert_close(frame @ frame.T, torch.eye(3), atol=1e-6, rtol=0)
        assert torch.linalg.det(frame) > 0.999
        torch.testing.assert_close(frame @ (up / up.norm()), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def test_texture_roughness_is_zero_for_a_constant_sky_and_wraps_around_the_horizon():
    from voxsplat.render.sky import texture_roughness
    flat = torch.full((4, 8, 3), 0.3)
    assert float(texture_roughness(flat)) == 0.0
    seam = flat.clone()
    seam[:, 4:] = 0.5  # two steps of 0.2 around the horizon (at column 4 and back at column 0)
    expected = 0.5 * (0.0 + 2 * 4 * 3 * 0.2 ** 2 / seam.numel())
    assert float(texture_roughness(seam)) == pytest.approx(expected, rel=1e-5)
    rows = flat.clone()
    rows[2:] = 0.5  # one step down the rows
    assert float(texture_roughness(rows)) == pytest.approx(0.5 * 8 * 3 * 0.2 ** 2 / (3 * 8 * 3), rel=1e-5)
