"""antimatter15's ``.splat`` format, read by his WebGL viewer and many web viewers.

32 bytes per Gaussian, no header, little-endian::

    position  3 x float32    x, y, z
    scale     3 x float32    exp(log scales), i.e. std-devs
    colour    4 x uint8      RGB = clip(0.5 + C0*sh0, 0, 1)*255, A = sigmoid(opacity)*255
    rotation  4 x uint8      normalized (w,x,y,z)*128 + 128, clipped to 0..255

Rows are sorted as antimatter15's ``convert.py`` sorts them: largest and most opaque first,
by -exp(sum of log scales) * sigmoid(opacity). Colours and rotations are quantized by
truncation (numpy's ``astype(uint8)``, as convert.py does); higher-order SH are dropped.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ...data.atomic import atomic_open
from ...data.errors import VoxsplatError
from .ply import splat_arrays

SH_C0 = 0.28209479177387814
"""The degree-0 real spherical-harmonic constant, 1 / (2 sqrt(pi))."""

SPLAT_DTYPE = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)),
                        ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
"""One 32-byte ``.splat`` row."""


def splat_order(scales: np.ndarray, opacities: np.ndarray) -> np.ndarray:
    """The row order of a ``.splat`` file: by volume times opacity, descending.

    Ranks by log(exp(sum log scales) * sigmoid(opacity)) in float64, which orders the same as
    convert.py's key but cannot overflow; ties keep their input order.

    Args:
        scales: [N,3] log std-devs.
        opacities: [N] logits.

    Returns:
        [N] int64 indices into the input, first row first.
    """
    log_sigmoid = -np.logaddexp(0.0, -opacities.astype(np.float64))
    key = scales.astype(np.float64).sum(axis=1) + log_sigmoid
    return np.argsort(-key, kind="stable")


def encode_splat(splats: Mapping[str, Tensor]) -> np.ndarray:
    """Quantize and sort splats into ``.splat`` rows.

    Args:
        splats: means [N,3], scales [N,3], quats [N,4], opacities [N], sh0 [N,1,3].

    Returns:
        [N] structured array of SPLAT_DTYPE, in file order.
    """
    a = splat_arrays(splats)
    n = a["means"].shape[0]
    order = splat_order(a["scales"], a["opacities"])
    rows = np.zeros(n, SPLAT_DTYPE)
    rows["position"] = a["means"][order]
    rows["scale"] = np.exp(a["scales"][order])
    # float32 arithmetic throughout, as convert.py does, so the truncated bytes match it.
    with np.errstate(over="ignore"):
        alpha = np.float32(1) / (np.float32(1) + np.exp(-a["opacities"][order]))
    rgba = np.concatenate([np.float32(0.5) + np.float32(SH_C0) * a["sh0"][order].reshape(n, 3),
                           alpha[:, None]], axis=1)
    rows["rgba"] = (rgba * np.float32(255)).clip(0, 255).astype(np.uint8)
    quats = a["quats"][order]
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    identity = np.tile(np.array([[1, 0, 0, 0]], np.float32), (n, 1))
    quats = np.divide(quats, norm, out=identity, where=norm > 0)
    rows["rot"] = (quats * 128 + 128).clip(0, 255).astype(np.uint8)
    return rows


def write_splat(path: str | os.PathLike, splats: Mapping[str, Tensor]) -> None:
    """Write splats as an antimatter15 ``.splat`` file (atomically).

    Args:
        path: output ``.splat`` file; written through a temp file, so an interrupted write
            leaves no partial file.
        splats: means [N,3], scales [N,3], quats [N,4], opacities [N], sh0 [N,1,3];
            shN is ignored (the format has no view-dependent colour).
    """
    rows = encode_splat(splats)
    with atomic_open(path, "wb") as f:
        f.write(rows.tobytes())


def read_splat(path: str | os.PathLike) -> dict[str, Tensor]:
    """Decode a ``.splat`` file into splat tensors (approximately: colours are 8-bit).

    Colours decode as viewers show them (value/255); alpha is clamped half a step inside
    (0, 1) so opacity logits stay finite. Rotations decode as (q - 128)/128, unnormalized.

    Args:
        path: an antimatter15 ``.splat`` file.

    Returns:
        means [N,3], scales [N,3] (log), quats [N,4], opacities [N] (logits), sh0 [N,1,3],
        shN [N,0,3]; float32 on the CPU, in file order.

    Raises:
        VoxsplatError: the file is missing or its size is not a multiple of 32 bytes.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: no such file; check the path to the .splat file") from None
    except OSError as e:
        raise VoxsplatError(f"{path}: cannot read ({e.strerror}); check the path and "
                            "permissions") from None
    if data.size % SPLAT_DTYPE.itemsize:
        raise VoxsplatError(f"{path}: {data.size} bytes is not a multiple of 32; not a .splat "
                            "file, or truncated: re-export it")
    rows = data.view(SPLAT_DTYPE)
    n = rows.shape[0]
    rgba = rows["rgba"].astype(np.float64) / 255.0
    alpha = rgba[:, 3].clip(0.5 / 255, 1 - 0.5 / 255)
    # a flat Gaussian (std-dev 0 on an axis) is drawn by viewers (antimatter15's builds its
    # covariance from the scales squared: a negative one draws as its absolute value)
    log_scales = np.log(np.maximum(np.abs(rows["scale"]), np.finfo(np.float32).tiny))
    arrays = {
        "means": rows["position"].astype(np.float32),
        "scales": log_scales,
        "quats": ((rows["rot"].astype(np.float32) - 128) / 128),
        "opacities": np.log(alpha / (1 - alpha)).astype(np.float32),
        "sh0": ((rgba[:, :3] - 0.5) / SH_C0).astype(np.float32).reshape(n, 1, 3),
        "shN": np.zeros((n, 0, 3), np.float32),
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
