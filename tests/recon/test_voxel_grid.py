"""Sparse voxel grid construction and edits, world and depth lattices (pure torch, no spconv)."""

import pytest
import torch

from voxsplat.data.errors import VoxsplatError
from voxsplat.recon.representation import (SparseVoxelGrid, free_neighbours, subdivide,
                                           voxel_size_for_count, voxelize)
from voxsplat.recon.representation.lattice import is_forward_facing, mean_camera, to_lattice, to_world
from voxsplat.recon.representation.voxel_grid import sample_members, unique_coords


def test_voxelize_and_size_for_count():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(5000, 3, generator=g)
    coords, inv = voxelize(pts, torch.zeros(3), 0.25)
    assert coords.shape == (64, 3) and int(inv.max()) == 63
    size = voxel_size_for_count(pts, 1000)
    n = voxelize(pts, pts.min(0).values, size)[0].shape[0]
    assert 700 <= n <= 1300, n


@pytest.mark.parametrize("scale", [1, 7, 100_000])
def test_unique_coords_equals_unique_rows(scale):
    """Same coordinates, order and inverse as `torch.unique(dim=0)`, negative coordinates and
    wide ranges included (the widest, past 2^20 per axis, falls back to unique rows)."""
    g = torch.Generator().manual_seed(scale)
    ijk = torch.randint(-40, 40, (6000, 3), generator=g) * scale
    ijk[:, 1] += 3 * scale  # a different range per axis
    want = torch.unique(ijk, dim=0, return_inverse=True)
    got = unique_coords(ijk)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert unique_coords(ijk[:0])[0].shape == (0, 3)


def test_grid_from_points_contains_every_point():
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.97, 0.5, 0.2], [0.93, 0.5, 0.2]])
    grid = SparseVoxelGrid.from_points(pts, 0.1)
    assert len(grid) == 2 and bool((grid.coords >= 0).all())
    lo = grid.origin + grid.coords.float() * grid.voxel_size
    inside = ((pts[:, None] >= lo[None] - 1e-6) & (pts[:, None] < lo[None] + grid.voxel_size)).all(-1)
    assert bool(inside.any(1).all())
    assert all(s % 8 == 0 and s > int(grid.coords[:, i].max()) for i, s in enumerate(grid.spatial_shape))


def test_subdivide_keeps_the_covered_space():
    coords = torch.tensor([[0, 0, 0], [3, 1, 2]])
    children, parent = subdivide(coords)
    assert children.shape == (16, 3)
    assert torch.equal(children // 2, coords[parent])
    assert torch.unique(children, dim=0).shape[0] == 16


def test_free_neighbours_are_new_unique_and_adjacent():
    coords = torch.tensor([[1, 1, 1], [2, 1, 1], [0, 0, 0]])
    new, parent = free_neighbours(coords, torch.tensor([True, True, False]))
    # 6 + 6 neighbours, minus the two that are each other, minus the shared none -> 10
    assert new.shape[0] == 10 and torch.unique(new, dim=0).shape[0] == 10
    keys = {tuple(c) for c in coords.tolist()}
    assert not any(tuple(c) in keys for c in new.tolist())
    assert bool(((new - coords[parent]).abs().sum(-1) == 1).all())


def _look_at_cams(eyes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cam_from_world [C,4,4] (OpenCV) of cameras at `eyes [C,3]` looking at `target [3]`."""
    out = []
    for eye in eyes:
        z = (target - eye) / (target - eye).norm()
        x = torch.linalg.cross(z, torch.tensor([0.0, -1.0, 0.0]))
        x = x / x.norm()
        R = torch.stack([x, torch.linalg.cross(z, x), z])
        T = torch.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ eye
        out.append(T)
    return torch.stack(out)


def test_depth_lattice_round_trips_and_scales_voxels_with_depth():
    eyes = torch.tensor([[-0.3, 0.0, -5.0], [0.3, 0.1, -5.0], [0.0, -0.2, -5.2]])
    cams = _look_at_cams(eyes, torch.zeros(3))
    ref = mean_camera(cams)
    assert torch.allclose(ref[:3, :3] @ ref[:3, :3].T, torch.eye(3), atol=1e-5)
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(2000, 3, generator=g) * torch.tensor([2.0, 2.0, 6.0]) - torch.tensor([1.0, 1.0, 2.0])
    u = to_lattice(pts, ref)
    back, unit = to_world(u, ref)
    assert torch.allclose(back, pts, atol=1e-4)
    depth = pts @ ref[2, :3] + ref[2, 3]
    assert torch.allclose(unit, depth, rtol=1e-4)
    grid = SparseVoxelGrid.from_points(pts, 0.02, ref_from_world=ref)
    centers, sizes = grid.world_centers()
    z = centers @ ref[2, :3] + ref[2, 3]
    torch.testing.assert_close(sizes, 0.02 * z)  # far voxels are larger, in proportion
    assert float(sizes.max() / sizes.min()) > 2.0
    # every point lies in its voxel's world box, up to the cell's curvature
    assert float((centers[voxelize(u, grid.origin, grid.voxel_size)[1]] - pts).norm(dim=-1).max()
                 / float(sizes.max())) < 1.0
    assert is_forward_facing(cams, pts)
    behind = torch.cat([pts, torch.tensor([[0.0, 0.0, -9.0]])])
    assert not is_forward_facing(cams, behind)
    near_plane = torch.cat([pts, torch.tensor([[0.0, 0.0, -4.9]])])  # in front, 0.1 deep
    assert is_forward_facing(cams, near_plane[:-1]) and not is_forward_facing(cams, near_plane)
    with pytest.raises(VoxsplatError, match="voxel.lattice=world"):
        to_lattice(behind, ref)
    around = _look_at_cams(torch.tensor([[0.0, 0.0, -5.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]), torch.zeros(3))
    assert not is_forward_facing(around, pts)


def test_sample_members_draws_each_voxels_own_points():
    """`sample_members`: k indices per voxel, each naming a point of that voxel, every point
    of a voxel reachable; a voxel without points is an error."""
    gen = torch.Generator().manual_seed(0)
    inv = torch.tensor([2, 0, 2, 1, 2, 0])
    idx = sample_members(inv, 3, 50, gen)
    assert idx.shape == (3, 50)
    assert torch.equal(inv[idx], torch.arange(3)[:, None].expand(3, 50))
    assert set(idx[2].tolist()) == {0, 2, 4} and set(idx[1].tolist()) == {3}
    with pytest.raises(ValueError, match="a voxel holds no point"):
        sample_members(torch.tensor([0, 0, 2]), 3, 4, gen)
