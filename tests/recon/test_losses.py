"""View consistency: the warp moves pixels by the stereo disparity, and the binocular loss on
a rendered scene is smallest at its true depth."""

import math

import torch

from voxsplat.data.cameras import Cameras
from voxsplat.recon.gaussians import render_splats
from voxsplat.recon.losses import binocular_loss, shifted_cameras, warp_from_view


def _camera(W=48, H=40, f=40.0) -> Cameras:
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    return Cameras(torch.eye(4)[None], K[None], torch.tensor([W]), torch.tensor([H]))


def test_warp_of_a_fronto_parallel_plane_is_a_shift_by_the_disparity():
    cams = _camera()
    img = torch.rand(1, 40, 48, 3)
    z, f = 2.0, 40.0
    shift = torch.tensor([3 * z / f])  # disparity f * shift / z = 3 pixels
    moved = shifted_cameras(cams, shift)
    b_from_a = moved.cam_from_world @ cams.world_from_cam
    warped, z_b, valid = warp_from_view(img, torch.full((1, 40, 48), z), cams.Ks, cams.Ks, b_from_a)
    assert torch.allclose(warped[:, :, 3:], img[:, :, :-3], atol=1e-5)
    assert not valid[:, :, :3].any() and valid[:, :, 3:].all()
    assert torch.allclose(z_b, torch.full_like(z_b, z))  # a sideways move keeps z
    # no depth: never valid
    _, _, valid = warp_from_view(img, torch.zeros(1, 40, 48), cams.Ks, cams.Ks, b_from_a)
    assert not valid.any()


def test_shifted_camera_moves_its_centre_along_its_own_x_axis():
    angle = 0.3
    R = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0],
                      [-math.sin(angle), 0, math.cos(angle)]])
    cam_from_world = torch.eye(4)
    cam_from_world[:3, :3] = R
    cam_from_world[:3, 3] = torch.tensor([0.1, -0.2, 0.5])
    cams = Cameras(cam_from_world[None], _camera().Ks, torch.tensor([48]), torch.tensor([40]))
    moved = shifted_cameras(cams, torch.tensor([0.7]))
    x_axis = cams.world_from_cam[0, :3, 0]
    assert torch.allclose(moved.centers[0], cams.centers[0] + 0.7 * x_axis, atol=1e-5)
    assert torch.allclose(moved.cam_from_world[0, :3, :3], R, atol=1e-6)


def _textured_wall(n=3000, z=3.0, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    xy = (torch.rand(n, 2, generator=g) * 2 - 1) * 3.0
    means = torch.cat([xy, torch.full((n, 1), z)], 1)
    return {"means": means, "quats": torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
            "scales": torch.full((n, 3), math.log(0.06)), "opacities": torch.full((n,), 4.0),
            "sh0": (torch.rand(n, 1, 3, generator=g) - 0.5) / 0.28, "shN": torch.zeros(n, 0, 3)}


def test_binocular_loss_is_smallest_at_the_rendered_scenes_true_depth():
    splats, cams = _textured_wall(), _camera()
    bg = torch.zeros(3)
    left = render_splats(splats, cams, 0, bg, "torch")
    shift = torch.tensor([0.15])  # 2 pixels of disparity at z = 3
    right = render_splats(splats, shifted_cameras(cams, shift), 0, bg, "torch")
    depth = left.depths[..., 0]
    losses = {s: float(binocular_loss(right.colors, depth * s, left.colors, cams.Ks, shift))
              for s in (0.6, 0.8, 1.0, 1.25, 1.6)}
    assert min(losses, key=losses.get) == 1.0, losses
    assert losses[1.0] < 0.5 * min(losses[0.6], losses[1.6]), losses
    # the loss pulls a wrong depth towards the true one
    d = (depth * 1.25).clone().requires_grad_()
    binocular_loss(right.colors, d, left.colors, cams.Ks, shift).backward()
    assert float(d.grad.sum()) > 0
