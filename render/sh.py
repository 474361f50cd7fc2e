"""Real spherical harmonics up to degree 3, with gsplat's constants and sign conventions.

The basis is the one of Sloan's "Efficient Spherical Harmonic Evaluation" (JCGT 2013) as used by
gsplat (``gsplat.cuda._torch_impl._eval_sh_bases_fast`` and the CUDA ``sh_coeffs_to_color_fast``),
so SH coefficients trained with either backend render identically with the other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.errors import VoxsplatError

SH_C0 = 0.28209479177387814
"""Degree-0 basis value, 1 / (2 sqrt(pi))."""

MAX_SH_DEGREE = 3


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients K = (degree+1)^2 for a degree."""
    return (degree + 1) ** 2


def RGB2SH(rgb: Tensor) -> Tensor:
    """Degree-0 coefficient whose colour (SH + 0.5) is ``rgb``; any shape."""
    return (rgb - 0.5) / SH_C0


def SH2RGB(sh: Tensor) -> Tensor:
    """Colour of a degree-0 coefficient (inverse of ``RGB2SH``); any shape."""
    return sh * SH_C0 + 0.5


def sh_bases(degree: int, dirs: Tensor) -> Tensor:
    """Evaluate the real SH basis at unit directions.

    Args:
        degree: 0..3.
        dirs: [...,3] unit directions (not normalized here).

    Returns:
        [...,(degree+1)^2] basis values in gsplat's order.
    """
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise VoxsplatError(f"sh_degree {degree} is not supported; use 0..{MAX_SH_DEGREE}")
    out = [torch.full_like(dirs[..., 0], SH_C0)]
    if degree == 0:
        return out[0][..., None]
    x, y, z = dirs.unbind(-1)
    c1 = 0.48860251190292
    out += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        z2 = z * z
        tmp_b = -1.092548430592079 * z
        c_1 = x * x - y * y
        s_1 = 2.0 * x * y
        out += [0.5462742152960395 * s_1, tmp_b * y, 0.9461746957575601 * z2 - 0.3153915652525201,
                tmp_b * x, 0.5462742152960395 * c_1]
    if degree >= 3:
        tmp_c = -2.285228997322329 * z2 + 0.4570457994644658
        tmp_b = 1.445305721320277 * z
        c_2 = x * c_1 - y * s_1
        s_2 = x * s_1 + y * c_1
        out += [-0.5900435899266435 * s_2, tmp_b * s_1, tmp_c * y,
                z * (1.865881662950577 * z2 - 1.119528997770346),
                tmp_c * x, tmp_b * c_1, -0.5900435899266435 * c_2]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour of SH coefficients seen along directions (without gsplat's +0.5 offset).

    Args:
        degree: SH degree to evaluate, 0..3; only the first (degree+1)^2 coefficients are used.
        dirs: [...,3] view directions, normalized here.
        coeffs: [...,K,3] coefficients, K >= (degree+1)^2; batch dims broadcast with ``dirs``.

    Returns:
        [...,3] sum_k basis_k(dir) * coeffs[k].
    """
    k = num_sh_bases(degree)
    if coeffs.shape[-2] < k:
        raise VoxsplatError(f"SH degree {degree} needs {k} coefficients per Gaussian, "
                            f"got {coeffs.shape[-2]}")
    bases = sh_bases(degree, F.normalize(dirs, p=2, dim=-1))  # [...,k]
    return (bases[..., None] * coeffs[..., :k, :]).sum(-2)


def view_colors(means: Tensor, coeffs: Tensor, cam_from_world: Tensor, degree: int) -> Tensor:
    """[C,N,3] colours of SH coefficients `coeffs` [N,K,3] seen from C cameras
    (`cam_from_world` [C,4,4]) along ``means - camera centre``, with gsplat's +0.5 offset and
    clamped at 0: the colours both rasterizer backends blend for ``sh_degree=degree``."""
    rot, trans = cam_from_world[:, :3, :3], cam_from_world[:, :3, 3]
    campos = -(rot.transpose(-1, -2) @ trans[..., None])[..., 0]  # [C,3]
    dirs = means[None] - campos[:, None]  # [C,N,3]
    return torch.clamp_min(eval_sh(degree, dirs, coeffs[None]) + 0.5, 0.0)
