"""A sparse voxel grid: integer coordinates on a regular lattice, built from points or bounds.

Pure functions on tensors; `SparseVoxelGrid` only bundles them. Voxel v covers the box
``origin + coords[v] * voxel_size + [0, voxel_size)^3`` of the lattice frame: the world (scene
units), or with `ref_from_world` a reference camera's perspective frame (see lattice.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...data.errors import VoxsplatError
from .lattice import to_lattice, to_world

NEIGHBOURS_6 = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
CHILDREN_8 = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def voxelize(points: Tensor, origin: Tensor, voxel_size: float) -> tuple[Tensor, Tensor]:
    """Unique voxel coordinates [V,3] (int64, in lexicographic order) of `points [P,3]`, and
    each point's voxel [P]."""
    ijk = torch.floor((points - origin) / voxel_size).long()
    return unique_coords(ijk)


def unique_coords(ijk: Tensor) -> tuple[Tensor, Tensor]:
    """`torch.unique(ijk, dim=0, return_inverse=True)` for integer triples `ijk [P,3]`, through
    one int64 key per row (`_keys`, which keeps the rows' lexicographic order), which sorts
    10-20x faster than unique rows; rows spanning 2^20 or more on an axis take unique rows."""
    if ijk.shape[0] == 0:
        return torch.unique(ijk, dim=0, return_inverse=True)
    lo = ijk.min(0).values
    if int((ijk.max(0).values - lo).max()) >= 2**20:
        return torch.unique(ijk, dim=0, return_inverse=True)
    keys, inv = torch.unique(_keys(ijk - lo), return_inverse=True)
    mask = 2**20 - 1
    return torch.stack([keys >> 40, (keys >> 20) & mask, keys & mask], -1) + lo, inv


def voxel_size_for_count(points: Tensor, target: int, iters: int = 20) -> float:
    """The voxel size at which `points [P,3]` occupy about `target` voxels (bisection in log)."""
    if points.shape[0] == 0:
        raise VoxsplatError("cannot build a voxel grid from zero points")
    extent = float((points.max(0).values - points.min(0).values).max().clamp_min(1e-6))
    lo, hi = extent / 4096.0, extent  # many voxels .. one voxel
    origin = points.min(0).values
    for _ in range(iters):
        mid = (lo * hi) ** 0.5
        n = voxelize(points, origin, mid)[0].shape[0]
        lo, hi = (mid, hi) if n > target else (lo, mid)
    return hi


@dataclass
class SparseVoxelGrid:
    """Occupied voxels of one level: `coords [V,3]` int64 >= 0, `origin [3]`, `voxel_size`
    (lattice units), `ref_from_world [4,4]` (None: the lattice is the world frame)."""

    coords: Tensor
    origin: Tensor
    voxel_size: float
    ref_from_world: Tensor | None = None

    @staticmethod
    def from_points(points: Tensor, voxel_size: float, margin_voxels: int = 2,
                    ref_from_world: Tensor | None = None) -> "SparseVoxelGrid":
        """The voxels holding world `points [P,3]` (`voxel_size` in lattice units); the origin
        leaves `margin_voxels` free below."""
        u = to_lattice(points, ref_from_world)
        return SparseVoxelGrid.from_lattice_points(u, voxel_size, margin_voxels, ref_from_world)[0]

    @staticmethod
    def from_lattice_points(u: Tensor, voxel_size: float, margin_voxels: int = 2,
                            ref_from_world: Tensor | None = None) -> tuple["SparseVoxelGrid", Tensor]:
        """As `from_points`, for points `u [P,3]` already in the lattice frame; also each
        point's voxel [P]."""
        origin = u.min(0).values - margin_voxels * voxel_size
        coords, inv = voxelize(u, origin, voxel_size)
        return SparseVoxelGrid(coords, origin, float(voxel_size), ref_from_world), inv

    @staticmethod
    def from_bounds(center: Tensor, radius: float, resolution: int) -> "SparseVoxelGrid":
        """Every voxel of a cube of half-size `radius` around `center`, `resolution` per side."""
        r = torch.arange(resolution)
        coords = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
        size = 2 * radius / resolution
        return SparseVoxelGrid(coords, center - radius, float(size))

    def __len__(self) -> int:
        return self.coords.shape[0]

    @property
    def centers(self) -> Tensor:
        """[V,3] voxel centres in the lattice frame."""
        return self.origin.to(self.coords.device) + (self.coords.float() + 0.5) * self.voxel_size

    def world_centers(self) -> tuple[Tensor, Tensor]:
        """[V,3] voxel centres in the world frame and [V] voxel edge lengths in world units."""
        points, unit = to_world(self.centers, self.ref_from_world)
        return points, unit * self.voxel_size

    @property
    def spatial_shape(self) -> list[int]:
        """Lattice size covering every coordinate, rounded up to a multiple of 8 (3 levels)."""
        top = self.coords.max(0).values + 1 if len(self) else torch.ones(3, dtype=torch.long)
        return [int((int(t) + 7) // 8 * 8) for t in top]


def sample_members(inv: Tensor, n_voxels: int, k: int, gen: torch.Generator) -> Tensor:
    """For each voxel, `k` of the points whose voxel `inv [P]` names, drawn uniformly with
    replacement: point indices [V,k]. Every voxel must hold a point."""
    order = torch.argsort(inv, stable=True)
    counts = torch.bincount(inv, minlength=n_voxels)
    if bool((counts == 0).any()):
        raise ValueError("sample_members: a voxel holds no point")
    start = torch.cumsum(counts, 0) - counts
    r = (torch.rand(n_voxels, k, generator=gen) * counts[:, None]).long().clamp_max(counts[:, None] - 1)
    return order[start[:, None] + r]


def subdivide(coords: Tensor) -> tuple[Tensor, Tensor]:
    """Children [8V,3] of every voxel at half the size, and each child's parent index [8V]."""
    children = (coords[:, None, :] * 2 + CHILDREN_8.to(coords.device)[None]).reshape(-1, 3)
    parent = torch.arange(coords.shape[0], device=coords.device).repeat_interleave(8)
    return children, parent


def free_neighbours(coords: Tensor, selected: Tensor,
                    excluded: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Empty 6-neighbours [M,3] (>= 0) of the `selected [V]` voxels, and the parent of each [M],
    leaving out the cells `excluded [E,3]` (e.g. voxels just pruned).

    Each new voxel appears once (first parent wins).
    """
    sel = selected.nonzero().squeeze(-1)
    nb = (coords[sel][:, None, :] + NEIGHBOURS_6.to(coords.device)[None]).reshape(-1, 3)
    parent = sel.repeat_interleave(6)
    ok = (nb >= 0).all(-1)
    nb, parent = nb[ok], parent[ok]
    if nb.shape[0] == 0:
        return nb, parent
    key_old = _keys(coords) if excluded is None else torch.cat([_keys(coords), _keys(excluded)])
    key_new = _keys(nb)
    free = ~torch.isin(key_new, key_old)
    nb, parent, key_new = nb[free], parent[free], key_new[free]
    uniq, inv = torch.unique(key_new, return_inverse=True)
    first = torch.full((uniq.shape[0],), nb.shape[0], dtype=torch.long, device=nb.device)
    first.scatter_reduce_(0, inv, torch.arange(nb.shape[0], device=nb.device), "amin")
    return nb[first], parent[first]


def _keys(coords: Tensor) -> Tensor:
    """One int64 per coordinate triple (coordinates below 2^20)."""
    c = coords.long()
    return (c[:, 0] << 40) | (c[:, 1] << 20) | c[:, 2]
