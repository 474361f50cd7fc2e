"""Readers for posed multi-view formats; each returns a Scene in the OpenCV convention.

- `read_blender`: NeRF / instant-ngp `transforms*.json`.
- `read_llff`: LLFF `poses_bounds.npy`.
- `read_neus`: NeuS / DTU `cameras_sphere.npz`.
"""

from .blender import read_blender
from .llff import read_llff
from .neus import read_neus

__all__ = ["read_blender", "read_llff", "read_neus"]
