"""Image-quality metrics: PSNR and SSIM, differentiable and batched.

Images are channels-last ``[...,H,W,3]`` floats in [0, 1] (any leading batch dims, like the
rest of the project); each metric returns one value per image, shape ``[...]``.
Masks are ``[...,H,W]`` or ``[...,H,W,1]`` (bool or float weights), broadcast over the
leading dims; a masked metric averages over mask pixels only.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
"""Side of the SSIM Gaussian window in pixels."""
SSIM_SIGMA = 1.5
"""Standard deviation of the SSIM Gaussian window in pixels."""
SSIM_C1 = 0.01**2
"""SSIM luminance constant (K1 * data range)^2 for data range 1."""
SSIM_C2 = 0.03**2
"""SSIM contrast constant (K2 * data range)^2 for data range 1."""


def _check_pair(img: Tensor, gt: Tensor) -> None:
    """Raise ValueError unless img and gt are matching [...,H,W,C] images."""
    if img.shape != gt.shape or img.dim() < 3:
        raise ValueError(f"expected two [...,H,W,3] images of one shape, got {list(img.shape)} "
                         f"and {list(gt.shape)}")


def _as_mask(mask: Tensor, img: Tensor) -> Tensor:
    """Return a [...,H,W] or [...,H,W,1] mask as [...,H,W]; check it matches [...,H,W,C] img."""
    if mask.dim() >= 3 and mask.shape[-1] == 1 and mask.shape[-3:-1] == img.shape[-3:-1]:
        mask = mask.squeeze(-1)
    if mask.shape[-2:] != img.shape[-3:-1]:
        raise ValueError(f"mask {list(mask.shape)} does not match images of size "
                         f"{img.shape[-3]}x{img.shape[-2]} (HxW)")
    return mask


def _masked_mean(values: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Mean of [...,H,W,C] values over H, W, C, weighted by an optional [...,H,W] mask.

    An all-zero mask gives NaN.
    """
    if mask is None:
        return values.mean(dim=(-3, -2, -1))
    weight = mask.to(values.dtype).unsqueeze(-1)
    total = (values * weight).sum(dim=(-3, -2, -1))
    count = weight.expand(torch.broadcast_shapes(weight.shape, values.shape)).sum(dim=(-3, -2, -1))
    return total / count


def psnr(img: Tensor, gt: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Peak signal-to-noise ratio in dB for data range 1.

    Args:
        img: [...,H,W,3] rendered image in [0, 1].
        gt: [...,H,W,3] reference image.
        mask: optional [...,H,W] or [...,H,W,1]; the MSE averages over mask pixels only.

    Returns:
        [...] PSNR per image (inf for identical images, NaN for an empty mask).
    """
    _check_pair(img, gt)
    mse = _masked_mean((img - gt) ** 2, None if mask is None else _as_mask(mask, img))
    return -10.0 * torch.log10(mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    """[SSIM_WINDOW] normalized 1D Gaussian weights (the separable factor of the 2D window)."""
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: Tensor, padding: int) -> Tensor:
    """Separable Gaussian filter of [B,C,H,W] per channel (depthwise conv2d, zero padding)."""
    channels = x.shape[1]
    g = _gaussian_window(x.dtype, x.device)
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), padding=(padding, 0),
                 groups=channels)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), padding=(0, padding),
                    groups=channels)


def ssim_map(img: Tensor, gt: Tensor, padding: str = "valid") -> Tensor:
    """Per-pixel, per-channel SSIM with an 11x11 Gaussian window (sigma 1.5).

    Args:
        img: [...,H,W,C] image in [0, 1].
        gt: [...,H,W,C] reference image.
        padding: ``"valid"`` keeps only pixels whose whole window lies inside the image
            (the map is [...,H-10,W-10,C]; its mean equals skimage's and torchmetrics'
            SSIM); ``"same"`` zero-pads to [...,H,W,C] (the original 3DGS training loss).

    Returns:
        The SSIM map, channels-last; differentiable.
    """
    _check_pair(img, gt)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got '{padding}'")
    *lead, H, W, C = img.shape
    if padding == "valid" and min(H, W) < SSIM_WINDOW:
        raise ValueError(f"SSIM with padding='valid' needs images of at least {SSIM_WINDOW}x"
                         f"{SSIM_WINDOW} pixels, got {H}x{W}")
    dtype = torch.promote_types(img.dtype, torch.float32)
    x = img.to(dtype).reshape(-1, H, W, C).permute(0, 3, 1, 2)
    y = gt.to(dtype).reshape(-1, H, W, C).permute(0, 3, 1, 2)
    stats = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1),
                  SSIM_WINDOW // 2 if padding == "same" else 0)
    mu_x, mu_y, xx, yy, xy = stats.split(C, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    out = (num / den).permute(0, 2, 3, 1)
    return out.reshape(*lead, *out.shape[-3:])


def ssim(img: Tensor, gt: Tensor, mask: Optional[Tensor] = None,
         padding: str = "valid") -> Tensor:
    """Structural similarity (Wang et al. 2004), averaged over pixels and channels.

    With the defaults this matches ``skimage.metrics.structural_similarity(img, gt,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
    channel_axis=-1)``. For a training loss use ``1 - ssim(img, gt, padding="same")``.

    Args:
        img: [...,H,W,3] image in [0, 1].
        gt: [...,H,W,3] reference image.
        mask: optional [...,H,W] or [...,H,W,1]; averages the SSIM map inside the mask only
            (windows at in-mask pixels still see neighbours up to 5 pixels outside it).
        padding: ``"valid"`` or ``"same"``, see ``ssim_map``.

    Returns:
        [...] SSIM per image, 1 for identical images; differentiable.
    """
    smap = ssim_map(img, gt, padding)
    if mask is not None:
        mask = _as_mask(mask, img)
        if padding == "valid":
            r = SSIM_WINDOW // 2
            mask = mask[..., r:-r, r:-r]
    return _masked_mean(smap, mask)
