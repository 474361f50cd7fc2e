"""Scene representations: explicit Gaussians and sparse voxels that decode Gaussians.

Importing this package does not import spconv; the voxel model loads it when built.
"""

from .voxel_grid import SparseVoxelGrid, free_neighbours, subdivide, voxel_size_for_count, voxelize

__all__ = ["SparseVoxelGrid", "free_neighbours", "subdivide", "voxel_size_for_count", "voxelize"]
