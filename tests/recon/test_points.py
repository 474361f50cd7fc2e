"""Dense point clouds of Gaussians (`export.points`): one point per voxel seen by enough views,
on the surface, with its colour and a normal towards the cameras."""

import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.export.points import PointsConfig, points_from_splats, thin_points
from voxsplat.recon.gaussians import splats_from_points


def test_thin_points_merges_each_voxel_and_needs_enough_views():
    pts = torch.tensor([[0.01, 0.01, 0.01], [0.03, 0.03, 0.03],   # voxel A, views 0 and 1
                        [0.02, 0.02, 0.02],                       # voxel A, view 1 again
                        [0.51, 0.01, 0.01], [0.52, 0.02, 0.02]])  # voxel B, view 2 twice
    normals = torch.tensor([[0.0, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]])
    colors = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    views = torch.tensor([0, 1, 1, 2, 2])
    p, n, c = thin_points(pts, normals, colors, views, 0.1, min_views=1)
    assert p.shape == (2, 3)
    torch.testing.assert_close(p[0], torch.tensor([0.02, 0.02, 0.02]))
    torch.testing.assert_close(c[0], torch.tensor([1 / 3, 1 / 3, 1 / 3]))
    torch.testing.assert_close(n[0], torch.nn.functional.normalize(torch.tensor([0.0, 1, 2]), dim=0))
    torch.testing.assert_close(p[1], torch.tensor([0.515, 0.015, 0.015]))
    p2, _, _ = thin_points(pts, normals, colors, views, 0.1, min_views=2)
    torch.testing.assert_close(p2, p[:1])  # voxel B: one view only


@pytest.fixture(scope="module")
def synth():
    return make_synthetic_scene(SyntheticConfig(width=96, height=72, n_train=12, n_test=0,
                                                n_points=6000, supersample=1))


def test_points_lie_on_the_surface_with_its_colours_and_normals(synth):
    scene = synth.scene
    splats = {k: v.detach() for k, v in
              splats_from_points(scene.points, scene.point_colors, 0, 0.95, 1.2).items()}
    voxel = 0.03
    points, normals, colors = points_from_splats(splats, scene.cameras, PointsConfig(voxel_size=voxel),
                                                 backend="torch")
    assert len(points) > 2000
    coarse = points_from_splats(splats, scene.cameras, PointsConfig(voxel_size=2 * voxel),
                                backend="torch")[0]
    assert len(coarse) < 0.4 * len(points)  # one point per voxel: a quarter per surface area
    surface, face = trimesh.sample.sample_surface(synth.mesh, 400_000, seed=0)
    dist, nearest = cKDTree(surface).query(points.double().numpy())
    dist, face = torch.as_tensor(dist), face[nearest]
    # rendered depth is the front Gaussians' centre depth: off the surface by a fraction of
    # their size where the surface is oblique (here 0.034 / 0.063 at the median / 95%)
    size = float(torch.exp(splats["scales"]).median())  # 0.023
    assert float(dist.median()) < 2 * size and float(dist.quantile(0.95)) < 4 * size, \
        (float(dist.median()), float(dist.quantile(0.95)), size)
    # normals: the surface's (up to sign: the side the cameras see), unit length
    face_normals = torch.as_tensor(synth.mesh.face_normals[face]).float()
    assert float((normals * face_normals).sum(-1).abs().median()) > 0.9
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(len(normals)))
    # colours: those of the nearest coloured surface points the Gaussians sit on
    nearest = torch.cdist(points, scene.points.float()).argmin(1)
    assert float((colors - scene.point_colors[nearest]).abs().mean()) < 0.08


def test_points_need_something_opaque(synth):
    scene = synth.scene
    splats = {k: v.detach() for k, v in
              splats_from_points(scene.points, scene.point_colors, 0, 0.95, 1.2).items()}
    splats["means"] = splats["means"] + 100.0  # behind every camera's view
    with pytest.raises(VoxsplatError, match="no rendered pixel is opaque"):
        points_from_splats(splats, scene.cameras[:2], PointsConfig(voxel_size=0.05), backend="torch")
    with pytest.raises(VoxsplatError, match="voxel-size"):
        PointsConfig(voxel_size=0.0)


def test_a_voxel_far_below_a_pixel_warns_and_an_empty_cloud_is_refused(synth):
    """Voxels much smaller than a pixel's footprint are seldom seen from two views: the cloud
    thinned out with a smaller --voxel-size, down to an empty file written as a success."""
    scene = synth.scene
    splats = {k: v.detach() for k, v in
              splats_from_points(scene.points, scene.point_colors, 0, 0.95, 1.2).items()}
    with pytest.warns(UserWarning, match="times a rendered pixel's footprint"):
        with pytest.raises(VoxsplatError, match="no voxel is seen from 2 views at this --voxel-size"):
            points_from_splats(splats, scene.cameras[:3], PointsConfig(voxel_size=1e-6),
                               backend="torch")
