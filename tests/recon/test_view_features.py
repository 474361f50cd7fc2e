"""`ViewFeatures`: the training photos agree at points on the surface they show and disagree
off it; views that do not see a point do not count."""

import math

import torch

from voxsplat.recon.representation.view_features import N_FEATURES, ViewFeatures

W, H, F, Z0 = 64, 48, 40.0, 2.0


def _texture(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([0.5 + 0.4 * torch.sin(7 * x) * torch.cos(5 * y),
                        0.5 + 0.4 * torch.cos(6 * x + 1),
                        0.5 + 0.4 * torch.sin(4 * y - 2 * x)], -1)


def _views(centres_x):
    """Photos of the textured plane z = Z0 from cameras at (cx, 0, 0) looking down +z."""
    K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    images, poses = [], []
    for cx in centres_x:
        x = (u - W / 2) / F * Z0 + cx
        y = (v - H / 2) / F * Z0
        images.append((_texture(x, y) * 255).round().to(torch.uint8))
        pose = torch.eye(4)
        pose[0, 3] = -cx
        poses.append(pose)
    return images, torch.stack(poses), K.expand(len(centres_x), 3, 3)


def test_photos_agree_on_the_surface_and_disagree_off_it():
    images, cam_from_world, Ks = _views([-0.3, 0.0, 0.3])
    vf = ViewFeatures.from_views(images, cam_from_world, Ks, scale=0.5)
    g = torch.Generator().manual_seed(0)
    xy = (torch.rand(200, 2, generator=g) - 0.5) * torch.tensor([1.0, 0.8])
    on = torch.cat([xy, torch.full((200, 1), Z0)], 1)
    off = torch.cat([xy, torch.full((200, 1), 0.7 * Z0)], 1)
    f_on, f_off = vf(on), vf(off)
    assert f_on.shape == (200, N_FEATURES)
    assert torch.allclose(f_on[:, 6], torch.ones(200))  # all three views see every point
    spread_on, spread_off = f_on[:, 3:6].mean(), f_off[:, 3:6].mean()
    assert spread_off > 3 * spread_on, (spread_on, spread_off)
    # on the surface the mean colour is the surface's (up to the shrunk photos' blur)
    err = (f_on[:, :3] + 0.5 - _texture(on[:, 0], on[:, 1])).abs().mean()
    assert err < 0.03, err


def test_views_that_do_not_see_a_point_do_not_count():
    images, cam_from_world, Ks = _views([-0.3, 0.0, 0.3])
    vf = ViewFeatures.from_views(images, cam_from_world, Ks, scale=0.5)
    behind = torch.tensor([[0.0, 0.0, -1.0]])
    # x = 1.75 at z = Z0 projects to u = 32 + 40 * (1.75 - cx) / 2: inside (< 64) only for
    # the camera at cx = 0.3 (u = 61)
    edge = torch.tensor([[1.75, 0.0, Z0]])
    f = vf(torch.cat([behind, edge]))
    assert f[0, 6] == 0 and torch.isfinite(f).all()
    assert math.isclose(float(f[1, 6]), 1 / 3, rel_tol=1e-6)
    assert float(f[1, 3:6].max()) < 0.02  # one view: no spread
    assert (f[1, :3] + 0.5 - _texture(edge[:, 0], edge[:, 1])[0]).abs().max() < 0.05
