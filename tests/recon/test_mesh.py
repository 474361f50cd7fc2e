"""Sparse TSDF fusion, marching cubes without seams, the mesh rasterizer, and open3d as reference."""

import math
import sys

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from voxsplat.data.cameras import Cameras
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.export import tsdf
from voxsplat.recon.export.mesh import (MeshConfig, clean_mesh, decimate, extra_cameras,
                                        write_mesh)
from voxsplat.recon.export.mesh_render import rasterize_mesh
from voxsplat.render.camera_paths import look_at

VOXEL, TRUNC = 0.02, 0.06


@pytest.fixture(scope="module")
def synth():
    """A small synthetic scene with exact depth maps (24 views of 96x72)."""
    return make_synthetic_scene(SyntheticConfig(width=96, height=72, n_train=24, n_test=0,
                                                supersample=1, n_points=10))


def chamfer(a: trimesh.Trimesh, b: trimesh.Trimesh, n: int = 100_000) -> float:
    pa, pb = a.sample(n, seed=0), b.sample(n, seed=1)
    return 0.5 * (cKDTree(pb).query(pa)[0].mean() + cKDTree(pa).query(pb)[0].mean())


def fused_mesh(synth, **kw) -> trimesh.Trimesh:
    cams = synth.scene.cameras
    vol = tsdf.fuse_depth_maps(torch.stack(synth.depths), cams.cam_from_world, cams.Ks, VOXEL,
                               TRUNC, **kw)
    verts, faces = tsdf.extract_mesh(vol)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    mesh.merge_vertices()
    return mesh


def test_keys_round_trip_and_sort_x_major():
    coords = torch.tensor([[-5, 3, 7], [0, 0, 0], [2**20 - 1, -(2**20), 1], [-1, -1, -1]])
    keys = tsdf.pack_keys(coords)
    assert torch.equal(tsdf.unpack_keys(keys), coords)
    order = torch.argsort(keys)
    expected = sorted(range(4), key=lambda i: tuple(coords[i].tolist()))
    assert order.tolist() == expected


def test_sphere_across_chunk_borders_is_watertight():
    """A sphere around the origin spans 8 marching-cubes chunks; borders must not leave seams."""
    r = torch.arange(-4, 4)
    blocks = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    vol = tsdf.empty_volume(blocks, 0.01, 0.04)
    pos = (blocks[:, None] * tsdf.BLOCK + tsdf._local_offsets("cpu")).float() * 0.01
    vol.tsdf_sum[:] = ((pos.norm(dim=-1) - 0.2) / 0.04).clamp(-1, 1)
    vol.weight[:] = 1
    verts, faces = tsdf.extract_mesh(vol)
    mesh = trimesh.Trimesh(verts, faces)  # merges the chunks' shared border vertices
    assert mesh.is_watertight and mesh.body_count == 1 and mesh.euler_number == 2
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 0.2).max() < 0.005
    assert mesh.volume > 0  # outward winding


def test_fusion_of_exact_depth_matches_ground_truth(synth):
    mesh = fused_mesh(synth)
    assert chamfer(mesh, synth.mesh) < 0.6 * VOXEL
    # faces point to the free side: towards the camera that sees them
    n_gt = synth.mesh.face_normals[cKDTree(synth.mesh.triangles_center).query(mesh.triangles_center)[1]]
    assert ((mesh.face_normals * n_gt).sum(1) > 0).mean() > 0.85


def test_closed_extraction_is_watertight(synth):
    cams = synth.scene.cameras
    depths = torch.stack(synth.depths)
    vol = tsdf.fuse_depth_maps(depths, cams.cam_from_world, cams.Ks, VOXEL, TRUNC,
                               surface=depths > 0, free=depths == 0)
    verts, faces = tsdf.extract_mesh(vol, closed=True)
    mesh = trimesh.Trimesh(verts, faces)
    assert mesh.is_watertight and mesh.volume > 0
    # the seen surfaces are where the open extraction puts them
    seen, _ = tsdf.extract_mesh(vol)
    assert cKDTree(verts).query(seen)[0].mean() < 0.1 * VOXEL


def test_enclosed_blocks_are_found():
    r = torch.arange(5)
    shell = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    shell = shell[((shell == 0) | (shell == 4)).any(1)]  # a hollow 5^3 box of blocks
    lo, enclosed = tsdf.enclosed_blocks(shell)
    assert torch.equal(lo, torch.tensor([-1, -1, -1]))
    assert int(enclosed.sum()) == 27 and bool(enclosed[3, 3, 3])


def test_free_space_carves_floaters(synth):
    depths = torch.stack(synth.depths).clone()
    depths[0, 30:40, 40:50] = 1.0  # a floater in view 0, in front of the objects
    surface = depths > 0
    cams = synth.scene.cameras
    vol = tsdf.fuse_depth_maps(depths, cams.cam_from_world, cams.Ks, VOXEL, TRUNC, surface=surface,
                               free=~surface)
    verts, faces = tsdf.extract_mesh(vol)
    floater = tsdf.backproject(depths[0], cams.cam_from_world[0], cams.Ks[0])[30:40, 40:50]
    d = cKDTree(verts).query(floater.reshape(-1, 3).numpy())[0]
    assert d.min() > 2 * VOXEL  # the other views see through it
    assert len(faces) > 1000


def test_too_many_blocks_and_bad_sizes_raise(synth):
    cams = synth.scene.cameras
    depths = torch.stack(synth.depths)
    with pytest.raises(VoxsplatError, match="voxel-size"):
        tsdf.fuse_depth_maps(depths, cams.cam_from_world, cams.Ks, VOXEL, TRUNC, max_blocks=10)
    with pytest.raises(VoxsplatError, match="must be > 0"):
        tsdf.fuse_depth_maps(depths, cams.cam_from_world, cams.Ks, 0.0, TRUNC)


def _open3d_mesh(synth, o3d) -> trimesh.Trimesh:
    """open3d's TSDF fusion of the same depth maps: ScalableTSDFVolume, or its successor
    VoxelBlockGrid where the legacy class integrates nothing (seen with open3d 0.20.0's wheel:
    every extraction empty, its own PrimeSense example included)."""
    cams, scene = synth.scene.cameras, synth.scene
    vol = o3d.pipelines.integration.ScalableTSDFVolume(
        voxel_length=VOXEL, sdf_trunc=TRUNC,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.RGB8)
    for i in range(len(cams)):
        W, H = cams.size(i)
        K = cams.Ks[i].double().numpy()
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(scene.images[i].numpy())),
            o3d.geometry.Image(np.ascontiguousarray(synth.depths[i].numpy())),
            depth_scale=1.0, depth_trunc=100.0, convert_rgb_to_intensity=False)
        intr = o3d.camera.PinholeCameraIntrinsic(W, H, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        vol.integrate(rgbd, intr, cams.cam_from_world[i].double().numpy())
    mesh = vol.extract_triangle_mesh()
    if len(mesh.triangles) == 0:
        mesh = _open3d_block_grid(synth, o3d)
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles))


def _open3d_block_grid(synth, o3d):
    import open3d.core as o3c
    cams = synth.scene.cameras
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight"), attr_dtypes=(o3c.float32, o3c.float32),
        attr_channels=((1), (1)), voxel_size=VOXEL, block_resolution=8, block_count=20000,
        device=o3c.Device("CPU:0"))
    for i in range(len(cams)):
        depth = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(synth.depths[i].numpy())))
        K, E = o3c.Tensor(cams.Ks[i].double().numpy()), o3c.Tensor(cams.cam_from_world[i].double().numpy())
        kw = dict(depth_scale=1.0, depth_max=100.0, trunc_voxel_multiplier=TRUNC / VOXEL)
        blocks = grid.compute_unique_block_coordinates(depth, K, E, **kw)
        grid.integrate(blocks, depth, K, E, **kw)
    return grid.extract_triangle_mesh(weight_threshold=1.0).to_legacy()


def test_fusion_agrees_with_open3d(synth):
    """Same depth maps, voxel size and truncation: open3d's mesh and ours are within half a
    voxel (Chamfer-L1; 100k samples each, whose own spacing accounts for ~0.2 voxel)."""
    o3d = pytest.importorskip("open3d", reason="open3d is the reference; pip install open3d")
    ours, ref = fused_mesh(synth), _open3d_mesh(synth, o3d)
    assert len(ref.faces) > 1000
    assert chamfer(ours, ref) < 0.5 * VOXEL, chamfer(ours, ref)
    assert abs(chamfer(ours, synth.mesh) - chamfer(ref, synth.mesh)) < 0.25 * VOXEL


def test_rasterizer_silhouette_and_depth_of_a_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    verts, faces = torch.tensor(sphere.vertices).float(), torch.tensor(sphere.faces)
    pose = look_at([0.0, 0.0, -3.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0])
    K = torch.tensor([[100.0, 0.0, 64.0], [0.0, 100.0, 48.0], [0.0, 0.0, 1.0]])
    out = rasterize_mesh(verts, faces, pose, K, 128, 96, colors=torch.ones_like(verts) * 0.25,
                         budget=5000)  # several candidate groups
    radius = 100 * 0.5 / math.sqrt(9 - 0.25)  # projected outline of the sphere
    yy, xx = torch.meshgrid(torch.arange(96) + 0.5, torch.arange(128) + 0.5, indexing="ij")
    disc = (xx - 64) ** 2 + (yy - 48) ** 2 < radius**2
    iou = (out.alpha & disc).sum() / (out.alpha | disc).sum()
    assert iou > 0.97
    assert abs(float(out.depth[48, 64]) - 2.5) < 0.01
    assert torch.allclose(out.color[out.alpha], torch.tensor(0.25))
    assert (out.face[~out.alpha] == -1).all() and (out.depth[~out.alpha] == 0).all()


def test_rasterizer_matches_point_in_triangle():
    g = torch.Generator().manual_seed(0)
    verts = torch.cat([torch.rand(30, 2, generator=g) * 2 - 1, torch.full((30, 1), 2.0)], 1)
    faces = torch.arange(30).reshape(10, 3)
    K = torch.tensor([[20.0, 0.0, 20.0], [0.0, 20.0, 15.0], [0.0, 0.0, 1.0]])
    out = rasterize_mesh(verts, faces, torch.eye(4), K, 40, 30)
    uv = verts[:, :2] / 2 * 20 + torch.tensor([20.0, 15.0])
    yy, xx = torch.meshgrid(torch.arange(30) + 0.5, torch.arange(40) + 0.5, indexing="ij")
    p = torch.stack([xx, yy], -1).reshape(-1, 1, 2)
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]

    def side(u, v):
        return (v[:, 0] - u[:, 0]) * (p[..., 1] - u[:, 1]) - (v[:, 1] - u[:, 1]) * (p[..., 0] - u[:, 0])

    s = torch.stack([side(a, b), side(b, c), side(c, a)], -1)
    inside = ((s >= 0).all(-1) | (s <= 0).all(-1)).any(-1).reshape(30, 40)
    assert torch.equal(out.alpha, inside)


def test_extra_cameras_sit_between_neighbours():
    eyes = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [-3.0, 0, 0], [0, -3.0, 0]])
    poses = torch.stack([look_at(e, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]) for e in eyes])
    K = torch.eye(3).repeat(4, 1, 1)
    cams = Cameras(poses, K, torch.full((4,), 8), torch.full((4,), 6))
    extra = extra_cameras(cams, 6)
    assert len(extra) == 6 and extra_cameras(cams, 0) is None
    r = extra.centers.norm(dim=-1)
    assert ((r > 2.0) & (r < 3.0)).all()  # midway along the chord between two neighbours
    for c, e in zip(extra.centers, eyes[torch.arange(6) % 4]):
        assert 1.5 < float((c - e).norm()) < 2.5


def test_mesh_config_rejects_bad_options():
    with pytest.raises(VoxsplatError, match="--voxel-size"):
        MeshConfig(voxel_size=0.0)
    with pytest.raises(VoxsplatError, match="--voxel-size"):
        MeshConfig(voxel_size=-1.0)
    with pytest.raises(VoxsplatError, match="--faces"):
        MeshConfig(faces=0)
    with pytest.raises(VoxsplatError, match="mesher"):
        MeshConfig(mesher="marching")


def _colored_sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=4)
    mesh.visual.vertex_colors = np.concatenate(
        [((mesh.vertices + 1) * 127).astype(np.uint8), np.full((len(mesh.vertices), 1), 255, np.uint8)], 1)
    return mesh


def test_clean_mesh_drops_small_components_and_decimates():
    pytest.importorskip("fast_simplification", reason="decimation needs fast-simplification")
    big, small = _colored_sphere(), trimesh.creation.icosphere(subdivisions=0, radius=0.1)
    small.apply_translation([5.0, 0.0, 0.0])
    small.visual.vertex_colors = np.full((len(small.vertices), 4), 255, np.uint8)
    mesh = trimesh.util.concatenate([big, small])
    out = clean_mesh(mesh, MeshConfig(faces=1000, smooth_iterations=2))
    assert out.body_count == 1 and 500 <= len(out.faces) <= 1100
    assert np.abs(out.vertices).max() < 1.1  # the small sphere is gone
    assert np.ptp(out.visual.vertex_colors[:, 0]) > 100  # colours survive decimation


def test_decimation_without_fast_simplification_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fast_simplification", None)
    with pytest.raises(VoxsplatError, match="pip install fast-simplification"):
        decimate(_colored_sphere(), 100)


def test_write_mesh_is_atomic(tmp_path, monkeypatch):
    mesh = _colored_sphere()
    with pytest.raises(VoxsplatError, match=r"\.stl"):
        write_mesh(tmp_path / "mesh.stl", mesh)

    def broken(self, file_obj=None, file_type=None, **kw):
        open(file_obj, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(trimesh.Trimesh, "export", broken)
    with pytest.raises(OSError):
        write_mesh(tmp_path / "mesh.ply", mesh)
    assert list(tmp_path.iterdir()) == []


def test_views_of_different_sizes_mesh_like_views_of_one_size():
    """Training images of mixed sizes (a photo folder): each view is rendered at its own size
    on a shared canvas, outside which it says nothing, and the mesh matches the one from
    views of one size."""
    from voxsplat.recon.export.mesh import mesh_from_splats, render_views
    from voxsplat.recon.gaussians import splats_from_points
    scene = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=8, n_test=0,
                                                 n_points=3000, supersample=1)).scene
    splats = {k: v.detach() for k, v in
              splats_from_points(scene.points, scene.point_colors, 0, 0.95, 1.2).items()}
    cams = scene.cameras
    widths = torch.tensor([64, 48, 36, 64] * 2)  # landscape, square, portrait, landscape
    heights = torch.tensor([48, 48, 48, 40] * 2)
    mixed = Cameras(cams.cam_from_world, cams.Ks, widths, heights)
    cfg = MeshConfig(voxel_size=0.05, extra_views=0)
    views = render_views(splats, mixed, None, cfg, "torch")
    assert views.depths.shape == (8, 48, 64) and views.cameras.size(2) == (64, 48)
    whole = render_views(splats, cams, None, cfg, "torch")
    for c in range(8):
        w, h = int(widths[c]), int(heights[c])
        assert torch.equal(views.surface[c, :h, :w], whole.surface[c, :h, :w])
        assert not views.surface[c, h:].any() and not views.free[c, :, w:].any()
    one = mesh_from_splats(splats, cams, cfg, backend="torch")
    both = mesh_from_splats(splats, mixed, cfg, backend="torch")
    assert len(both.faces) > 0.5 * len(one.faces)
    assert chamfer(one, both) < 0.05, chamfer(one, both)  # one voxel


@pytest.mark.parametrize("z0", [-0.01, 0.01, 0.03])
def test_a_surface_just_past_a_chunk_border_is_meshed(z0):
    """A plane between a chunk's first voxel layer (z = 0) and the next: the chunk's sign test
    read only the cubes' highest corners, skipped the chunk and left a hole (a box's top)."""
    from voxsplat.recon.export.tsdf import extract_mesh, fuse_depth_maps
    H = W = 64
    poses, Ks = [], []
    for i in range(4):  # cameras 1 above the plane, looking straight down
        R = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])
        T = torch.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ torch.tensor([0.05 * i, 0.03 * i, z0 + 1.0])
        poses.append(T)
        Ks.append(torch.tensor([[64.0, 0, W / 2], [0, 64.0, H / 2], [0, 0, 1]]))
    vol = fuse_depth_maps(torch.ones(4, H, W), torch.stack(poses), torch.stack(Ks), 0.025, 0.1)
    verts, faces = extract_mesh(vol, min_weight=2.0)
    assert len(faces) > 3000 and np.allclose(verts[:, 2], z0, atol=1e-3)


def test_a_voxel_too_large_for_any_surface_says_smaller():
    """No surface at a huge --voxel-size said "try a larger --voxel-size", in the scene frame's
    units rather than the user's."""
    from voxsplat.recon.export.mesh import mesh_from_splats
    from voxsplat.recon.gaussians import splats_from_points
    scene = make_synthetic_scene(SyntheticConfig(width=32, height=24, n_train=4, n_test=0,
                                                 n_points=1000, supersample=1)).scene
    splats = {k: v.detach() for k, v in
              splats_from_points(scene.points, scene.point_colors, 0, 0.95, 1.2).items()}
    with pytest.raises(VoxsplatError, match=r"no surface was extracted at this voxel size \(\d+ "
                                            r"times the default.*give a smaller --voxel-size"):
        mesh_from_splats(splats, scene.cameras, MeshConfig(voxel_size=50.0, extra_views=0),
                         backend="torch")
