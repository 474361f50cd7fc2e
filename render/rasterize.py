"""One entry point over two rasterizer backends with the same signature and outputs.

- ``"gsplat"``: gsplat's CUDA kernels (needs CUDA; gsplat is imported lazily, only here).
- ``"torch"``: the pure-PyTorch tiled reference in ``_torch_rasterizer`` (CPU or GPU, autograd);
  it is the ground truth in tests.
- ``"auto"``: gsplat when the inputs live on a CUDA device, else torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import Tensor

from ..data.errors import VoxsplatError


@dataclass
class RasterOutput:
    """What a rasterizer returns for C cameras and N Gaussians.

    Attributes:
        colors: [C,H,W,3] RGB (or [C,H,W,D]: the D features given), composited on the
            background when one was given.
        alphas: [C,H,W,1] accumulated opacity.
        depths: [C,H,W,1] expected camera-space z, normalized by alpha (0 where alpha is 0).
        means2d: [C,N,2] projected centres in pixels; differentiable (call ``retain_grad()``
            before backward to read the view-space gradient densification needs).
        radii: [C,N] int32 screen-space radius in pixels, 0 for culled Gaussians.
    """

    colors: Tensor
    alphas: Tensor
    depths: Tensor
    means2d: Tensor
    radii: Tensor


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    cam_from_world: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    sh_degree: Optional[int] = None,
    background: Optional[Tensor] = None,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
    backend: str = "auto",
) -> RasterOutput:
    """Render N 3D Gaussians into C pinhole cameras.

    Args:
        means: [N,3] centres in world coordinates.
        quats: [N,4] rotations as quaternions (w,x,y,z), normalized inside.
        scales: [N,3] standard deviations along the rotated axes (already activated).
        opacities: [N] in [0,1] (already activated).
        colors: [N,3] RGB, or [N,K,3] SH coefficients when ``sh_degree`` is given
            (K >= (sh_degree+1)^2; colour = SH(dir) + 0.5, clamped at 0 as in gsplat). Without
            ``sh_degree``, any [N,D] features blend as RGB does (depth moments, labels).
        cam_from_world: [C,4,4] OpenCV world-to-camera transforms.
        Ks: [C,3,3] intrinsics.
        width, height: image size in pixels (shared by the C cameras).
        sh_degree: SH degree to evaluate, or None for plain RGB colours.
        background: None (black), [3] or [C,3] RGB ([D] or [C,D] for D features)
            composited behind the Gaussians.
        near, far: z range kept, in camera units.
        eps2d: added to the 2D covariance diagonal (gsplat's "classic" anti-aliasing blur).
        backend: "auto", "gsplat" or "torch".

    Returns:
        RasterOutput.
    """
    if backend == "auto":
        backend = "gsplat" if means.is_cuda else "torch"
    if backend == "gsplat":
        if not means.is_cuda:
            raise VoxsplatError("the gsplat backend needs CUDA tensors; use --device cuda on a "
                                "GPU machine or the 'torch' backend")
        from ._gsplat_backend import rasterize_gsplat as impl
    elif backend == "torch":
        from ._torch_rasterizer import _rasterize as impl
    else:
        raise VoxsplatError(f"unknown rasterizer backend '{backend}'; use auto, gsplat or torch")
    return impl(means, quats, scales, opacities, colors, cam_from_world, Ks, width, height,
                sh_degree=sh_degree, background=background, near=near, far=far, eps2d=eps2d)
