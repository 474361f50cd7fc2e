"""The standard 3DGS (INRIA) Gaussian-splat PLY, as SuperSplat and other viewers read it.

One binary little-endian ``vertex`` element, all properties float32, in this order::

    x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 ... f_rest_{3(K-1)-1}
    opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3

Values are stored raw (not activated): opacity is a logit, scales are log std-devs, rot is an
unnormalized (w,x,y,z) quaternion. ``f_rest`` is channel-major: every higher-order coefficient
of R, then of G, then of B. Normals are written as zeros and ignored on reading.

Splats are a mapping of tensors (like gsplat's ParameterDict): ``means [N,3]``, ``scales [N,3]``,
``quats [N,4]``, ``opacities [N]``, ``sh0 [N,1,3]`` and ``shN [N,K-1,3]`` (K = (deg+1)^2;
optional on writing, [N,0,3] when absent).
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

_REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")


def ply_property_names(num_rest: int) -> list[str]:
    """The standard property names, in file order.

    Args:
        num_rest: K-1, the number of higher-order SH coefficients per colour channel.

    Returns:
        The 17 + 3*num_rest property names of the ``vertex`` element.
    """
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * num_rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def splat_arrays(splats: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Check splat shapes and return detached float32 numpy copies on the CPU.

    Args:
        splats: means [N,3], scales [N,3], quats [N,4], opacities [N], sh0 [N,1,3],
            optional shN [N,K-1,3].

    Returns:
        The same keys as float32 arrays, with shN [N,0,3] filled in when absent.

    Raises:
        ValueError: a key is missing or a shape is wrong.
    """
    missing = [k for k in ("means", "scales", "quats", "opacities", "sh0") if k not in splats]
    if missing:
        raise ValueError(f"splats are missing {', '.join(missing)} (have: {sorted(splats)})")
    out = {k: splats[k].detach().to("cpu", torch.float32).numpy() for k in
           ("means", "scales", "quats", "opacities", "sh0")}
    n = out["means"].shape[0]
    sh_n = splats.get("shN")
    out["shN"] = (np.zeros((n, 0, 3), np.float32) if sh_n is None
                  else sh_n.detach().to("cpu", torch.float32).numpy())
    num_rest = out["shN"].shape[1] if out["shN"].ndim == 3 else "K-1"
    expected = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,),
                "sh0": (n, 1, 3), "shN": (n, num_rest, 3)}
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise ValueError(f"splats['{key}'] has shape {list(out[key].shape)}, expected "
                             f"[{', '.join(map(str, shape))}] for N={n} Gaussians")
    return out


def write_ply(path: str | os.PathLike, splats: Mapping[str, Tensor]) -> None:
    """Write splats as a standard 3DGS binary little-endian PLY (atomically).

    Args:
        path: output ``.ply`` file; written through a temp file, so an interrupted write
            leaves no partial file.
        splats: the Gaussian parameters (see the module docstring).
    """
    a = splat_arrays(splats)
    n, num_rest = a["means"].shape[0], a["shN"].shape[1]
    columns = [
        a["means"],
        np.zeros((n, 3), np.float32),
        a["sh0"].reshape(n, 3),
        a["shN"].transpose(0, 2, 1).reshape(n, 3 * num_rest),
        a["opacities"].reshape(n, 1),
        a["scales"],
        a["quats"],
    ]
    names = ply_property_names(num_rest)
    dtype = np.dtype([(name, "<f4") for name in names])
    table = np.ascontiguousarray(np.concatenate(columns, axis=1), dtype="<f4")
    vertex = PlyElement.describe(table.view(dtype).reshape(n), "vertex")
    with atomic_open(path, "wb") as f:
        PlyData([vertex], text=False, byte_order="<").write(f)


def read_ply_elements(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every element of a PLY file as an in-memory structured array, by element name.

    plyfile's unmapped reader parses a binary file one value at a time in Python (54 s for
    810k Gaussians of SH degree 3); mapping the file copy-on-write and copying each element
    takes well under a second, checks the file's length the same way, and leaves no map open.

    Raises:
        OSError, plyfile.PlyParseError, ValueError: as ``PlyData.read``.
    """
    with open(path, "rb") as f:
        ply = PlyData.read(f, mmap="c")
        return {el.name: np.array(el.data) for el in ply.elements}


def _read_vertex(path: str | os.PathLike) -> np.ndarray:
    """Parse a PLY file and return its ``vertex`` element's structured array."""
    try:
        elements = read_ply_elements(path)
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: no such file; check the path to the splat PLY") from None
    except OSError as e:
        raise VoxsplatError(f"{path}: cannot read ({e.strerror}); check the path and "
                            "permissions") from None
    except (PlyParseError, ValueError) as e:
        raise VoxsplatError(f"{path}: not a readable PLY file ({e}); the file may be truncated "
                            "or corrupt, re-export it") from None
    if "vertex" not in elements:
        raise VoxsplatError(f"{path}: PLY has no 'vertex' element; expected a 3DGS splat file "
                            "as written by 3DGS, gsplat or voxsplat export")
    return elements["vertex"]


def _num_rest(path: str | os.PathLike, names: set[str]) -> int:
    """K-1 from the ``f_rest_*`` properties, checking they are f_rest_0..f_rest_{3(K-1)-1}
    with K = (degree + 1)^2."""
    rest = [n for n in names if n.startswith("f_rest_")]
    expected = {f"f_rest_{i}" for i in range(len(rest))}
    degree = math.isqrt(len(rest) // 3 + 1) - 1
    if set(rest) != expected or len(rest) != 3 * ((degree + 1) ** 2 - 1):
        raise VoxsplatError(f"{path}: has {len(rest)} f_rest_* properties, expected "
                            "f_rest_0..f_rest_{3(K-1)-1} for K = (degree + 1)^2 SH "
                            "coefficients (9, 24 or 45 for degrees 1-3); re-export the splats")
    return len(rest) // 3


def read_ply(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a standard 3DGS PLY back into splat tensors.

    The SH degree is inferred from the number of ``f_rest_*`` properties; normals and extra
    properties are ignored; property order does not matter. float32 files round-trip bit-exactly.

    Args:
        path: a 3DGS splat ``.ply``.

    Returns:
        means [N,3], scales [N,3], quats [N,4], opacities [N], sh0 [N,1,3], shN [N,K-1,3],
        all float32 on the CPU.

    Raises:
        VoxsplatError: the file is missing, unreadable, truncated, or lacks a 3DGS property.
    """
    vertex = _read_vertex(path)
    names = set(vertex.dtype.names or ())
    missing = [p for p in _REQUIRED if p not in names]
    if missing:
        raise VoxsplatError(f"{path}: not a 3DGS splat PLY: the vertex element has no "
                            f"'{missing[0]}' property (missing: {', '.join(missing)}); "
                            "export Gaussians, not a point cloud or mesh")
    num_rest = _num_rest(path, names)
    n = len(vertex)

    def cols(props: list[str]) -> np.ndarray:
        out = np.empty((n, len(props)), np.float32)
        for i, p in enumerate(props):
            out[:, i] = vertex[p]
        return out

    rest = cols([f"f_rest_{i}" for i in range(3 * num_rest)])
    arrays = {
        "means": cols(["x", "y", "z"]),
        "scales": cols(["scale_0", "scale_1", "scale_2"]),
        "quats": cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
        "opacities": cols(["opacity"]).reshape(n),
        "sh0": cols(["f_dc_0", "f_dc_1", "f_dc_2"]).reshape(n, 1, 3),
        "shN": np.ascontiguousarray(rest.reshape(n, 3, num_rest).transpose(0, 2, 1)),
    }
    if num_rest > MAX_REST:  # degree 4 (gsplat trains any degree): bands 0-3 as renderers use
        import warnings
        warnings.warn(f"{path}: SH degree {math.isqrt(num_rest + 1) - 1}; its bands above 3 "
                      f"are left out")
        arrays["shN"] = np.ascontiguousarray(arrays["shN"][:, :MAX_REST])
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


MAX_REST = 15
"""Spherical-harmonic coefficients per channel beyond the DC that voxsplat renders (degree 3)."""
