"""``rasterize`` on gsplat's CUDA kernels; the one module that imports gsplat, and only when called.

Maps the contract onto ``gsplat.rasterization(packed=False, rasterize_mode="classic",
render_mode="RGB+ED")`` (written against gsplat 1.5.3):

- Colours may have any number D of channels (gsplat pads the kernels' to a size it was
  built for); ``backgrounds`` must be [C,D]; gsplat appends a 0 for the depth channel itself, so depth is
  never composited with the background.
- "ED" depth comes back already divided by ``alpha.clamp(min=1e-10)`` (0 where alpha is 0).
- ``radii`` is [C,N,2] (x and y half-sizes of gsplat 1.5's rectangular box) and is reduced to
  [C,N] by max; gsplat < 1.5 returns [C,N] already.
- ``means2d`` is ``meta["means2d"]`` itself, the tensor the kernels differentiate, so
  ``retain_grad()`` works; its values where ``radii == 0`` are left unset by gsplat.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..data.errors import VoxsplatError
from ._torch_rasterizer import backgrounds, check_inputs
from .rasterize import RasterOutput


def _gsplat_rasterization():
    """gsplat.rasterization, imported now; VoxsplatError when gsplat is not installed."""
    try:
        from gsplat import rasterization
    except ImportError as exc:
        raise VoxsplatError("the gsplat backend needs gsplat: pip install gsplat (with a CUDA "
                            "build of torch), or use backend='torch'") from exc
    return rasterization


def _empty_output(n_cams: int, width: int, height: int, bg: Optional[Tensor],
                  means: Tensor, channels: int) -> RasterOutput:
    """Render of zero Gaussians: the background, alpha and depth 0."""
    zeros = means.new_zeros(n_cams, height, width, 1)
    colors = zeros.expand(-1, -1, -1, channels).clone()
    if bg is not None:
        colors = colors + bg[:, None, None, :]
    return RasterOutput(colors=colors, alphas=zeros, depths=zeros.clone(),
                        means2d=means.new_zeros(n_cams, 0, 2),
                        radii=torch.zeros(n_cams, 0, dtype=torch.int32, device=means.device))


def rasterize_gsplat(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                     colors: Tensor, cam_from_world: Tensor, Ks: Tensor, width: int,
                     height: int, *, sh_degree: Optional[int] = None,
                     background: Optional[Tensor] = None, near: float = 0.01,
                     far: float = 1e10, eps2d: float = 0.3) -> RasterOutput:
    """gsplat implementation of ``rasterize`` (same arguments and outputs)."""
    check_inputs(means, quats, scales, opacities, colors, cam_from_world, Ks, sh_degree)
    rasterization = _gsplat_rasterization()
    n_cams = cam_from_world.shape[0]
    channels = colors.shape[-1]  # D features, or RGB from SH
    bg = backgrounds(background, n_cams, means, channels)
    if means.shape[0] == 0:
        return _empty_output(n_cams, width, height, bg, means, channels)
    render, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, viewmats=cam_from_world, Ks=Ks,
        width=width, height=height, near_plane=near, far_plane=far, eps2d=eps2d,
        sh_degree=sh_degree, packed=False, rasterize_mode="classic", render_mode="RGB+ED",
        backgrounds=None if bg is None else bg.contiguous())
    radii = meta["radii"]
    if radii.dim() == 3:
        radii = radii.amax(dim=-1)
    return RasterOutput(colors=render[..., :-1], alphas=alphas, depths=render[..., -1:],
                        means2d=meta["means2d"], radii=radii.to(torch.int32))
