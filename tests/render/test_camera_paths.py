"""Camera paths: geometry of look-at, orbits, spirals and interpolation (OpenCV convention)."""

from __future__ import annotations

import math

import pytest
import torch

from voxsplat.data import synthetic as syn
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.cameras import Cameras
from voxsplat.render.camera_paths import (arc_path, covered_arc, default_arc, default_orbit,
                                          estimate_orbit, estimate_up, interpolate_path,
                                          keyframe_indices, look_at, orbit_path, spiral_path,
                                          through_views, tour_order)


def _cam_coords(cam_from_world: torch.Tensor, point) -> torch.Tensor:
    """[F,3] camera coordinates of one world point in every frame."""
    point = torch.as_tensor(point, dtype=torch.float32)
    return (cam_from_world[:, :3, :3] @ point + cam_from_world[:, :3, 3])


def _assert_rigid(cam_from_world: torch.Tensor) -> None:
    rot = cam_from_world[:, :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    ones = torch.ones(len(rot), dtype=torch.float64)
    assert torch.allclose(torch.linalg.det(rot), ones, atol=1e-5)
    assert torch.equal(cam_from_world[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(len(rot), 4))


def _random_poses(n: int, seed: int = 0) -> torch.Tensor:
    """[n,4,4] cameras on a noisy arc, each looking near the origin."""
    g = torch.Generator().manual_seed(seed)
    poses = []
    for k in range(n):
        az = 0.6 * k + 0.2 * float(torch.rand(1, generator=g))
        height = 1.0 + float(torch.rand(1, generator=g))
        eye = torch.tensor([3 * math.cos(az), 3 * math.sin(az), height])
        poses.append(look_at(eye, 0.3 * torch.randn(3, generator=g), (0.0, 0.0, 1.0)))
    return torch.stack(poses)


def test_look_at_is_a_proper_opencv_rotation():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        eye, target = 3 * torch.randn(3, generator=g), torch.randn(3, generator=g)
        up = torch.nn.functional.normalize(torch.randn(3, generator=g), dim=0)
        pose = look_at(eye, target, up)
        _assert_rigid(pose[None])
        target_cam = _cam_coords(pose[None], target)[0]
        assert torch.allclose(target_cam[:2], torch.zeros(2), atol=1e-5)
        assert target_cam[2] == pytest.approx(float((target - eye).norm()), rel=1e-5)
        assert torch.allclose(_cam_coords(pose[None], eye)[0], torch.zeros(3), atol=1e-5)
        up_cam = pose[:3, :3] @ up
        assert float(up_cam[0]) == pytest.approx(0.0, abs=1e-5) and float(up_cam[1]) < 0
    straight_down = look_at((0.0, 0.0, 5.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    _assert_rigid(straight_down[None])


def test_orbit_looks_at_centre_at_constant_radius_and_elevation():
    center = torch.tensor([0.5, -1.0, 2.0])
    up = torch.nn.functional.normalize(torch.tensor([0.2, -0.3, 1.0]), dim=0)
    poses = orbit_path(center, 2.5, 30.0, 24, up, start_dir=(1.0, 0.0, 0.0))
    assert poses.shape == (24, 4, 4) and poses.dtype == torch.float32
    _assert_rigid(poses)
    center_cam = _cam_coords(poses, center)
    assert torch.allclose(center_cam[:, :2], torch.zeros(24, 2), atol=1e-5)  # image centre
    assert torch.allclose(center_cam[:, 2], torch.full((24,), 2.5), atol=1e-5)
    offsets = torch.linalg.inv(poses)[:, :3, 3] - center
    assert torch.allclose(offsets.norm(dim=-1), torch.full((24,), 2.5), atol=1e-5)
    elevation = torch.rad2deg(torch.asin(offsets @ up / 2.5))
    assert torch.allclose(elevation, torch.full((24,), 30.0), atol=1e-3)
    steps = (offsets.roll(-1, 0) - offsets).norm(dim=-1)  # evenly spaced, closed loop
    assert torch.allclose(steps, steps.mean().expand(24), atol=1e-5)
    assert float(offsets[0, 0]) > 0 and abs(float(offsets[0, 1])) < abs(float(offsets[0, 0]))


def test_default_orbit_recovers_the_synthetic_rig():
    cams = syn.make_synthetic_scene(syn.SYNTHETIC_PRESETS["tiny"]).scene.cameras
    orbit = estimate_orbit(cams)
    assert torch.allclose(orbit.center, torch.tensor(syn.LOOK_AT), atol=1e-4)
    assert orbit.radius == pytest.approx(3.0, rel=0.03)
    assert 15.0 <= orbit.elevation_deg <= 60.0
    assert float(orbit.up @ torch.tensor([0.0, 0.0, 1.0])) > 0.9999
    poses = default_orbit(cams, n_frames=12)
    center_cam = _cam_coords(poses, syn.LOOK_AT)
    assert torch.allclose(center_cam[:, :2], torch.zeros(12, 2), atol=1e-4)


def test_arc_sweeps_its_span_and_back_at_the_orbits_radius_and_elevation():
    center = torch.tensor([0.5, -1.0, 2.0])
    up = torch.tensor([0.0, 0.0, 1.0])
    poses = arc_path(center, 2.0, 20.0, 40, up, (1.0, 0.0, 0.0), 120.0)
    _assert_rigid(poses)
    center_cam = _cam_coords(poses, center)
    assert torch.allclose(center_cam[:, :2], torch.zeros(40, 2), atol=1e-5)
    offsets = torch.linalg.inv(poses)[:, :3, 3].double() - center
    assert torch.allclose(offsets.norm(dim=-1), torch.full((40,), 2.0, dtype=torch.float64),
                          atol=1e-5)
    assert torch.allclose(torch.rad2deg(torch.asin(offsets[:, 2] / 2.0)),
                          torch.full((40,), 20.0, dtype=torch.float64), atol=1e-3)
    az = torch.rad2deg(torch.atan2(offsets[:, 1], offsets[:, 0]))  # from start_dir, about up
    assert float(az[0]) == pytest.approx(0.0, abs=1e-4)
    assert float(az[20]) == pytest.approx(120.0, abs=1e-3)  # the far end half-way
    assert float(az.min()) > -1e-4 and float(az.max()) < 120.0 + 1e-3
    assert torch.all(torch.diff(az[:21]) > 0) and torch.all(torch.diff(az[20:]) < 0)
    assert float(az[-1]) < 1.0  # back at the start: the video loops


@pytest.mark.parametrize("first, span", [(-40.0, 150.0), (100.0, 90.0), (0.0, 330.0)])
def test_covered_arc_spans_the_cameras_azimuths(first, span):
    """24 cameras spread over azimuths first..first+span around a point (jittered, shuffled,
    uneven heights): the arc starts at the camera after the widest gap and spans the rest of
    the circle; the default arc keeps inside it."""
    g = torch.Generator().manual_seed(1)
    az = first + span * torch.linspace(0, 1, 24)
    az[1:-1] += 3.0 * (2 * torch.rand(22, generator=g) - 1)
    az = az[torch.randperm(len(az), generator=g)]
    eyes = [(4 * math.cos(math.radians(a)), 4 * math.sin(math.radians(a)),
             1.5 + 0.3 * float(torch.rand(1, generator=g))) for a in az.tolist()]
    poses = torch.stack([look_at(e, (0.0, 0.0, 0.5), (0.0, 0.0, 1.0)) for e in eyes])
    cams = Cameras(poses, torch.eye(3).expand(len(eyes), 3, 3), torch.full((len(eyes),), 64),
                   torch.full((len(eyes),), 48))
    start, covered = covered_arc(cams, estimate_orbit(cams))
    assert covered == pytest.approx(span, abs=0.5)
    start_az = math.degrees(math.atan2(float(start[1]), float(start[0])))
    assert (start_az - first + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=0.5)
    centers = torch.linalg.inv(default_arc(cams, 30).double())[:, :3, 3]
    rel = (torch.rad2deg(torch.atan2(centers[:, 1], centers[:, 0])) - first + 1.0) % 360.0 - 1.0
    assert float(rel.max()) == pytest.approx(span, abs=0.5)
    assert float(rel.min()) == pytest.approx(0.0, abs=0.5)


def test_up_is_estimated_from_cameras_not_assumed():
    cams = syn.make_synthetic_scene(syn.SYNTHETIC_PRESETS["tiny"]).scene.cameras
    axis = torch.nn.functional.normalize(torch.tensor([1.0, 2.0, 0.5]), dim=0)
    angle = 2.0  # radians; Rodrigues rotation of the whole world
    K = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = torch.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K
    world_from_old = torch.eye(4)
    world_from_old[:3, :3], world_from_old[:3, 3] = rot, torch.tensor([1.0, -2.0, 0.5])
    moved = cams.transformed(world_from_old)
    assert torch.allclose(estimate_up(moved.cam_from_world), rot[:, 2], atol=1e-4)
    orbit = estimate_orbit(moved)
    expected_center = rot @ torch.tensor(syn.LOOK_AT) + world_from_old[:3, 3]
    assert torch.allclose(orbit.center, expected_center, atol=1e-4)


def test_interpolate_path_passes_through_inputs_in_order():
    poses = _random_poses(5)
    path = interpolate_path(poses, 21)
    assert path.shape == (21, 4, 4)
    _assert_rigid(path)
    keys = keyframe_indices(5, 21)
    assert keys.tolist() == [0, 5, 10, 15, 20]
    assert torch.allclose(path[keys], poses, atol=1e-5)
    centers = torch.linalg.inv(path.double())[:, :3, 3]
    steps = (centers[1:] - centers[:-1]).norm(dim=-1)
    input_gaps = (torch.linalg.inv(poses.double())[1:, :3, 3]
                  - torch.linalg.inv(poses.double())[:-1, :3, 3]).norm(dim=-1)
    assert float(steps.max()) < 0.5 * float(input_gaps.max())  # no jumps between keyframes
    uneven = interpolate_path(poses, 12)  # 11 steps over 4 segments
    assert torch.allclose(uneven[keyframe_indices(5, 12)], poses, atol=1e-5)
    with pytest.raises(VoxsplatError, match="frames"):
        interpolate_path(poses, 4)


def test_spiral_circles_the_mean_pose_and_looks_at_the_focus():
    eyes = [torch.tensor([0.3 * math.cos(a), 0.2 * math.sin(a), 0.05 * math.sin(2 * a)])
            for a in torch.linspace(0, 2 * math.pi, 9)[:-1].tolist()]
    parallel = torch.stack([look_at(e, e + torch.tensor([0.0, 0.0, 1.0]), (0.0, -1.0, 0.0))
                            for e in eyes])
    path = spiral_path(parallel, 30, focus_depth=4.0)
    assert path.shape == (30, 4, 4)
    _assert_rigid(path)
    focus_cam = _cam_coords(path, (0.0, 0.0, 4.0))
    assert torch.allclose(focus_cam[:, :2], torch.zeros(30, 2), atol=1e-4)
    centers = torch.linalg.inv(path)[:, :3, 3]
    assert float(centers[:, 0].abs().max()) <= 0.3 + 1e-5  # radii: 90th pct of offsets
    assert float(centers[:, 1].abs().max()) <= 0.2 + 1e-5
    assert float(centers[:, 0].max() - centers[:, 0].min()) > 0.4  # it does move around
    converging = torch.stack([look_at(e, (0.0, 0.0, 5.0), (0.0, -1.0, 0.0)) for e in eyes])
    auto = spiral_path(converging, 10)
    assert torch.allclose(_cam_coords(auto, (0.0, 0.0, 5.0))[:, :2], torch.zeros(10, 2), atol=1e-3)


def test_spiral_keeps_the_photos_upright_and_refuses_cameras_around_the_scene():
    """Cameras side by side looking 25 degrees down at a point, without roll: every spiral
    frame keeps its right axis level (the mean camera's -y is tilted, so using it as up would
    roll the frames). A nadir capture spirals about its photos' up; cameras around an object
    have no front for a spiral."""
    up = torch.tensor([0.0, 0.0, 1.0])
    eyes = [torch.tensor([x, 0.1 * math.sin(3 * x), 2.0 + 0.3 * math.cos(2 * x)])
            for x in torch.linspace(-2.5, 2.5, 9).tolist()]
    down = torch.stack([look_at(e, (0.0, 4.0, 0.0), up) for e in eyes])  # 30 degrees apart
    path = spiral_path(down, 40)
    _assert_rigid(path)
    assert float((path[:, 0, :3] @ up).abs().max()) < 1e-4  # right axes level: no roll
    assert float(((-path[:, 1, :3]) @ up).min()) > 0.5  # and upright
    nadir = torch.stack([look_at(e, e - torch.tensor([0.0, 0.0, 3.0]), (0.0, 1.0, 0.0))
                         for e in eyes])
    overhead = spiral_path(nadir, 20)
    _assert_rigid(overhead)
    assert float((overhead[:, 2, :3] @ -up).min()) > 0.9  # still looking down
    ring = torch.stack([look_at((3 * math.cos(a), 3 * math.sin(a), 1.0), (0.0, 0.0, 0.0), up)
                        for a in torch.linspace(0, 2 * math.pi, 13)[:-1].tolist()])
    with pytest.raises(VoxsplatError, match="use --path orbit or arc"):
        spiral_path(ring, 20)


def test_a_path_through_the_views_takes_them_in_route_order_with_any_frame_count():
    """Photos named in no spatial order (a ring shuffled) are visited around the ring, not
    back and forth; a video's frames (already a short route) keep their order; more cameras
    than frames are thinned evenly along the route."""
    up = torch.tensor([0.0, 0.0, 1.0])
    angles = torch.linspace(0, 1.5 * math.pi, 24).tolist()
    ring = torch.stack([look_at((3 * math.cos(a), 3 * math.sin(a), 1.0), (0.0, 0.0, 0.0), up)
                        for a in angles])
    shuffled = ring[torch.randperm(24, generator=torch.Generator().manual_seed(0))]
    order = tour_order(shuffled)
    centers = torch.linalg.inv(shuffled.double())[order, :3, 3]
    steps = (centers[1:] - centers[:-1]).norm(dim=-1)
    assert float(steps.max()) < 0.62  # neighbours on the ring are 0.61 apart
    assert torch.equal(tour_order(ring), torch.arange(24))
    path = through_views(shuffled, 120)
    frame_steps = (torch.linalg.inv(path.double())[1:, :3, 3]
                   - torch.linalg.inv(path.double())[:-1, :3, 3]).norm(dim=-1)
    assert float(frame_steps.max()) < 0.15  # 14.1 around in 119 steps; name order: 6
    many = torch.stack([look_at((3 * math.cos(a), 3 * math.sin(a), 1.0), (0.0, 0.0, 0.0), up)
                        for a in torch.linspace(0, 1.5 * math.pi, 200).tolist()])
    assert through_views(many, 120).shape == (120, 4, 4)
