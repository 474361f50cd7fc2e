"""Unseen-view regularizers: turned cameras keep their pivot, the warp through the true depth
reproduces a textured plane seen from a turned view, depth smoothness sees steps only where
solid."""

import math

import torch
from torch import Tensor

from voxsplat.data.cameras import Cameras
from voxsplat.recon.losses import consistency_loss, warp_from_view
from voxsplat.recon.pseudo import depth_smoothness, neighbour_degrees, orbited_cameras

from test_losses import _camera


def _posed_cameras(n=6, seed=0) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    cam_from_world = torch.eye(4).repeat(n, 1, 1)
    for i in range(n):
        a, b = (torch.rand(2, generator=g) * 2 - 1).tolist()
        ry = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        rx = torch.tensor([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
        cam_from_world[i, :3, :3] = rx @ ry
        cam_from_world[i, :3, 3] = torch.rand(3, generator=g) - 0.5
    K = _camera().Ks.expand(n, 3, 3)
    return Cameras(cam_from_world, K, torch.full((n,), 48), torch.full((n,), 40))


def test_turned_cameras_keep_the_pivot_at_the_same_pixel_and_distance():
    cams = _posed_cameras()
    pivots = cams.centers + 2.5 * cams.optical_axes
    turned = orbited_cameras(cams, pivots, 20.0, torch.Generator().manual_seed(1))
    p_cam = (turned.cam_from_world[:, :3, :3] @ pivots[..., None])[..., 0] + turned.cam_from_world[:, :3, 3]
    assert torch.allclose(p_cam, torch.tensor([0.0, 0.0, 2.5]).expand_as(p_cam), atol=1e-4)
    cos = (turned.optical_axes * cams.optical_axes).sum(-1).clamp(-1, 1)
    degrees = torch.rad2deg(torch.acos(cos))
    assert (degrees <= 20.0 + 1e-3).all() and (degrees > 0.1).all(), degrees
    # rigid: rotation part stays a rotation; 0 degrees leaves the cameras where they were
    R = turned.cam_from_world[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand_as(R), atol=1e-5)
    same = orbited_cameras(cams, pivots, 0.0, torch.Generator().manual_seed(1))
    assert torch.allclose(same.cam_from_world, cams.cam_from_world, atol=1e-5)


def test_per_camera_turn_limits_and_neighbour_angles():
    cams = _posed_cameras()
    axes = cams.optical_axes
    cos = (axes @ axes.T).clamp(-1, 1).fill_diagonal_(-1.0)
    expected = torch.rad2deg(torch.acos(cos.amax(1)))
    got = neighbour_degrees(cams, cams)
    assert torch.allclose(got, expected, atol=1e-3) and (got > 1.0).all(), (got, expected)
    assert torch.allclose(neighbour_degrees(cams[:1], cams[:1]), torch.tensor([180.0]))
    pivots = cams.centers + 2.5 * axes
    limits = torch.tensor([0.0, 2.0, 5.0, 10.0, 20.0, 40.0])
    turned = orbited_cameras(cams, pivots, limits, torch.Generator().manual_seed(1))
    degrees = torch.rad2deg(torch.acos((turned.optical_axes * axes).sum(-1).clamp(-1, 1)))
    assert (degrees <= limits + 1e-2).all() and degrees[0] < 1e-2 and (degrees[1:] > 0.01).all(), degrees


def _plane_view(cams: Cameras, normal: Tensor, offset: float) -> tuple[Tensor, Tensor]:
    """Camera-space z [B,H,W] of the plane normal . X = offset seen by `cams`, and a smooth
    texture [B,H,W,3] painted on it (a function of the world point)."""
    H, W = int(cams.heights[0]), int(cams.widths[0])
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1).reshape(1, -1, 3)
    rays_cam = pix @ torch.linalg.inv(cams.Ks).transpose(1, 2)  # z = 1
    world_from_cam = cams.world_from_cam
    rays = rays_cam @ world_from_cam[:, :3, :3].transpose(1, 2)
    origin = world_from_cam[:, None, :3, 3]
    z = (offset - (origin * normal).sum(-1)) / (rays * normal).sum(-1)  # [B,HW]
    X = origin + z[..., None] * rays
    texture = torch.stack([torch.sin(3 * X[..., 0]), torch.cos(4 * X[..., 1]),
                           torch.sin(2 * X[..., 0] + 3 * X[..., 1])], -1) * 0.4 + 0.5
    return z.view(-1, H, W), texture.view(-1, H, W, 3)


def test_warp_through_the_true_depth_reproduces_the_training_view_from_a_turned_view():
    cams = _posed_cameras(3)
    normal = -cams.optical_axes[0]  # a plane facing the first camera, 3 units ahead
    offset = float((normal * (cams.centers[0] + 3.0 * cams.optical_axes[0])).sum())
    cams = cams[[0, 0, 0]]
    depth_a, image_a = _plane_view(cams, normal, offset)
    pivots = cams.centers + torch.tensor([1.5, 3.0, 6.0])[:, None] * cams.optical_axes
    turned = orbited_cameras(cams, pivots, 15.0, torch.Generator().manual_seed(0))
    _, image_b = _plane_view(turned, normal, offset)
    b_from_a = turned.cam_from_world @ cams.world_from_cam
    errors = {}
    for s in (0.8, 0.9, 1.0, 1.1, 1.25):
        warped, _, valid = warp_from_view(image_b, depth_a * s, cams.Ks, turned.Ks, b_from_a)
        assert valid.float().mean() > 0.5
        errors[s] = float((warped - image_a).abs()[valid].mean())
    assert errors[1.0] < 2e-3, errors  # only bilinear resampling left
    assert min(errors[0.9], errors[1.1]) > 5 * errors[1.0], errors
    # with b's depth, points that something in front hides from b drop out of the loss
    depth_b = _plane_view(turned, normal, offset)[0]
    occluded, occluder = image_b.clone(), depth_b.clone()
    occluded[:, :, :24], occluder[:, :, :24] = 0.0, depth_b[:, :, :24] * 0.5
    args = (depth_a, image_a, cams.Ks, turned.Ks, b_from_a)
    clean = float(consistency_loss(image_b, *args, depth_b))
    hidden = float(consistency_loss(occluded, *args, occluder))
    seen_through = float(consistency_loss(occluded, *args))
    assert clean < 2e-3 and hidden < 5e-3 and seen_through > 0.1, (clean, hidden, seen_through)


def test_depth_smoothness_penalizes_steps_between_solid_pixels_only():
    flat = torch.full((1, 8, 8), 2.0)
    alpha = torch.ones(1, 8, 8)
    scale = torch.tensor([2.0])
    assert float(depth_smoothness(flat, alpha, scale)) == 0.0
    step = flat.clone()
    step[:, :, 4:] = 3.0  # a jump of 0.5 median depths across one column boundary
    expected = 0.25 * 8 / (2 * 8 * 7)  # 8 jumping pairs out of 112
    assert math.isclose(float(depth_smoothness(step, alpha, scale)), expected, rel_tol=1e-5)
    see_through = alpha.clone()
    see_through[:, :, 4:] = 0.0  # the far side is empty: the jump is a silhouette, not a step
    assert float(depth_smoothness(step, see_through, scale)) == 0.0
    d = step.clone().requires_grad_()
    depth_smoothness(d, alpha, scale).backward()
    assert float(d.grad[0, 0, 4]) > 0 and float(d.grad[0, 0, 3]) < 0  # pulls both sides together
