"""The procedural synthetic scene: ground truth is consistent across images, depth and mesh."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from voxsplat.data import synthetic as syn
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene, save_ground_truth

SMALL = SyntheticConfig(width=80, height=60, n_train=8, n_test=3, n_points=3000)


@pytest.fixture(scope="module")
def synth() -> syn.SyntheticScene:
    return make_synthetic_scene(SMALL)


def _rays(cameras, i: int, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rays [R,3] through pixel positions px [R,2], scaled so t is camera z."""
    pose = cameras.cam_from_world[i].double().numpy()
    K = cameras.Ks[i].double().numpy()
    d_cam = np.stack([(px[:, 0] - K[0, 2]) / K[0, 0], (px[:, 1] - K[1, 2]) / K[1, 1],
                      np.ones(len(px))], -1)
    center = -pose[:3, :3].T @ pose[:3, 3]
    return np.broadcast_to(center, d_cam.shape), d_cam @ pose[:3, :3]


def _mesh_hits(mesh: trimesh.Trimesh, origins: np.ndarray, dirs: np.ndarray):
    """Nearest triangle hit per ray by brute-force Moller-Trumbore (independent of the caster).

    trimesh's own ``mesh.ray`` needs the optional ``rtree`` package, which voxsplat does not
    depend on, so the test carries this tiny reference instead.

    Returns:
        t [R] (inf on a miss), face index [R], barycentric (u, v) [R,2].
    """
    tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    t_out = np.full(len(origins), np.inf)
    face_out = np.zeros(len(origins), dtype=np.int64)
    uv_out = np.zeros((len(origins), 2))
    for r in range(len(origins)):
        p = np.cross(dirs[r], e2)
        det = (e1 * p).sum(-1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = origins[r] - v0
        u = (s * p).sum(-1) * inv
        q = np.cross(s, e1)
        v = (dirs[r] * q).sum(-1) * inv
        t = (e2 * q).sum(-1) * inv
        ok &= (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-6)
        if ok.any():
            f = int(np.argmin(np.where(ok, t, np.inf)))
            t_out[r], face_out[r], uv_out[r] = t[f], f, (u[f], v[f])
    return t_out, face_out, uv_out


def test_depth_matches_ground_truth_mesh(synth):
    scene = synth.scene
    rng = np.random.default_rng(0)
    for i in (0, scene.split("test")[0]):
        W, H = scene.cameras.size(i)
        fg = np.argwhere(scene.masks[i].numpy())[:, ::-1]  # (u, v) of object pixels
        ij = np.concatenate([fg[rng.choice(len(fg), 150, replace=False)],
                             np.stack([rng.integers(0, W, 50), rng.integers(0, H, 50)], -1)])
        origins, dirs = _rays(scene.cameras, i, ij + 0.5)
        t_mesh, faces, uv = _mesh_hits(synth.mesh, origins, dirs)
        depth = synth.depths[i].numpy()[ij[:, 1], ij[:, 0]]
        both = (depth > 0) & np.isfinite(t_mesh)
        assert ((depth > 0) == np.isfinite(t_mesh)).mean() >= 0.97  # silhouettes may differ
        assert both.sum() > 140
        err = np.abs(depth[both] - t_mesh[both])
        assert np.median(err) < 1e-4 and (err < 5e-3).mean() >= 0.97
        # The mesh's vertex colours come from the same textures as the pixels.
        corner_colors = np.asarray(synth.mesh.visual.vertex_colors)[
            np.asarray(synth.mesh.faces)[faces[both]], :3] / 255.0
        w = np.stack([1 - uv[both].sum(-1), uv[both, 0], uv[both, 1]], -1)[:, :, None]
        mesh_rgb = (corner_colors * w).sum(1)
        pixel_rgb = scene.image(i).numpy()[ij[both, 1], ij[both, 0]]
        assert np.median(np.abs(mesh_rgb - pixel_rgb)) < 0.02


def test_sphere_projects_inside_masks_with_consistent_depth(synth):
    cams = synth.scene.cameras
    center = torch.tensor(syn.SPHERE_CENTER)
    visible = 0
    for i in range(len(cams)):
        eye = cams.centers[i]
        point = center + syn.SPHERE_RADIUS * torch.nn.functional.normalize(eye - center, dim=0)
        p_cam = cams.cam_from_world[i, :3, :3] @ point + cams.cam_from_world[i, :3, 3]
        uv = (cams.Ks[i] @ p_cam)[:2] / p_cam[2]
        u, v = int(uv[0]), int(uv[1])
        assert synth.scene.masks[i][v, u]
        depth = float(synth.depths[i][v, u])
        assert depth <= float(p_cam[2]) + 1e-2  # an occluder can only be closer
        visible += abs(depth - float(p_cam[2])) < 1e-2
    assert visible >= len(cams) // 2


def test_masks_depths_and_background(synth):
    scene = synth.scene
    for img, mask, depth, alpha in zip(scene.images, scene.masks, synth.depths, synth.alphas):
        assert torch.equal(mask, depth > 0)
        assert 0.0 <= float(alpha.min()) and float(alpha.max()) <= 1.0
        for v, u in ((0, 0), (0, -1), (-1, 0), (-1, -1)):  # corners see past the objects
            assert not mask[v, u] and img[v, u].tolist() == [255, 255, 255]
        assert 0.1 < float(mask.float().mean()) < 0.9
    black = make_synthetic_scene(dataclasses.replace(SMALL, background=(0.0, 0.0, 0.0)))
    for i in range(len(scene)):
        opaque = synth.alphas[i] == 1.0
        assert torch.equal(scene.images[i][opaque], black.scene.images[i][opaque])
        assert black.scene.images[i][0, 0].tolist() == [0, 0, 0]


def test_cameras_orbit_band_and_held_out_test_views(synth):
    scene = synth.scene
    assert scene.splits == {"train": tuple(range(8)), "test": (8, 9, 10)}
    assert scene.names[0] == "train_000" and scene.names[8] == "test_000"
    cams = scene.cameras
    offsets = cams.centers - torch.tensor(syn.LOOK_AT)
    dist = offsets.norm(dim=-1)
    assert torch.allclose(dist, torch.full_like(dist, SMALL.radius), rtol=0.031)
    elevation = torch.rad2deg(torch.asin(offsets[:, 2] / dist))
    assert float(elevation.min()) >= 15.0 - 1e-3 and float(elevation.max()) <= 60.0 + 1e-3
    train, test = cams.centers[:8], cams.centers[8:]
    assert float(torch.cdist(test, train).min()) > 0.3
    fov_x = 2 * math.degrees(math.atan(SMALL.width / 2 / float(cams.Ks[0, 0, 0])))
    assert fov_x == pytest.approx(50.0, abs=1e-3)
    assert torch.allclose(torch.linalg.det(cams.cam_from_world[:, :3, :3]), torch.ones(11))


def _surface_distance(points: torch.Tensor) -> torch.Tensor:
    """[P] distance from each point to the nearest analytic surface."""
    d_sphere = ((points - torch.tensor(syn.SPHERE_CENTER)).norm(dim=-1) - syn.SPHERE_RADIUS).abs()
    in_disc = points[:, :2].norm(dim=-1) <= syn.DISC_RADIUS + 1e-4
    d_disc = torch.where(in_disc, (points[:, 2] - syn.GROUND_Z).abs(), torch.tensor(math.inf))
    yaw = math.radians(syn.BOX_YAW_DEG)
    rot = torch.tensor([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                        [0, 0, 1.0]])
    q = (points - torch.tensor(syn.BOX_CENTER)) @ rot
    d = q.abs() - syn.BOX_HALF_SIZE
    d_box = (d.clamp(min=0).norm(dim=-1) + d.max(-1).values.clamp(max=0)).abs()
    radial = (points[:, :2] - torch.tensor(syn.CYLINDER_XY)).norm(dim=-1) - syn.CYLINDER_RADIUS
    axial = torch.maximum(syn.GROUND_Z - points[:, 2], points[:, 2] - syn.CYLINDER_TOP_Z)
    dc = torch.stack([radial, axial], -1)
    d_cyl = (dc.clamp(min=0).norm(dim=-1) + dc.max(-1).values.clamp(max=0)).abs()
    return torch.stack([d_sphere, d_disc, d_box, d_cyl], -1).min(-1).values


def test_points_lie_on_surfaces_with_texture_colours(synth):
    points, colors = synth.scene.points, synth.scene.point_colors
    assert points.shape == (3000, 3) and colors.shape == (3000, 3)
    assert points.dtype == torch.float32 and colors.dtype == torch.float32
    assert float(_surface_distance(points).max()) < 1e-4
    assert float(points.norm(dim=-1).max()) < 1.0
    # Points seen by train view 0 have that view's pixel colour.
    cams = synth.scene.cameras
    p_cam = points @ cams.cam_from_world[0, :3, :3].T + cams.cam_from_world[0, :3, 3]
    uv = (p_cam @ cams.Ks[0].T)[:, :2] / p_cam[:, 2:]
    ij = uv.floor().long()
    W, H = cams.size(0)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < W) & (ij[:, 1] >= 0) & (ij[:, 1] < H)
    depth = synth.depths[0][ij[inside, 1], ij[inside, 0]]
    seen = (depth - p_cam[inside, 2]).abs() < 5e-3
    assert int(seen.sum()) > 300
    pixels = synth.scene.image(0)[ij[inside, 1], ij[inside, 0]][seen]
    assert float((pixels - colors[inside][seen]).abs().median()) < 0.05


def test_same_seed_same_scene_other_seed_other_cameras(synth):
    again = make_synthetic_scene(SMALL)
    assert all(torch.equal(a, b) for a, b in zip(synth.scene.images, again.scene.images))
    assert torch.equal(synth.scene.points, again.scene.points)
    other = make_synthetic_scene(dataclasses.replace(SMALL, seed=1))
    assert not torch.allclose(synth.scene.cameras.cam_from_world,
                              other.scene.cameras.cam_from_world)


def test_default_config_matches_the_demo_contract():
    synth = make_synthetic_scene(SyntheticConfig())
    scene = synth.scene
    assert len(scene.split("train")) == 40 and len(scene.split("test")) == 10
    assert scene.images[0].shape == (120, 160, 3) and scene.images[0].dtype == torch.uint8
    assert scene.masks[0].dtype == torch.bool and synth.depths[0].shape == (120, 160)
    assert 5000 <= len(scene.points) <= 20000 and scene.source == "synthetic"
    assert scene.background == (1.0, 1.0, 1.0)
    assert len(synth.mesh.faces) > 20000 and synth.mesh.visual.vertex_colors.shape[1] == 4


def test_save_ground_truth_writes_mesh_and_depths(synth, tmp_path: Path):
    out = save_ground_truth(synth, tmp_path / "gt")
    mesh = trimesh.load(out / "mesh.ply", process=False)
    assert len(mesh.vertices) == len(synth.mesh.vertices)
    assert np.array_equal(mesh.visual.vertex_colors, synth.mesh.visual.vertex_colors)
    for name, depth in zip(synth.scene.names, synth.depths):
        saved = np.load(out / "depth" / f"{name}.npy")
        assert saved.dtype == np.float32 and np.array_equal(saved, depth.numpy())
    assert not [p for p in out.rglob("*") if ".part" in p.name]


@pytest.mark.parametrize("bad", [{"n_train": 0}, {"width": 1}, {"elevation_deg": (10.0, 95.0)},
                                 {"radius": 0.5}])
def test_bad_config_raises_a_clear_error(bad):
    with pytest.raises(VoxsplatError, match="synthetic"):
        SyntheticConfig(**bad)
