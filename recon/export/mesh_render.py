"""A small pure-PyTorch triangle rasterizer for checking meshes against images (CPU or CUDA).

Each triangle is expanded into the pixels of its screen bounding box, tested with edge
functions at pixel centres (half-integers, as everywhere in voxsplat), and resolved with a
z-buffer (``scatter_reduce`` of packed depth/face keys). Enough for silhouettes and flat-lit
previews of reconstruction meshes; triangles with a vertex behind the camera are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

_EMPTY = torch.iinfo(torch.int64).max


@dataclass
class MeshRender:
    """One view of a mesh.

    Attributes:
        alpha: [H,W] bool, pixels covered by some triangle (the silhouette).
        depth: [H,W] camera z of the nearest triangle (0 where empty).
        color: [H,W,3] interpolated vertex colour of the nearest triangle (0 where empty).
        face: [H,W] int64 index of the nearest triangle (-1 where empty).
    """

    alpha: Tensor
    depth: Tensor
    color: Tensor
    face: Tensor


def _screen(verts: Tensor, cam_from_world: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel positions [V,2] and camera z [V] of world vertices [V,3]."""
    p = verts @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    z = p[:, 2]
    uv = p[:, :2] / z.clamp_min(1e-9)[:, None] * K[[0, 1], [0, 1]] + K[:2, 2]
    return uv, z


def _candidates(tri: Tensor, W: int, H: int, budget: int):
    """Yield (face ids [N], pixel x [N], pixel y [N]) of the bounding-box pixels of triangles
    `tri [F,3,2]` (screen space), in groups of about `budget` pixels."""
    x0 = torch.ceil(tri[..., 0].min(1).values - 0.5).clamp(0, W).long()
    x1 = torch.floor(tri[..., 0].max(1).values - 0.5).clamp(-1, W - 1).long()
    y0 = torch.ceil(tri[..., 1].min(1).values - 0.5).clamp(0, H).long()
    y1 = torch.floor(tri[..., 1].max(1).values - 0.5).clamp(-1, H - 1).long()
    w, h = (x1 - x0 + 1).clamp_min(0), (y1 - y0 + 1).clamp_min(0)
    count = w * h
    ends = torch.cumsum(count, 0).cpu()
    start = 0
    while start < len(count):
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(torch.searchsorted(ends, base + budget, right=True)))
        ids = torch.arange(start, stop, device=tri.device)
        per = count[start:stop]
        face = torch.repeat_interleave(ids, per)
        local = torch.arange(int(per.sum()), device=tri.device) - torch.repeat_interleave(
            torch.cumsum(per, 0) - per, per)
        yield face, x0[face] + local % w[face].clamp_min(1), y0[face] + local // w[face].clamp_min(1)
        start = stop


def _barycentric(tri: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """[N,3] barycentric weights of pixel centres (px+0.5, py+0.5) in triangles `tri [N,3,2]`."""
    p = torch.stack([px + 0.5, py + 0.5], -1).to(tri.dtype)
    a, b, c = tri.unbind(1)

    def edge(u: Tensor, v: Tensor, q: Tensor) -> Tensor:
        return (v[:, 0] - u[:, 0]) * (q[:, 1] - u[:, 1]) - (v[:, 1] - u[:, 1]) * (q[:, 0] - u[:, 0])

    area = edge(a, b, c)
    lam = torch.stack([edge(b, c, p), edge(c, a, p), edge(a, b, p)], -1)
    return lam / torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)[:, None]


@torch.no_grad()
def rasterize_mesh(verts: Tensor, faces: Tensor, cam_from_world: Tensor, K: Tensor, width: int,
                   height: int, colors: Optional[Tensor] = None, budget: int = 1 << 23) -> MeshRender:
    """Render a triangle mesh into one pinhole camera (nearest surface wins).

    Args:
        verts: [V,3] world positions.
        faces: [F,3] int64 vertex indices (either winding; no back-face culling).
        cam_from_world: [4,4] OpenCV world-to-camera transform.
        K: [3,3] intrinsics (pixel centres at half-integers).
        width, height: image size W, H.
        colors: optional [V,3] vertex colours in [0,1].
        budget: candidate pixels processed at once (bounds memory).

    Returns:
        MeshRender with [H,W] maps on the vertices' device.
    """
    W, H, dev = int(width), int(height), verts.device
    uv, z = _screen(verts.float(), cam_from_world.float(), K.float())
    faces = faces[(z[faces] > 1e-6).all(1)]
    tri = uv[faces]  # [F,3,2]
    zbuf = torch.full((H * W,), _EMPTY, dtype=torch.int64, device=dev)
    for face, px, py in _candidates(tri, W, H, budget):
        lam = _barycentric(tri[face], px, py)
        inside = (lam >= 0).all(1)
        face, px, py, lam = face[inside], px[inside], py[inside], lam[inside]
        depth = 1.0 / (lam / z[faces[face]]).sum(1)  # perspective-correct z
        key = (depth.float().view(torch.int32).long() << 32) | face
        zbuf.scatter_reduce_(0, py * W + px, key, "amin")
    hit = zbuf != _EMPTY
    face = torch.where(hit, zbuf & 0xFFFFFFFF, -1)
    depth = torch.where(hit, (zbuf >> 32).int().view(torch.float32), 0.0)
    color = torch.zeros(H * W, 3, device=dev)
    if colors is not None and bool(hit.any()):
        pix = hit.nonzero()[:, 0]
        lam = _barycentric(tri[face[pix]], pix % W, pix // W).clamp_min(0)
        lam = lam / lam.sum(1, keepdim=True).clamp_min(1e-12)
        color[pix] = (lam[:, :, None] * colors.float()[faces[face[pix]]]).sum(1)
    return MeshRender(hit.view(H, W), depth.view(H, W), color.view(H, W, 3), face.view(H, W))
