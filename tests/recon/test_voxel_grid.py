"""Sparse voxel grid construction and edits (pure torch, no spconv)."""

import torch

from voxsplat.recon.representation import (SparseVoxelGrid, free_neighbours, subdivide,
                                           voxel_size_for_count, voxelize)


def test_voxelize_and_size_for_count():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(5000, 3, generator=g)
    coords, inv = voxelize(pts, torch.zeros(3), 0.25)
    assert coords.shape == (64, 3) and int(inv.max()) == 63
    size = voxel_size_for_count(pts, 1000)
    n = voxelize(pts, pts.min(0).values, size)[0].shape[0]
    assert 700 <= n <= 1300, n


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
