"""Niantic's ``.spz`` (version 3, or 2 on request): gzip-compressed, about 10x smaller than a 3DGS ``.ply``.

Read by Niantic's library and Scaniverse, SuperSplat, Spark, Babylon.js and other web viewers.
The layout follows Niantic's reference (``load-spz.cc``, github.com/nianticlabs/spz). One gzip
stream holds a 16-byte little-endian header::

    magic u32 = 0x5053474e ("NGSP")   version u32 = 3 (or 2)   numPoints u32
    shDegree u8   fractionalBits u8   flags u8 (0x1: antialiased; 0 here)   reserved u8 = 0

then one section per attribute, each over all Gaussians in turn:

    positions  9 bytes   x, y, z as 24-bit signed fixed point, 2^-fractionalBits units
    alphas     1 byte    sigmoid(opacity) * 255
    colors     3 bytes   sh0 * (0.15 * 255) + 127.5 (a wide range: the DC may leave [0,1])
    scales     3 bytes   (log std-dev + 10) * 16
    rotations  4 bytes   version 3: the unit quaternion's "smallest three", a u32 of the
                         largest component's index (2 bits) and each other component as a
                         sign and 9 bits of |q_i| / sqrt(1/2) (the largest is implied)
               3 bytes   version 2: x, y, z of the unit quaternion with w >= 0,
                         * 127.5 + 127.5 (coarse where w nears 0: axes off by up to 0.17)
    sh         9 / 24 / 45 bytes for degree 1 / 2 / 3: per coefficient, r, g, b (channel
               fastest), round(sh * 128) + 128, snapped to 5 bits for degree 1 and 4 bits above

(bytes rounded to nearest and clamped to 0..255). The format's frame is RUB (OpenGL: x right,
y up, z back) and a 3DGS ``.ply`` is read as RDF (COLMAP/OpenCV: y down, z forward), so the
writer turns the Gaussians 180 degrees about x, as Niantic's ``ply_to_spz`` does: y and z of
positions and quaternions change sign, and so do the SH coefficients odd in y or z. A viewer
then shows the ``.spz`` as it shows the ``.ply`` of the same export.

``fractionalBits`` is 12 (Niantic's: 1/4096 of a unit) unless the scene is wider than 24 bits
allow (2048 units from the origin); then it is the largest that fits, never a wrapped value.
"""

from __future__ import annotations

import gzip
import os
import struct
import warnings
import zlib
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ...data.atomic import atomic_open
from ...data.errors import VoxsplatError
from .ply import splat_arrays

MAGIC = 0x5053474E
VERSION = 3
"""The version written by default, as Niantic's library (``PackOptions.version``) does."""
VERSIONS = (2, 3)
SQRT1_2 = 0.7071067811865476
COLOR_SCALE = 0.15
"""Colours store sh0 * 0.15 (not SH_C0 = 0.282), leaving room for DC values outside [0,1]."""
FRACTIONAL_BITS = 12
_HEADER = struct.Struct("<IIIBBBB")
_FLAG_ANTIALIASED = 0x1
_FLAG_EXTENSIONS = 0x2
_SH_DIM = {0: 0, 3: 1, 8: 2, 15: 3}  # coefficients per channel beyond the DC -> degree
_FLIP_P = np.array([1.0, -1.0, -1.0])
"""RDF -> RUB: y and z change sign (a half turn about x, its own inverse)."""
_FLIP_SH = np.array([-1, -1, 1,  # degree 1: y, z, x
                     -1, 1, 1, -1, 1,  # degree 2: xy, yz, 3z^2-1, xz, x^2-y^2
                     -1, 1, -1, -1, 1, -1, 1], np.float64)  # degree 3
"""Sign of each SH basis function (gsplat's order) under (x, y, z) -> (x, -y, -z)."""


def fractional_bits(means: np.ndarray) -> int:
    """12, or fewer where a coordinate would not fit 24 signed bits (|v| * 2^b < 2^23)."""
    extent = float(np.abs(means).max()) if means.size else 0.0
    bits = FRACTIONAL_BITS
    while bits > 0 and round(extent * 2 ** bits) >= 2 ** 23:
        bits -= 1
    if round(extent * 2 ** bits) >= 2 ** 23:
        raise VoxsplatError(f"a Gaussian lies {extent:.3g} units from the origin: beyond the "
                            ".spz range (8.4 million); export --format ply, or --frame scene")
    return bits


def _round(x: np.ndarray) -> np.ndarray:
    """Halves away from zero, as C's round() in Niantic's encoder (numpy's go to even)."""
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round(x), 0, 255).astype(np.uint8)


def _quantize_sh(sh: np.ndarray, bits: int) -> np.ndarray:
    """round(sh * 128) + 128, snapped to the nearest multiple of 2^(8 - bits), clamped."""
    bucket = 1 << (8 - bits)
    q = _round(sh * np.float32(128)) + 128
    q = np.floor((q + bucket // 2) / bucket) * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def _pack_first_three(xyzw: np.ndarray) -> np.ndarray:
    """Version 2: [N,3] bytes, x, y, z of the unit quaternion with w >= 0, * 127.5 + 127.5."""
    return _u8(xyzw[:, :3] * np.where(xyzw[:, 3:] < 0, -1.0, 1.0) * 127.5 + 127.5)


def _pack_smallest_three(xyzw: np.ndarray) -> np.ndarray:
    """Version 3: [N,4] bytes, one little-endian u32 per unit quaternion (x, y, z, w order):
    the index of its largest component in the top 2 bits, then each other component in
    order as a sign bit (of the component times the largest's sign) and 9 bits of
    |component| / sqrt(1/2) * 511, truncated after adding a half (Niantic's float32 math)."""
    q = xyzw.astype(np.float32)
    largest = np.argmax(np.abs(q), axis=1)  # the first of equals, as Niantic's strict '>'
    rows = np.arange(len(q))
    negate = q[rows, largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        mag = np.minimum((np.float32(511) * (np.abs(q[:, i]) / np.float32(SQRT1_2))
                          + np.float32(0.5)).astype(np.uint32), 511)
        negbit = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        comp = np.where(largest == i, comp, (comp << 10) | (negbit << 9) | mag)
    return comp.astype("<u4").view(np.uint8).reshape(-1, 4)


def _unpack_first_three(rotations: np.ndarray) -> np.ndarray:
    xyz = rotations / 127.5 - 1.0
    return np.concatenate([xyz, np.sqrt(np.clip(1.0 - (xyz ** 2).sum(1, keepdims=True), 0, None))], 1)


def _unpack_smallest_three(rotations: np.ndarray) -> np.ndarray:
    comp = (rotations[:, 0] | (rotations[:, 1] << 8) | (rotations[:, 2] << 16)
            | (rotations[:, 3] << 24))
    largest = comp >> 30
    xyzw = np.zeros((len(comp), 4))
    for i in range(3, -1, -1):
        value = SQRT1_2 * (comp & 511) / 511 * np.where((comp >> 9) & 1, -1.0, 1.0)
        xyzw[:, i] = np.where(largest == i, 0.0, value)
        comp = np.where(largest == i, comp, comp >> 10)
    xyzw[np.arange(len(comp)), largest] = np.sqrt(np.clip(1.0 - (xyzw ** 2).sum(1), 0, None))
    return xyzw


def encode_spz(splats: Mapping[str, Tensor], version: int = VERSION) -> bytes:
    """The uncompressed ``.spz`` payload (header and sections) of `splats`.

    Args:
        splats: means [N,3], scales [N,3] (log), quats [N,4] (w,x,y,z), opacities [N] (logits),
            sh0 [N,1,3], shN [N,K-1,3] with K-1 in 0, 3, 8, 15, in the RDF (.ply) frame.
        version: 3 (quaternions as their smallest three components, 4 bytes) or 2 (x, y, z
            in 3 bytes, for readers older than version 3).

    Raises:
        VoxsplatError: no Gaussians, an SH degree above 3, a scene too wide for 24 bits, or
            another version.
    """
    if version not in VERSIONS:
        raise VoxsplatError(f".spz version {version}: write 3 or 2 (2 for older readers)")
    a = splat_arrays(splats)
    n, num_rest = a["means"].shape[0], a["shN"].shape[1]
    if n == 0:
        raise VoxsplatError("no Gaussians to write: the workspace's splats are empty")
    if num_rest not in _SH_DIM:
        raise VoxsplatError(f"SH with {num_rest + 1} coefficients per channel: .spz holds "
                            "degrees 0-3; export --format ply instead")
    means = a["means"].astype(np.float64) * _FLIP_P
    bits = fractional_bits(means)
    fixed = _round(means * 2 ** bits).astype(np.int64).reshape(-1) & 0xFFFFFF
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, fixed >> 16], 1).astype(np.uint8)
    alphas = _u8(255.0 / (1.0 + np.exp(-a["opacities"].astype(np.float64))))
    colors = _u8(a["sh0"].reshape(n, 3).astype(np.float64) * (COLOR_SCALE * 255) + 127.5)
    scales = _u8((a["scales"].astype(np.float64) + 10.0) * 16.0)
    quats = a["quats"].astype(np.float64)
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    quats = np.where(norm > 0, quats / np.where(norm > 0, norm, 1), [1.0, 0.0, 0.0, 0.0])
    xyzw = np.concatenate([quats[:, 1:] * _FLIP_P, quats[:, :1]], 1)
    rotations = _pack_smallest_three(xyzw) if version == 3 else _pack_first_three(xyzw)
    sections = [positions, alphas, colors, scales, rotations]
    if num_rest:
        sh = a["shN"] * _FLIP_SH[:num_rest, None].astype(np.float32)  # float32: 180 B each
        sections.append(np.concatenate([_quantize_sh(sh[:, :3], 5),
                                        _quantize_sh(sh[:, 3:], 4)], 1))
    header = _HEADER.pack(MAGIC, version, n, _SH_DIM[num_rest], bits, 0, 0)
    return header + b"".join(np.ascontiguousarray(s).tobytes() for s in sections)


def write_spz(path: str | os.PathLike, splats: Mapping[str, Tensor], version: int = VERSION) -> None:
    """Write splats as a ``.spz`` file of `version` (see `encode_spz`; atomically; gzip level 6
    as Niantic's zlib default, no timestamp, so equal splats give equal bytes)."""
    data = gzip.compress(encode_spz(splats, version), compresslevel=6, mtime=0)
    with atomic_open(path, "wb") as f:
        f.write(data)


def read_spz(path: str | os.PathLike) -> dict[str, Tensor]:
    """Decode a version-2 or -3 ``.spz`` into splat tensors in the RDF (.ply) frame, as
    Niantic's ``loadSpz`` does (alphas clamped half a step inside (0,1) so logits stay finite).

    Returns:
        means [N,3], scales [N,3], quats [N,4] (w,x,y,z), opacities [N], sh0 [N,1,3],
        shN [N,K-1,3]; float32 on the CPU.

    Raises:
        VoxsplatError: the file is missing, not gzip, not ``.spz`` or of another version.
    """
    try:
        with open(path, "rb") as f:
            data = gzip.decompress(f.read())
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: no such file; check the path to the .spz file") from None
    except PermissionError as e:
        raise VoxsplatError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    except (OSError, EOFError, zlib.error) as e:
        raise VoxsplatError(f"{path}: not a gzip stream ({e}); not a .spz file, or damaged or "
                            "truncated") from None
    if len(data) < _HEADER.size:
        raise VoxsplatError(f"{path}: {len(data)} bytes, shorter than the .spz header")
    magic, version, n, degree, bits, flags, _ = _HEADER.unpack_from(data)
    if magic != MAGIC or version not in VERSIONS or degree > 3:
        raise VoxsplatError(f"{path}: not a .spz file of version 2 or 3 with SH degree 0-3 "
                            f"(magic {magic:#x}, version {version}, SH degree {degree}); "
                            "convert it to .ply with Niantic's spz tools")
    if flags & _FLAG_EXTENSIONS:
        raise VoxsplatError(f"{path}: the .spz holds extension records, which voxsplat does "
                            "not read; convert it to .ply with Niantic's spz_to_ply")
    if flags & _FLAG_ANTIALIASED:  # trained through Mip-Splatting's 2D filter, which we lack
        warnings.warn(f"{path}: its Gaussians were trained with antialiasing (Mip-Splatting's "
                      f"filter), which voxsplat does not render: fine parts may look thicker",
                      stacklevel=2)
    num_rest = (degree + 1) ** 2 - 1
    sizes = [9, 1, 3, 3, 4 if version == 3 else 3, 3 * num_rest]
    needed = _HEADER.size + n * sum(sizes)
    if len(data) < needed:  # (bytes after the payload are ignored, as Niantic's loader does)
        raise VoxsplatError(f"{path}: {len(data)} bytes, where its header's {n} Gaussians of SH "
                            f"degree {degree} take {needed}; truncated or damaged")
    body = np.frombuffer(data, np.uint8, offset=_HEADER.size)
    sections, start = [], 0
    for size in sizes:
        sections.append(body[start:start + n * size].reshape(n, size).astype(np.int64))
        start += n * size
    positions, alphas, colors, scales, rotations, sh = sections
    fixed = (positions[:, 0::3] | (positions[:, 1::3] << 8) | (positions[:, 2::3] << 16))
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    xyzw = _unpack_smallest_three(rotations) if version == 3 else _unpack_first_three(rotations)
    alpha = np.clip(alphas[:, 0] / 255.0, 0.5 / 255, 1 - 0.5 / 255)
    out = {
        "means": fixed * 2.0 ** -bits * _FLIP_P,
        "scales": scales / 16.0 - 10.0,
        "quats": np.concatenate([xyzw[:, 3:], xyzw[:, :3] * _FLIP_P], 1),
        "opacities": np.log(alpha / (1 - alpha)),
        "sh0": ((colors / 255.0 - 0.5) / COLOR_SCALE).reshape(n, 1, 3),
        "shN": ((sh.reshape(n, num_rest, 3) - 128.0) / 128.0) * _FLIP_SH[:num_rest, None],
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in out.items()}
