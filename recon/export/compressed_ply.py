"""SuperSplat's compressed PLY (``*.compressed.ply``): 16 bytes per Gaussian plus its SH.

The layout PlayCanvas defined for its viewers (SuperSplat, the PlayCanvas engine,
splat-transform); about 4x smaller than the standard PLY without SH, 14x with degree 3.
Gaussians are put in Morton order of their centres and cut into chunks of 256. Elements:

    chunk   [ceil(N/256)]  float32 min_x min_y min_z max_x max_y max_z,
                           min_scale_x .. max_scale_z (log std-devs, clamped to +-20),
                           min_r min_g min_b max_r max_g max_b (0.5 + C0 * sh0)
    vertex  [N]            uint32 packed_position (11/10/11 bits of the chunk's box),
                           packed_rotation (index of the largest |component| in 2 bits, the
                           other three of the sign-fixed unit (w,x,y,z) quaternion in 10 bits
                           each, over +-1/sqrt(2)), packed_scale (11/10/11 bits of the chunk's
                           log-scale range), packed_color (r, g, b in the chunk's range and
                           sigmoid(opacity), 8 bits each)
    sh      [N]            uint8 f_rest_0 .. (channel-major, as in the standard PLY) as
                           floor((v / 8 + 0.5) * 256), clipped to 0..255; only for SH degree
                           1-3, the degrees viewers read (9, 24 or 45 values)

`read_compressed_ply` decodes it as PlayCanvas's own reader does (a value v of b bits is
v / (2^b - 1) of its range; SH bytes decode to ((v + 0.5) / 256 - 0.5) * 8, with 0 and 255
pinned to -4 and 4).
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyParseError
from torch import Tensor

from ...data.atomic import atomic_open
from ...data.errors import VoxsplatError
from .ply import read_ply_elements, splat_arrays
from .splat import SH_C0

CHUNK = 256
"""Gaussians per chunk (fixed by the format: readers assume it)."""
_CHUNK_FIELDS = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                 "min_scale_x", "min_scale_y", "min_scale_z",
                 "max_scale_x", "max_scale_y", "max_scale_z",
                 "min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
_VERTEX_FIELDS = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]
_SH_COUNTS = (9, 24, 45)  # f_rest values of SH degrees 1, 2, 3
_LOG_SCALE_LIMIT = 20.0


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices that sort `means [N,3]` along a 3D Morton (Z-order) curve of 10 bits per axis
    over their bounding box, so that each chunk of 256 is spatially compact."""
    lo, hi = means.min(0), means.max(0)
    extent = np.where(hi > lo, hi - lo, 1.0)
    cells = np.clip(((means - lo) / extent * 1024).astype(np.int64), 0, 1023)
    code = np.zeros(len(means), np.int64)
    for bit in range(10):
        for axis in range(3):
            code |= ((cells[:, axis] >> bit) & 1) << (3 * bit + axis)
    return np.argsort(code, kind="stable")


def _unorm(t: np.ndarray, bits: int) -> np.ndarray:
    """[0,1] -> the nearest of 2^bits levels, as an integer."""
    top = (1 << bits) - 1
    return np.clip(np.floor(t * top + 0.5), 0, top).astype(np.uint32)


def _chunk_ranges(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-chunk (min [C,D], max [C,D]) of `values [N,D]` and each value's place in its
    chunk's range, in [0,1] (0 where the range is empty)."""
    C = -(-n // CHUNK)
    padded = np.concatenate([values, np.repeat(values[-1:], C * CHUNK - n, 0)])  # no new extremes
    blocks = padded.reshape(C, CHUNK, -1)
    lo, hi = blocks.min(1), blocks.max(1)
    span = hi - lo
    t = np.divide(blocks - lo[:, None], span[:, None], out=np.zeros_like(blocks),
                  where=span[:, None] > 0)
    return lo, hi, t.reshape(C * CHUNK, -1)[:n]


def _pack_111011(t: np.ndarray) -> np.ndarray:
    return (_unorm(t[:, 0], 11) << 21) | (_unorm(t[:, 1], 10) << 11) | _unorm(t[:, 2], 11)


def _pack_rotation(quats: np.ndarray) -> np.ndarray:
    """Smallest-three encoding of (w,x,y,z) quaternions [N,4] (see the module doc)."""
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    q = np.where(norm > 0, quats / np.where(norm > 0, norm, 1), [1.0, 0.0, 0.0, 0.0])
    largest = np.abs(q).argmax(1)
    q = q * np.where(q[np.arange(len(q)), largest] < 0, -1.0, 1.0)[:, None]
    rest = q[np.arange(len(q))[:, None], np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]]
    packed = _unorm(rest * (math.sqrt(2) * 0.5) + 0.5, 10)
    return (largest.astype(np.uint32) << 30) | (packed[:, 0] << 20) | (packed[:, 1] << 10) | packed[:, 2]


def compressed_ply_elements(splats: Mapping[str, Tensor]) -> list[PlyElement]:
    """The chunk, vertex and (for SH degree 1-3) sh elements of `splats` (see the module doc).

    Raises:
        VoxsplatError: there are no Gaussians, or their SH degree is above 3.
    """
    a = splat_arrays(splats)
    n, num_rest = a["means"].shape[0], a["shN"].shape[1]
    if n == 0:
        raise VoxsplatError("no Gaussians to write: the workspace's splats are empty")
    if num_rest and 3 * num_rest not in _SH_COUNTS:
        raise VoxsplatError(f"SH with {num_rest + 1} coefficients per channel: the compressed "
                            f"PLY holds degrees 0-3; export --format ply instead")
    order = morton_order(a["means"])
    means, quats = a["means"][order].astype(np.float64), a["quats"][order].astype(np.float64)
    log_scales = np.clip(a["scales"][order].astype(np.float64), -_LOG_SCALE_LIMIT, _LOG_SCALE_LIMIT)
    colors = 0.5 + SH_C0 * a["sh0"][order].reshape(n, 3).astype(np.float64)
    alpha = 1.0 / (1.0 + np.exp(-a["opacities"][order].astype(np.float64)))
    pos_lo, pos_hi, pos_t = _chunk_ranges(means, n)
    scale_lo, scale_hi, scale_t = _chunk_ranges(log_scales, n)
    color_lo, color_hi, color_t = _chunk_ranges(colors, n)
    chunk = np.concatenate([pos_lo, pos_hi, scale_lo, scale_hi, color_lo, color_hi], 1)
    chunk_table = np.ascontiguousarray(chunk, "<f4").view(
        np.dtype([(f, "<f4") for f in _CHUNK_FIELDS])).reshape(-1)
    color = ((_unorm(color_t[:, 0], 8) << 24) | (_unorm(color_t[:, 1], 8) << 16)
             | (_unorm(color_t[:, 2], 8) << 8) | _unorm(alpha, 8))
    vertex = np.stack([_pack_111011(pos_t), _pack_rotation(quats), _pack_111011(scale_t), color], 1)
    vertex_table = np.ascontiguousarray(vertex, "<u4").view(
        np.dtype([(f, "<u4") for f in _VERTEX_FIELDS])).reshape(-1)
    elements = [PlyElement.describe(chunk_table, "chunk"), PlyElement.describe(vertex_table, "vertex")]
    if num_rest:
        rest = a["shN"][order].transpose(0, 2, 1).reshape(n, 3 * num_rest).astype(np.float64)
        codes = np.clip(np.floor((rest / 8 + 0.5) * 256), 0, 255).astype(np.uint8)
        sh_table = np.ascontiguousarray(codes).view(
            np.dtype([(f"f_rest_{i}", "u1") for i in range(3 * num_rest)])).reshape(-1)
        elements.append(PlyElement.describe(sh_table, "sh"))
    return elements


def write_compressed_ply(path: str | os.PathLike, splats: Mapping[str, Tensor]) -> None:
    """Write splats as a SuperSplat compressed PLY (atomically; name it ``*.compressed.ply``,
    as viewers expect)."""
    elements = compressed_ply_elements(splats)
    with atomic_open(path, "wb") as f:
        PlyData(elements, text=False, byte_order="<").write(f)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1 - t) + hi * t


def _unpack(packed: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((packed >> shift) & ((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


_CHUNK_GEOMETRY_FIELDS = tuple(f"{m}_{a}" for m in ("min", "max") for a in "xyz") + tuple(
    f"{m}_scale_{a}" for m in ("min", "max") for a in "xyz")
_CHUNK_COLOUR_FIELDS = tuple(f"{m}_{c}" for m in ("min", "max") for c in "rgb")
_PACKED_FIELDS = ("packed_position", "packed_rotation", "packed_scale", "packed_color")


def _check_layout(path, chunk: np.ndarray, vertex: np.ndarray, sh: np.ndarray | None) -> bool:
    """Raise a VoxsplatError naming what a compressed PLY lacks (as splat-transform checks
    it); returns whether its chunks hold a colour range (older files have 12 fields, not 18)."""
    def bad(what: str) -> VoxsplatError:
        return VoxsplatError(f"{path}: not a readable compressed PLY ({what}); damaged, or "
                             "not written as SuperSplat writes it: export it again, or give "
                             "the uncompressed .ply")
    names = set(chunk.dtype.names or ())
    missing = [f for f in _CHUNK_GEOMETRY_FIELDS if f not in names]
    if missing:
        raise bad(f"its chunk element lacks {', '.join(missing)}")
    colour = [f for f in _CHUNK_COLOUR_FIELDS if f in names]
    if colour and len(colour) < len(_CHUNK_COLOUR_FIELDS):
        raise bad(f"its chunk element has {', '.join(colour)} but not the whole colour range")
    for f in _PACKED_FIELDS:
        if f not in (vertex.dtype.names or ()):
            raise bad(f"its vertex element lacks {f}")
        if vertex.dtype[f].kind != "u":
            raise bad(f"{f} is {vertex.dtype[f]}, not an unsigned integer")
    if len(chunk) != -(-len(vertex) // CHUNK):
        raise bad(f"{len(chunk)} chunks for {len(vertex)} Gaussians, not one per {CHUNK}")
    if sh is not None:
        k = len(sh.dtype.names or ())
        if k not in (9, 24, 45) or set(sh.dtype.names) != {f"f_rest_{i}" for i in range(k)}:
            raise bad(f"its sh element has {k} properties, not f_rest_0.. of 9, 24 or 45")
        if len(sh) != len(vertex):
            raise bad(f"{len(sh)} sh rows for {len(vertex)} Gaussians")
    return bool(colour)


def read_compressed_ply(path: str | os.PathLike) -> dict[str, Tensor]:
    """Decode a compressed PLY into splat tensors (means, scales, quats, opacities, sh0, shN;
    float32 on the CPU), in the file's (Morton) order.

    Raises:
        VoxsplatError: the file is missing, unreadable or not a compressed PLY.
    """
    try:
        elements = read_ply_elements(path)
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: no such file") from None
    except (OSError, PlyParseError, ValueError) as e:
        raise VoxsplatError(f"{path}: not a readable PLY file ({e})") from None
    if "chunk" not in elements or "vertex" not in elements:
        raise VoxsplatError(f"{path}: not a compressed PLY (no chunk and vertex elements)")
    chunk, vertex = elements["chunk"], elements["vertex"]
    colour_range = _check_layout(path, chunk, vertex, elements.get("sh"))
    n = len(vertex)
    ci = np.arange(n) // CHUNK
    col = lambda *fields: np.stack([chunk[f].astype(np.float64)[ci] for f in fields], 1)
    bits111011 = lambda p: np.stack([_unpack(p, 21, 11), _unpack(p, 11, 10), _unpack(p, 0, 11)], 1)
    means = _lerp(col("min_x", "min_y", "min_z"), col("max_x", "max_y", "max_z"),
                  bits111011(vertex["packed_position"]))
    scales = _lerp(col("min_scale_x", "min_scale_y", "min_scale_z"),
                   col("max_scale_x", "max_scale_y", "max_scale_z"), bits111011(vertex["packed_scale"]))
    packed_color = vertex["packed_color"]
    rgb_t = np.stack([_unpack(packed_color, 24, 8), _unpack(packed_color, 16, 8),
                      _unpack(packed_color, 8, 8)], 1)
    rgb = (_lerp(col("min_r", "min_g", "min_b"), col("max_r", "max_g", "max_b"), rgb_t)
           if colour_range else rgb_t)  # older files: colours packed in 0..1 directly
    alpha = np.clip(_unpack(packed_color, 0, 8), 1e-6, 1 - 1e-6)
    rot = vertex["packed_rotation"]
    rest = (np.stack([_unpack(rot, 20, 10), _unpack(rot, 10, 10), _unpack(rot, 0, 10)], 1)
            - 0.5) / (math.sqrt(2) * 0.5)
    largest = (rot >> 30).astype(np.int64)
    quats = np.zeros((n, 4))
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    quats[np.arange(n)[:, None], others] = rest
    quats[np.arange(n), largest] = np.sqrt(np.clip(1 - (rest ** 2).sum(1), 0, None))
    shN = np.zeros((n, 0, 3))
    if "sh" in elements:
        codes = elements["sh"]
        k = len(codes.dtype.names)
        v = np.stack([codes[f"f_rest_{i}"] for i in range(k)], 1).astype(np.float64)
        unit = np.where(v == 0, 0.0, np.where(v == 255, 1.0, (v + 0.5) / 256))
        shN = ((unit - 0.5) * 8).reshape(n, 3, k // 3).transpose(0, 2, 1)
    out = {"means": means, "scales": scales, "quats": quats,
           "opacities": np.log(alpha / (1 - alpha)), "sh0": ((rgb - 0.5) / SH_C0).reshape(n, 1, 3),
           "shN": shN}
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in out.items()}
