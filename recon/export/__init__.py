"""Export trained Gaussians to files that viewers and other tools read."""

from .ply import read_ply, write_ply
from .splat import read_splat, write_splat

__all__ = ["read_ply", "read_splat", "write_ply", "write_splat"]
