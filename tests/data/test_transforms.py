"""normalize / downscale / split_every on in-memory scenes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from data_testkit import look_at, project_scene, ring_poses

from voxsplat.data.cameras import Cameras
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.scene import Scene
from voxsplat.data.transforms import downscale, normalize, optical_axes_center, split_every


def _scene(poses, names=None, width=16, height=12, points=None) -> Scene:
    C = len(poses)
    cam_from_world = torch.from_numpy(np.stack([np.linalg.inv(p) for p in poses])).float()
    K = torch.tensor([[20.0, 0, 8], [0, 20.0, 6], [0, 0, 1]])
    cameras = Cameras(cam_from_world, K.expand(C, 3, 3).clone(), torch.full((C,), width),
                      torch.full((C,), height))
    images = tuple(torch.randint(0, 256, (height, width, 3), dtype=torch.uint8) for _ in poses)
    masks = tuple(torch.ones(height, width, dtype=torch.bool) for _ in poses)
    return Scene(images=images, names=tuple(names or (f"v{i}" for i in range(C))),
                 cameras=cameras, masks=masks, points=points)


def test_normalize_centres_on_look_at_point_and_bounds_cameras():
    target = np.array([5.0, -3.0, 2.0])
    scene = _scene(ring_poses(6, radius=7.0, height=2.0, target=target))
    center = optical_axes_center(scene.cameras)
    np.testing.assert_allclose(center.numpy(), target, atol=1e-4)
    out = normalize(scene)
    distances = out.cameras.centers.norm(dim=1)
    assert distances.max().item() == pytest.approx(1.0, abs=1e-5)
    X_old = np.array([5.5, -2.5, 2.2])
    X_new = (out.world_from_input.double().numpy() @ np.append(X_old, 1.0))[:3]
    for i in range(len(scene)):  # the same point lands on the same pixel
        np.testing.assert_allclose(project_scene(out, i, X_new), project_scene(scene, i, X_old),
                                   atol=1e-3)
    np.testing.assert_allclose(project_scene(out, 0, [0, 0, 0]), [8, 6], atol=1e-3)


def test_normalize_composes_world_from_input():
    scene = _scene(ring_poses(4, target=(1.0, 2.0, 3.0)))
    scene = replace(scene, world_from_input=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
    once = normalize(scene)
    twice = normalize(once)
    torch.testing.assert_close(twice.world_from_input, once.world_from_input, atol=1e-5, rtol=0)
    assert once.world_from_input[0, 0].item() == pytest.approx(2.0 / (4.0**2 + 1.0) ** 0.5,
                                                               rel=1e-4)


def test_normalize_parallel_cameras_fall_back_to_mean_centre():
    poses = [look_at([x, 0.0, 0.0], [x, 10.0, 0.0]) for x in (-1.0, 0.0, 3.0)]
    scene = _scene(poses)
    assert optical_axes_center(scene.cameras) is None
    out = normalize(scene)
    np.testing.assert_allclose(out.cameras.centers.numpy()[:, 0], [-5 / 7, -2 / 7, 1.0], atol=1e-5)


def test_normalize_uses_points_bounding_box():
    points = torch.tensor([[1.0, 1.0, 1.0], [3.0, 5.0, 1.0], [2.0, 3.0, 1.0]])
    scene = _scene(ring_poses(4, radius=10.0, target=(2.0, 3.0, 1.0)), points=points)
    out = normalize(scene)
    bbox_centre = (out.points.min(0).values + out.points.max(0).values) / 2
    torch.testing.assert_close(bbox_centre, torch.zeros(3), atol=0.05, rtol=0)
    assert out.points.dtype == torch.float32


def test_downscale_images_masks_and_intrinsics():
    scene = _scene(ring_poses(2), width=16, height=12)
    out = downscale(scene, 0.25)
    assert out.cameras.size(1) == (4, 3) and out.images[1].shape == (3, 4, 3)
    assert out.masks[1].shape == (3, 4) and out.masks[1].all()
    np.testing.assert_allclose(out.cameras.Ks[0].numpy(), [[5, 0, 2], [0, 5, 1.5], [0, 0, 1]])
    assert downscale(scene, 1) is scene
    with pytest.raises(VoxsplatError, match=r"downscale=2: must be in \(0, 1\]"):
        downscale(scene, 2)


def test_split_every_follows_sorted_names():
    scene = _scene(ring_poses(5), names=["e", "a", "d", "b", "c"])
    out = split_every(scene, 2)
    assert [out.names[i] for i in out.splits["test"]] == ["a", "c", "e"]
    assert [out.names[i] for i in out.splits["train"]] == ["b", "d"]
    assert split_every(scene, 8).splits == {"test": (1,), "train": (3, 4, 2, 0)}


def test_nearest_view_angles_and_far_view_notes():
    """Held-out views are scored against the training view closest in direction; one turned
    far from all of them gets a note (its PSNR measures extrapolation)."""
    from voxsplat.data.cameras import nearest_view_angles
    from voxsplat.recon.pipeline import far_views
    poses = ring_poses(8, height=0.0)  # 45 degrees apart around the ring, all level
    cams = Cameras(torch.linalg.inv(torch.tensor(np.stack(poses), dtype=torch.float32)),
                   torch.eye(3).expand(8, 3, 3).clone(), torch.full((8,), 64), torch.full((8,), 48))
    angles = nearest_view_angles(cams, [1, 2, 4], [0, 2])
    torch.testing.assert_close(angles, torch.tensor([45.0, 0.0, 90.0]), atol=1e-3, rtol=0)
    assert nearest_view_angles(cams, [1], []).tolist() == [0.0]
    notes = far_views({"views": ["a", "b", "c"], "psnr_per_view": [20.0, 30.0, 9.0],
                       "nearest_train_angle_deg": angles.tolist()})
    assert len(notes) == 2 and notes[0].startswith("view a: 45 deg") and "9.00 dB" in notes[1]
