"""Lens distortion of `transforms.json` cameras (nerfstudio's `OPENCV` and `OPENCV_FISHEYE`),
removed by resampling each image onto a pinhole camera of the same size.

nerfstudio's `ns-process-data` keeps the photos as taken and writes their distortion as
`k1 k2 k3 k4 p1 p2` (with `camera_model`). Our rasterizers are pinhole, so such images are
undistorted on reading. The models, on normalized camera coordinates (x, y), r2 = x^2 + y^2:

- OPENCV: radial 1 + k1 r2 + k2 r2^2 + k3 r2^3 + k4 r2^4 (nerfstudio's k4 term), tangential
  x += 2 p1 x y + p2 (r2 + 2 x^2), y += p1 (r2 + 2 y^2) + 2 p2 x y;
- OPENCV_FISHEYE: theta = atan(r), theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6
  + k4 theta^8), (x, y) scaled by theta_d / r.

The pinhole camera keeps the principal point and scales the focal length so that every pixel
of the new image sees into the photo (no blank borders), as COLMAP's undistorter does with
its default `blank_pixels=0`. Pure torch: pycolmap is not needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

LENS_KEYS = ("camera_model", "is_fisheye", "k1", "k2", "k3", "k4", "p1", "p2")
"""The transforms.json keys of the lens (top level or per frame); instant-ngp's
`is_fisheye: true` (no `camera_model`) is OPENCV_FISHEYE."""
MODELS = ("OPENCV", "OPENCV_FISHEYE")
PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")
"""`camera_model` values of cameras without distortion (nerfstudio writes them for pinhole
COLMAP cameras)."""
NEGLIGIBLE_PX = 0.5
"""Distortion moving no pixel by more than this is read as pinhole (as the COLMAP reader)."""


@dataclass(frozen=True)
class Lens:
    """A distortion model and its coefficients."""

    model: str
    k: tuple[float, float, float, float]
    p: tuple[float, float]


def lens_of(params: dict) -> Optional[Lens]:
    """The lens of a frame's keys, or None for a pinhole camera: a perspective one with no
    (nonzero) distortion. An OPENCV_FISHEYE camera is never None: with k1..k4 = 0 it is the
    equidistant projection, far from a pinhole.

    Raises:
        ValueError: a `camera_model` other than `MODELS` or `PINHOLE_MODELS` (e.g. nerfstudio's
            EQUIRECTANGULAR), one of `PINHOLE_MODELS` with distortion, or a coefficient that is
            not a finite number (the reader names the file).
    """
    values = {}
    for key in ("k1", "k2", "k3", "k4", "p1", "p2"):
        v = params.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"'{key}' must be a number, got {v!r}")
        values[key] = float(v)
    fisheye = params.get("is_fisheye") is True  # instant-ngp's colmap2nerf.py
    model = str(params.get("camera_model") or ("OPENCV_FISHEYE" if fisheye else "OPENCV")).upper()
    if model not in MODELS + PINHOLE_MODELS:
        raise ValueError(f"camera_model '{model}' is not supported (only "
                         f"{', '.join(MODELS + PINHOLE_MODELS)})")
    if not any(values.values()) and model != "OPENCV_FISHEYE":
        return None
    if model in PINHOLE_MODELS:
        raise ValueError(f"camera_model '{model}' has no distortion coefficients, but the file "
                         f"gives some; write camera_model OPENCV (or OPENCV_FISHEYE)")
    if model == "OPENCV_FISHEYE" and (values["p1"] or values["p2"]):
        raise ValueError("OPENCV_FISHEYE has no tangential terms; p1 and p2 must be 0")
    return Lens(model, (values["k1"], values["k2"], values["k3"], values["k4"]),
                (values["p1"], values["p2"]))


def distort(xy: Tensor, lens: Lens) -> Tensor:
    """Distorted normalized coordinates [N,2] of undistorted ones `xy` [N,2] (float64)."""
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    k1, k2, k3, k4 = lens.k
    if lens.model == "OPENCV_FISHEYE":
        r = r2.sqrt()
        theta = torch.atan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        scale = torch.where(r > 1e-12, theta_d / r.clamp_min(1e-12), torch.ones_like(r))
        return xy * scale[:, None]
    p1, p2 = lens.p
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
    return torch.stack([x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], -1)


def _pixel_grid(width: int, height: int, border_only: bool = False) -> Tensor:
    """Pixel-centre coordinates [N,2] (u, v) of an image, or of its border pixels only."""
    u = torch.arange(width, dtype=torch.float64) + 0.5
    v = torch.arange(height, dtype=torch.float64) + 0.5
    if border_only:
        top = torch.stack([u, torch.full_like(u, 0.5)], -1)
        left = torch.stack([torch.full_like(v, 0.5), v], -1)
        return torch.cat([top, top + torch.tensor([0.0, height - 1.0], dtype=torch.float64),
                          left, left + torch.tensor([width - 1.0, 0.0], dtype=torch.float64)])
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu.reshape(-1), vv.reshape(-1)], -1)


def _source_pixels(K_new: Tensor, K: Tensor, lens: Lens, px: Tensor) -> Tensor:
    """Where pixels `px` [N,2] of the pinhole camera K_new fall in the distorted photo (K)."""
    xy = (px - K_new[:2, 2]) / torch.stack([K_new[0, 0], K_new[1, 1]])
    d = distort(xy, lens)
    return d * torch.stack([K[0, 0], K[1, 1]]) + K[:2, 2]


def max_shift_px(K: Tensor, lens: Lens, width: int, height: int) -> float:
    """The largest distance, in pixels, that the lens moves a border pixel."""
    K = K.double()
    px = _pixel_grid(width, height, border_only=True)
    return float((_source_pixels(K, K, lens, px) - px).norm(dim=1).max())


def pinhole_for(K: Tensor, lens: Lens, width: int, height: int) -> Tensor:
    """[3,3] pinhole K of the same size whose every pixel sees into the photo: the photo's
    principal point, its focal lengths times the smallest factor (bisection) that keeps the
    border inside."""
    K = K.double()
    border = _pixel_grid(width, height, border_only=True)

    def inside(scale: float) -> bool:
        K_new = K.clone()
        K_new[0, 0] *= scale
        K_new[1, 1] *= scale
        src = _source_pixels(K_new, K, lens, border)
        return bool(((src[:, 0] >= 0) & (src[:, 0] <= width) & (src[:, 1] >= 0)
                     & (src[:, 1] <= height) & torch.isfinite(src).all(1)).all())

    lo, hi = 0.5, 1.0  # at most twice the field of view (fisheye lenses see past 180 degrees)
    while not inside(hi):
        lo, hi = hi, hi * 2
        if hi > 64:
            raise ValueError("the distortion folds the image over itself; check k1..k4, p1, p2")
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if inside(mid) else (mid, hi)
    K_new = K.clone()
    K_new[0, 0] *= hi
    K_new[1, 1] *= hi
    return K_new.float()


def undistort_image(image: Tensor, K: Tensor, lens: Lens, K_new: Tensor,
                    nearest: bool = False) -> Tensor:
    """`image` [H,W,C] or [H,W] (any dtype) resampled onto the pinhole camera K_new of the
    same size: bilinear (nearest for masks), clamped at the border."""
    H, W = image.shape[:2]
    src = _source_pixels(K_new.double(), K.double(), lens, _pixel_grid(W, H))
    grid = torch.stack([src[:, 0] / W * 2 - 1, src[:, 1] / H * 2 - 1], -1).float()
    planar = image.reshape(H, W, -1).permute(2, 0, 1)[None].float()
    out = torch.nn.functional.grid_sample(planar, grid.reshape(1, H, W, 2),
                                          mode="nearest" if nearest else "bilinear",
                                          padding_mode="border", align_corners=False)
    out = out[0].permute(1, 2, 0).reshape(image.shape)
    if image.dtype == torch.bool:
        return out > 0.5
    if not image.dtype.is_floating_point:
        return out.round().clamp(0, 255 if image.dtype == torch.uint8 else None).to(image.dtype)
    return out.to(image.dtype)
