"""Gaussians, points and meshes carried into the input's coordinate frame.

A workspace keeps its Gaussians in the *scene frame*: the input's coordinates after the
similarity ``world_from_input`` recorded in ``scene.json`` (SfM and COLMAP scenes are centred
and scaled so that every camera lies within radius 1; DTU's ``scale_mat`` applies; NeRF and
LLFF scenes keep their coordinates). Exports go back to the input's frame by default, so that
they line up with the user's COLMAP model, poses or other data.

A similarity ``new_from_old = [s M | t]`` (s > 0, M orthogonal, a reflection allowed) moves a
Gaussian's mean to ``s M x + t``, multiplies its scales by s, turns its axes by M and its
view-dependent colour with the directions: a degree-l block of SH coefficients maps through
the matrix of that rotation on the degree-l functions, fitted here in closed form from the
basis at sample directions (exact: each degree's span is closed under rotations and
reflections).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ...data.cameras import quat_from_rotmat, quat_to_rotmat
from ...data.errors import VoxsplatError
from ...render.sh import sh_bases

_F64 = torch.float64


def world_from_input(rec: Mapping) -> Tensor:
    """[4,4] float64 similarity from a workspace's input frame to its scene frame (scene.json)."""
    return torch.tensor(rec.get("world_from_input", np.eye(4).tolist()), dtype=_F64)


def input_from_world(rec: Mapping) -> Tensor:
    """[4,4] float64 similarity from a workspace's scene frame to its input's frame."""
    return torch.linalg.inv(world_from_input(rec))


def is_identity(new_from_old: Tensor, tol: float = 1e-9) -> bool:
    return bool((new_from_old.double() - torch.eye(4, dtype=_F64)).abs().max() <= tol)


def similarity_parts(new_from_old: Tensor, source: str | Path = "the workspace's scene.json"
                     ) -> tuple[float, Tensor, Tensor]:
    """(s, M [3,3], t [3]) of a similarity [s M | t] (float64), or a VoxsplatError naming
    `source` (where the transform came from)."""
    T = new_from_old.double()
    A = T[:3, :3]
    s = float(torch.linalg.det(A).abs() ** (1.0 / 3.0))
    if (not (math.isfinite(s) and s > 0) or not bool(torch.isfinite(T).all())
            or not torch.allclose(T[3], torch.tensor([0, 0, 0, 1.0], dtype=_F64))):
        raise VoxsplatError(f"{source}: world_from_input is not a similarity; re-run reconstruct, "
                            f"or export with --frame scene")
    M = A / s
    if (M @ M.T - torch.eye(3, dtype=_F64)).abs().max() > 1e-5:
        raise VoxsplatError(f"{source}: world_from_input shears or stretches the scene (not a "
                            f"similarity); export with --frame scene")
    return s, M, T[:3, 3]


def sh_transform(M: Tensor, degree: int) -> Tensor:
    """[K,K] (K = (degree+1)^2) block-diagonal map of SH coefficients under the orthogonal M.

    The colour seen along d before, sum_k c_k Y_k(d), is seen along M d after:
    c_new = B c with Y(M d) = A Y(d) per degree and B = inv(A)^T (= A for an orthonormal basis).
    """
    M = M.double()
    K = (degree + 1) ** 2
    B = torch.zeros(K, K, dtype=_F64)
    B[0, 0] = 1.0
    if degree == 0:
        return B
    g = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(256, 3, generator=g, dtype=_F64), dim=-1)
    Y_old = sh_bases(degree, dirs)  # [N,K]
    Y_new = sh_bases(degree, dirs @ M.T)  # Y(M d)
    for l in range(1, degree + 1):
        sl = slice(l * l, (l + 1) * (l + 1))
        At = torch.linalg.lstsq(Y_old[:, sl], Y_new[:, sl]).solution  # Y_new = Y_old A^T
        B[sl, sl] = torch.linalg.inv(At)  # inv(A)^T
    return B


def transform_splats(splats: Mapping[str, Tensor], new_from_old: Tensor) -> dict[str, Tensor]:
    """The Gaussians after the similarity `new_from_old` [4,4]; same keys, dtypes and devices.

    Args:
        splats: means [N,3], scales [N,3] (log std-devs), quats [N,4] (w,x,y,z), opacities
            [N], sh0 [N,1,3] and optionally shN [N,K-1,3].
    """
    if is_identity(new_from_old):
        return dict(splats)
    s, M, t = similarity_parts(new_from_old)
    out = dict(splats)
    means = splats["means"]
    dev, dt = means.device, means.dtype
    out["means"] = (means.double() @ (s * M).T.to(dev) + t.to(dev)).to(dt)
    out["scales"] = splats["scales"] + math.log(s)
    axes = M.to(dev) @ quat_to_rotmat(splats["quats"].double())  # [N,3,3]
    if torch.linalg.det(M) < 0:  # a reflection: the same ellipsoid with its third axis negated
        axes = axes * torch.tensor([1.0, 1.0, -1.0], dtype=_F64, device=dev)
    out["quats"] = quat_from_rotmat(axes).to(splats["quats"].dtype)
    shN = splats.get("shN")
    if shN is not None and shN.shape[1] > 0:
        degree = int(round(math.sqrt(shN.shape[1] + 1))) - 1
        if (degree + 1) ** 2 != shN.shape[1] + 1:
            raise VoxsplatError(f"shN has {shN.shape[1]} coefficients per channel, not (d+1)^2-1")
        B = sh_transform(M, degree)[1:, 1:].to(dev)
        out["shN"] = torch.einsum("ij,njc->nic", B, shN.double()).to(shN.dtype)
    return out


def transform_points(points: Tensor, new_from_old: Tensor) -> Tensor:
    """Points [N,3] after the similarity."""
    if is_identity(new_from_old):
        return points
    T = new_from_old.double().to(points.device)
    return (points.double() @ T[:3, :3].T + T[:3, 3]).to(points.dtype)


def transform_normals(normals: Tensor, new_from_old: Tensor) -> Tensor:
    """Unit normals [N,3] turned with the similarity (its scale removed)."""
    if is_identity(new_from_old):
        return normals
    _, M, _ = similarity_parts(new_from_old)
    return (normals.double() @ M.T.to(normals.device)).to(normals.dtype)


def frame_scale(new_from_old: Tensor) -> float:
    """How many units of the new frame one unit of the old one is."""
    return 1.0 if is_identity(new_from_old) else similarity_parts(new_from_old)[0]
