"""Truncated signed distance fusion of depth maps on a sparse voxel grid (pure PyTorch).

Only blocks of ``BLOCK``^3 voxels that some back-projected depth sample comes within the
truncation distance of are allocated: block coordinates are packed into int64 keys and made
unique by sorting (``torch.unique``). Every allocated voxel is then updated against every view
with the projective SDF (the pixel's depth minus the voxel's camera z). The same code runs on
CUDA tensors (the fast path: a handful of element-wise kernels per view, no host syncs) and on
the CPU.

Voxel ``i`` (integer index [3]) sits at ``i * voxel_size`` in the world; block ``b`` holds voxels
``b * BLOCK + [0, BLOCK)^3`` (x-major). TSDF values are normalized by the truncation distance
(in [-1, 1], positive in front of the surface) and kept as sums with their weights. Marching
cubes (scikit-image) runs on dense chunks of blocks that overlap by one voxel layer, so the
vertices on chunk borders coincide exactly and merge: no seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ...data.errors import VoxsplatError

BLOCK = 8
"""Voxels per block side."""
CHUNK = 16
"""Blocks per side of a dense marching-cubes chunk."""
_OFFSET = 1 << 20  # block coordinates must lie in [-2^20, 2^20)
_BITS = 21


@dataclass
class SparseTSDF:
    """The fused volume: B allocated blocks of BLOCK^3 voxels (typed state, updated in place).

    Attributes:
        voxel_size: voxel edge length in world units.
        trunc: truncation distance in world units.
        block_coords: [B,3] int64 block indices, sorted by their packed key.
        tsdf_sum: [B,BLOCK^3] float32 sum of the observed TSDF / trunc values.
        weight: [B,BLOCK^3] float32 number of observations.
    """

    voxel_size: float
    trunc: float
    block_coords: Tensor
    tsdf_sum: Tensor
    weight: Tensor

    @property
    def n_blocks(self) -> int:
        return int(self.block_coords.shape[0])

    def tsdf(self) -> Tensor:
        """[B,BLOCK^3] mean TSDF / trunc, +1 where unobserved."""
        return torch.where(self.weight > 0, self.tsdf_sum / self.weight.clamp_min(1.0), 1.0)


def pack_keys(coords: Tensor) -> Tensor:
    """[N] int64 keys of integer coordinates [N,3] in [-2^20, 2^20); sorting them is x-major."""
    c = coords.long() + _OFFSET
    return (c[:, 0] << (2 * _BITS)) | (c[:, 1] << _BITS) | c[:, 2]


def unpack_keys(keys: Tensor) -> Tensor:
    """[N,3] int64 coordinates of packed keys [N] (inverse of ``pack_keys``)."""
    mask = (1 << _BITS) - 1
    return torch.stack([keys >> (2 * _BITS), (keys >> _BITS) & mask, keys & mask], -1) - _OFFSET


def _local_offsets(device) -> Tensor:
    """[BLOCK^3,3] int64 voxel offsets inside a block, x-major (the tsdf layout)."""
    r = torch.arange(BLOCK, device=device)
    return torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)


def backproject(depth: Tensor, cam_from_world: Tensor, K: Tensor) -> Tensor:
    """World points [H,W,3] of the pixel centres of `depth [H,W]` (camera z) in one camera.

    Args:
        depth: [H,W] camera-space z per pixel.
        cam_from_world: [4,4] OpenCV world-to-camera transform.
        K: [3,3] intrinsics, pixel centres at half-integers.
    """
    H, W = depth.shape
    v, u = torch.meshgrid(torch.arange(H, device=depth.device, dtype=depth.dtype) + 0.5,
                          torch.arange(W, device=depth.device, dtype=depth.dtype) + 0.5, indexing="ij")
    p_cam = torch.stack([(u - K[0, 2]) / K[0, 0] * depth, (v - K[1, 2]) / K[1, 1] * depth, depth], -1)
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    return (p_cam - t) @ R  # R^T (p - t), row-vector form


def touched_blocks(depths: Tensor, surface: Tensor, cam_from_world: Tensor, Ks: Tensor,
                   voxel_size: float, trunc: float, max_blocks: int) -> Tensor:
    """Sorted unique block coordinates [B,3] within `trunc` of any surface depth sample.

    Samples are first thinned to one per voxel; then the blocks of the corners of a cube of
    half-size `trunc` around each (corners at most one block apart) are kept.

    Args:
        depths: [C,H,W] camera z per pixel.
        surface: [C,H,W] bool, pixels whose depth is a surface sample.
        cam_from_world: [C,4,4]; Ks: [C,3,3].
        voxel_size, trunc: world units.
        max_blocks: raise a VoxsplatError past this many blocks (memory guard).
    """
    vox = [torch.unique(pack_keys(torch.round(
        backproject(depths[c], cam_from_world[c], Ks[c])[surface[c]] / voxel_size)))
        for c in range(depths.shape[0])]
    vox = torch.unique(torch.cat(vox)) if vox else torch.zeros(0, dtype=torch.long)
    extent = BLOCK * voxel_size
    n = int(np.ceil(2 * trunc / extent)) + 1  # corner samples per axis cover the trunc cube
    steps = torch.linspace(-trunc, trunc, n, device=depths.device)
    corners = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    keys = []
    for part in vox.split(1 << 20):
        centres = unpack_keys(part).to(depths.dtype) * voxel_size
        blocks = torch.floor((centres[:, None] + corners) / extent).reshape(-1, 3)
        keys.append(torch.unique(pack_keys(blocks)))
    keys = torch.unique(torch.cat(keys)) if keys else vox
    if keys.numel() > max_blocks:
        raise VoxsplatError(f"TSDF: {keys.numel()} blocks (more than {max_blocks}) at this "
                            f"voxel size; use a larger --voxel-size")
    return unpack_keys(keys)


def empty_volume(block_coords: Tensor, voxel_size: float, trunc: float) -> SparseTSDF:
    """A volume with the given blocks [B,3] allocated and nothing observed yet."""
    B, dev = block_coords.shape[0], block_coords.device
    return SparseTSDF(voxel_size, trunc, block_coords, torch.zeros(B, BLOCK ** 3, device=dev),
                      torch.zeros(B, BLOCK ** 3, device=dev))


def pixel_codes(depths: Tensor, surface: Tensor, free: Tensor) -> Tensor:
    """[C,H*W+1] per-pixel integration codes: depth on surface pixels, +inf on free ones,
    -inf elsewhere; the extra last entry (-inf) is where voxels outside the image look.

    With them one gather and one subtraction give every case: sdf = code - z is the SDF on
    surfaces, +inf (carve) on free pixels and -inf (no update) elsewhere.
    """
    inf = torch.tensor(float("inf"), device=depths.device, dtype=depths.dtype)
    code = torch.where(surface, depths, torch.where(free, inf, -inf)).reshape(depths.shape[0], -1)
    return torch.cat([code, (-inf).expand(code.shape[0], 1)], 1)


def _integrate_view(vol: SparseTSDF, sl: slice, origins: Tensor, local: Tensor, code: Tensor,
                    cam_from_world: Tensor, K: Tensor, H: int, W: int) -> None:
    """Update blocks `sl` (first voxels at `origins [b,3]`, offsets `local [BLOCK^3,3]`, world
    units) with one view given its `pixel_codes` `code [H*W+1]`; see ``integrate``.

    Camera coordinates are the blocks' plus the rotated offsets (broadcast adds instead of an
    [N,3] x [3,3] product, which is slow on CPUs).
    """
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    base, rot = origins @ R.T + t, local @ R.T
    x, y, z = ((base[:, None, k] + rot[None, :, k]).reshape(-1) for k in range(3))
    inv = z.clamp_min(1e-6).reciprocal_()
    u = x.mul_(inv).mul_(K[0, 0]).add_(K[0, 2]).floor_()
    v = y.mul_(inv).mul_(K[1, 1]).add_(K[1, 2]).floor_()
    inside = (z > 1e-6) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    pix = torch.where(inside, v.mul_(W).add_(u), H * W).long()
    sdf = code[pix].sub_(z)
    upd = sdf > -vol.trunc
    vol.tsdf_sum[sl].view(-1).add_(sdf.div_(vol.trunc).clamp_(max=1.0).masked_fill_(~upd, 0.0))
    vol.weight[sl].view(-1).add_(upd)


@torch.no_grad()
def integrate(vol: SparseTSDF, depths: Tensor, surface: Tensor, free: Tensor,
              cam_from_world: Tensor, Ks: Tensor, blocks_per_chunk: Optional[int] = None) -> None:
    """Fuse C views into `vol` in place (each observation weighs 1).

    A voxel in front of a surface pixel observes min(1, sdf/trunc), one up to `trunc` behind
    it observes sdf/trunc, one further behind is occluded (no update); sdf is the pixel's depth
    minus the voxel's camera z. A voxel that projects onto a `free` pixel observes +1 (carved).

    Args:
        vol: the volume to update.
        depths: [C,H,W] camera z per pixel.
        surface: [C,H,W] bool, pixels whose depth is a surface.
        free: [C,H,W] bool, pixels that see empty space (background / outside the mask).
        cam_from_world: [C,4,4]; Ks: [C,3,3].
        blocks_per_chunk: blocks processed at once (bounds temporary memory; default 4096 on
            the CPU, cache-sized, and 32768 on CUDA, about 1 GB of temporaries).
    """
    if blocks_per_chunk is None:
        blocks_per_chunk = 32768 if depths.is_cuda else 4096
    local = _local_offsets(depths.device).to(depths.dtype) * vol.voxel_size
    C, H, W = depths.shape
    codes = pixel_codes(depths, surface, free & ~surface)
    for start in range(0, vol.n_blocks, blocks_per_chunk):
        sl = slice(start, min(start + blocks_per_chunk, vol.n_blocks))
        origins = (vol.block_coords[sl] * BLOCK).to(depths.dtype) * vol.voxel_size
        for c in range(C):
            _integrate_view(vol, sl, origins, local, codes[c], cam_from_world[c], Ks[c], H, W)


@torch.no_grad()
def fuse_depth_maps(depths: Tensor, cam_from_world: Tensor, Ks: Tensor, voxel_size: float,
                    trunc: float, surface: Optional[Tensor] = None, free: Optional[Tensor] = None,
                    max_blocks: int = 2_000_000) -> SparseTSDF:
    """Allocate the blocks the depth maps touch and integrate every view.

    Args:
        depths: [C,H,W] camera z per pixel (0 or non-finite = no depth).
        cam_from_world: [C,4,4] OpenCV; Ks: [C,3,3].
        voxel_size: voxel edge, world units (> 0).
        trunc: truncation distance, world units (> 0; usually 3-5 voxels).
        surface: [C,H,W] bool, pixels to integrate as surface (default: finite depth > 0).
        free: [C,H,W] bool, pixels to carve as free space (default: none).
        max_blocks: memory guard on the number of allocated blocks (8 KB each).

    Returns:
        The fused SparseTSDF on the depths' device.
    """
    if not voxel_size > 0 or not trunc > 0:
        raise VoxsplatError(f"TSDF: voxel size ({voxel_size}) and truncation ({trunc}) must be > 0")
    valid = torch.isfinite(depths) & (depths > 0)
    surface = valid if surface is None else surface & valid
    free = torch.zeros_like(surface) if free is None else free & ~surface
    depths = torch.where(valid, depths, torch.zeros_like(depths))
    cam_from_world, Ks = cam_from_world.to(depths), Ks.to(depths)
    blocks = touched_blocks(depths, surface, cam_from_world, Ks, voxel_size, trunc, max_blocks)
    vol = empty_volume(blocks, voxel_size, trunc)
    integrate(vol, depths, surface, free, cam_from_world, Ks)
    return vol


def enclosed_blocks(block_coords: Tensor, max_cells: int = 1 << 26) -> Optional[tuple[Tensor, Tensor]]:
    """Unallocated blocks that allocated ones enclose (not connected to the outside).

    Returns:
        (lowest block coordinate [3] of the grid, enclosed flags [X,Y,Z] bool) on the CPU, or
        None when the blocks' bounding grid has more than `max_cells` cells.
    """
    from scipy import ndimage
    coords = block_coords.cpu()
    lo = coords.min(0).values - 1  # a margin of free cells around everything
    shape = (coords.max(0).values + 2 - lo).tolist()
    if math.prod(shape) > max_cells:
        return None
    allocated = torch.zeros(shape, dtype=torch.bool)
    allocated[tuple((coords - lo).T)] = True
    labels, _ = ndimage.label(~allocated.numpy())
    enclosed = torch.from_numpy((labels != labels[0, 0, 0]) & ~allocated.numpy())
    return lo, enclosed


def _dense_chunk(vol: SparseTSDF, chunk: Tensor, closed: Optional[tuple[Tensor, Tensor]] = None
                 ) -> tuple[Tensor, Tensor]:
    """Dense TSDF [S,S,S] and weight [S,S,S] of one chunk plus the first voxel layer of its
    +x/+y/+z neighbours, S = CHUNK * BLOCK + 1.

    Unallocated voxels read +1 (free), or with `closed` (see ``enclosed_blocks``) -1 inside
    enclosed blocks; with `closed`, allocated voxels nobody observed read -1 (hidden inside).
    """
    rel = vol.block_coords - chunk * CHUNK
    sel = ((rel >= 0) & (rel <= CHUNK)).all(-1)
    rel, n, B, S = rel[sel], CHUNK + 1, BLOCK, CHUNK * BLOCK + 1
    fill = torch.ones((n, n, n), device=vol.tsdf_sum.device)
    if closed is not None:
        lo, enclosed = closed
        cells = torch.stack(torch.meshgrid(*[torch.arange(n)] * 3, indexing="ij"), -1)
        idx = cells + chunk.cpu() * CHUNK - lo
        ok = ((idx >= 0) & (idx < torch.tensor(enclosed.shape))).all(-1)
        inner = torch.zeros((n, n, n), dtype=torch.bool)
        inner[ok] = enclosed[tuple(idx[ok].T)]
        fill[inner.to(fill.device)] = -1.0

    def grid(values: Tensor, cell_fill: Tensor) -> Tensor:
        out = cell_fill[:, :, :, None, None, None].expand(n, n, n, B, B, B).clone()
        out[rel[:, 0], rel[:, 1], rel[:, 2]] = values.reshape(-1, B, B, B)
        return out.permute(0, 3, 1, 4, 2, 5).reshape(n * B, n * B, n * B)[:S, :S, :S]

    tsdf = vol.tsdf()[sel]
    if closed is not None:
        tsdf = torch.where(vol.weight[sel] > 0, tsdf, -1.0)
    return grid(tsdf, fill), grid(vol.weight[sel], torch.zeros_like(fill))


def _cube_mask(observed: np.ndarray) -> np.ndarray:
    """[S,S,S] mask for skimage's marching cubes: True where all 8 corners are observed.

    skimage tests the mask at a cube's highest corner (x+1, y+1, z+1), so that is where the
    flag of the cube with lowest corner (x, y, z) goes.
    """
    o = observed
    cube = np.ones(tuple(s - 1 for s in o.shape), dtype=bool)
    for dx, dy, dz in np.ndindex(2, 2, 2):
        cube &= o[dx:dx + cube.shape[0], dy:dy + cube.shape[1], dz:dz + cube.shape[2]]
    mask = np.zeros_like(o)
    mask[1:, 1:, 1:] = cube
    return mask


def _chunks(vol: SparseTSDF, closed: bool) -> Tensor:
    """[K,3] chunks to run marching cubes on: those holding blocks; with `closed` also their
    -x/-y/-z neighbours, whose last cube layer reaches into them."""
    chunks = torch.div(vol.block_coords, CHUNK, rounding_mode="floor")
    if closed:
        shifts = torch.tensor(list(np.ndindex(2, 2, 2)), device=chunks.device)
        chunks = (chunks[:, None] - shifts).reshape(-1, 3)
    return torch.unique(chunks, dim=0)


@torch.no_grad()
def extract_mesh(vol: SparseTSDF, min_weight: float = 1.0,
                 closed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of the TSDF's zero level set.

    Args:
        vol: a fused volume.
        min_weight: voxels with fewer observations count as unobserved; only cubes whose 8
            corners are observed are meshed (open surfaces end where observation ends).
        closed: instead mesh every cube, with unobserved allocated voxels and unallocated
            voxels enclosed by allocated blocks inside (-1) and other unallocated voxels
            free (+1): every surface closes (for objects seen from around, with masks).

    Returns:
        verts [V,3] float64 world positions and faces [F,3] int64, wound counter-clockwise
        seen from the free side. Vertices on chunk borders appear once per chunk at identical
        positions: merge them by position (``trimesh.Trimesh.merge_vertices``).
    """
    from skimage.measure import marching_cubes
    verts, faces, n_verts = [], [], 0
    inside = enclosed_blocks(vol.block_coords) if closed and vol.n_blocks else None
    for chunk in _chunks(vol, closed):
        tsdf, weight = (x.cpu().numpy() for x in _dense_chunk(vol, chunk, inside))
        observed = None if closed else weight >= min_weight
        mask = None if closed else _cube_mask(observed)
        # the sign test over every observed voxel: `mask` flags cubes at their highest
        # corner, so it never holds the chunk's first layer, where a surface may cross
        vals = tsdf if closed else tsdf[observed]
        if vals.size == 0 or vals.min() >= 0 or vals.max() <= 0:
            continue
        tsdf[tsdf == 0] = 1e-6  # a level set through a grid point makes degenerate faces
        try:
            v, f, _, _ = marching_cubes(tsdf, level=0.0, mask=mask)
        except (ValueError, RuntimeError) as e:  # both signs observed, in no full cube
            if "No surface found" not in str(e):
                raise
            continue
        origin = chunk.cpu().numpy() * CHUNK * BLOCK
        verts.append((v.astype(np.float64) + origin) * vol.voxel_size)
        faces.append(f.astype(np.int64) + n_verts)
        n_verts += len(v)
    if not faces:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(verts), np.concatenate(faces)
