"""Sparse-convolution networks over voxel grids. Only `_spconv` imports spconv (lazily)."""

from ._spconv import spconv
from .unet import ResBlock, SparseUNet, sparse_tensor

__all__ = ["spconv", "ResBlock", "SparseUNet", "sparse_tensor"]
