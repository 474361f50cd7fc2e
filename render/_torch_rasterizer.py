"""Pure-PyTorch reference rasterizer: gsplat 1.5's ``rasterization(packed=False,
rasterize_mode="classic", render_mode="RGB+ED")`` re-expressed with tensor ops, differentiable.

Stages, mirroring gsplat:

1. ``_project``: world -> camera, 3D covariance from (quat, scale), EWA projection with the
   Jacobian clamped to 1.3x the field of view, ``eps2d`` blur, gsplat 1.5's opacity-aware
   rectangular radii and culling.
2. ``_view_colors``: SH evaluated along ``means - camera centre``, ``+0.5``, clamped at 0.
3. ``_render_view``: front-to-back alpha compositing, per camera.

Step 3 is organised for CPU speed. gsplat 1.5 bounds a Gaussian by ``sqrt(2 ln(255 opacity))``
standard deviations, which is exactly where its alpha falls below 1/255 (the kernel skips such
contributions), so for opacities <= 1 tiles never cut a contribution and any tiling gives
gsplat's image. We use small 4x4 tiles: the (tile, Gaussian) pairs a Gaussian's pixel box
touches are sorted by tile then depth, every pair is evaluated densely on its tile's 16 pixels
([16,P] tensors, pairs along contiguous memory), and each tile's run of pairs is composited
with a run-local float64 cumulative sum of log(1 - alpha), cut where gsplat's kernel stops
(transmittance <= 1e-4).
Compositing is a custom autograd Function whose backward is gsplat's analytic one; everything
before it (projection, SH) is plain autograd. Large views are rendered in bands of tile rows
under activation checkpointing, so memory stays bounded by ``MAX_PAIRS``.

CPU notes: large temporaries are updated in place because on some machines each fresh
multi-megabyte allocation costs about 1 ms/MB in page faults, and exponents are clamped so no
denormal numbers are produced.

Known differences from gsplat 1.5.3 (measured against it on an H100: images within 5e-6,
radii identical, gradients within 1e-5 relative):

- gsplat also skips a pixel when rounding makes sigma slightly negative at a Gaussian's
  centre; this is not reproduced (it cannot happen in exact arithmetic).
- means2d is 0 where radii == 0 (gsplat leaves those entries unset).
- Rounding differs: the 2D covariance is formed as (J W R S)(J W R S)^T, alpha as
  exp(-(sigma - ln o)), transmittance in float64; a pixel can rarely flip one of the 1/255 or
  1e-4 thresholds.
- Only what ``rasterize`` exposes: pinhole cameras, per-Gaussian colours, no packed mode,
  no "antialiased" mode, no absgrad.
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ..data.cameras import quat_to_rotmat
from ..data.errors import VoxsplatError
from .rasterize import RasterOutput
from .sh import view_colors

ALPHA_MIN = 1.0 / 255.0
"""Contributions with alpha below this are skipped (gsplat's ALPHA_THRESHOLD)."""
ALPHA_MAX = 0.999
"""Alpha is clamped to this (gsplat 1.5's rasterize_to_pixels kernels)."""
_BELOW_ALPHA_MIN = float(torch.nextafter(torch.tensor(ALPHA_MIN), torch.tensor(0.0)))
"""Largest float32 below 1/255: ``threshold_`` keeps values > it, i.e. alpha >= 1/255."""
T_MIN = 1e-4
"""A pixel stops at the first Gaussian that would take its transmittance to <= T_MIN."""
EXTEND_MAX = 3.33
"""Largest box half-size in standard deviations (gsplat 1.5)."""
MAX_PAIRS = 8_000_000
"""(pixel, Gaussian) evaluations per band (about 40 bytes each at the peak); views needing more
are rendered in checkpointed bands of tile rows."""
TILE = 4
"""Tile side in pixels: each (tile, Gaussian) pair is evaluated densely on TILE^2 pixels."""


class _Projected(NamedTuple):
    """Per-camera screen-space Gaussians; entries with ``radii == 0`` are culled."""

    means2d: Tensor  # [C,N,2] pixels, differentiable, 0 where culled
    conics: Tensor  # [C,N,3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]]
    depths: Tensor  # [C,N] camera-space z
    radii: Tensor  # [C,N] int32
    var2d: Tensor  # [C,N,2] diagonal of the blurred 2D covariance, no grad


def _project(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
             cam_from_world: Tensor, Ks: Tensor, width: int, height: int,
             near: float, far: float, eps2d: float) -> _Projected:
    """EWA projection of N Gaussians into C cameras (gsplat's fully_fused_projection).

    The 2D covariance J W Sigma W^T J^T is formed as T T^T with T = J (W R S), which is the
    same matrix as gsplat's but needs one matrix product per camera instead of 3x3 products.
    """
    rot, trans = cam_from_world[:, :3, :3], cam_from_world[:, :3, 3]
    n = means.shape[0]
    means_c = means @ rot.transpose(1, 2) + trans[:, None, :]  # [C,N,3]
    rs = quat_to_rotmat(quats) * scales[:, None, :]  # [N,3,3] R S
    wrs = (rot @ rs.permute(1, 0, 2).reshape(3, 3 * n)).reshape(len(rot), 3, n, 3)  # [C,3,N,3]
    x, y, z = means_c.unbind(-1)
    in_depth = (z >= near) & (z <= far)
    z = torch.where(in_depth, z, torch.ones_like(z))  # keeps culled entries finite
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C,1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    lim_x = 0.3 * (0.5 * width / fx)
    lim_y = 0.3 * (0.5 * height / fy)
    tx = torch.clamp(x / z, min=-(cx / fx + lim_x), max=(width - cx) / fx + lim_x)
    ty = torch.clamp(y / z, min=-(cy / fy + lim_y), max=(height - cy) / fy + lim_y)
    t0 = (fx / z)[..., None] * (wrs[:, 0] - tx[..., None] * wrs[:, 2])  # rows of T, [C,N,3]
    t1 = (fy / z)[..., None] * (wrs[:, 1] - ty[..., None] * wrs[:, 2])
    c00, c01, c11 = (t0 * t0).sum(-1) + eps2d, (t0 * t1).sum(-1), (t1 * t1).sum(-1) + eps2d
    det = c00 * c11 - c01 * c01
    ok = in_depth & (det > 0)
    det = torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c11 / det, -c01 / det, c00 / det], dim=-1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
    var2d = torch.stack([c00, c11], dim=-1).detach()
    radii = _radii(means2d.detach(), var2d, opacities.detach(), ok, width, height)
    vis = (radii > 0)[..., None]
    return _Projected(torch.where(vis, means2d, torch.zeros_like(means2d)),
                      torch.where(vis, conics, torch.zeros_like(conics)),
                      means_c[..., 2], radii, var2d)


def _radii(means2d: Tensor, var2d: Tensor, opacities: Tensor, ok: Tensor,
           width: int, height: int) -> Tensor:
    """gsplat 1.5's rectangular, opacity-aware radii, reduced to [C,N] int32 by max.

    Args:
        means2d: [C,N,2]; var2d: [C,N,2] blurred variances; opacities: [N]; ok: [C,N] bool.
    """
    opac = opacities.expand(ok.shape)
    extend = torch.sqrt(2.0 * torch.log(opac.clamp_min(ALPHA_MIN) / ALPHA_MIN))
    extend = extend.clamp_max(EXTEND_MAX)
    rad = torch.ceil(extend[..., None] * torch.sqrt(var2d.clamp_min(0)))  # [C,N,2]
    inside = ((means2d + rad > 0) & (means2d - rad < means2d.new_tensor([width, height])))
    keep = ok & (opac >= ALPHA_MIN) & inside.all(-1) & (rad > 0).any(-1)
    return torch.where(keep, rad.amax(-1), torch.zeros_like(opac)).to(torch.int32)


def _view_colors(means: Tensor, colors: Tensor, cam_from_world: Tensor,
                 sh_degree: Optional[int]) -> Tensor:
    """[C,N,D] colours: the features as given, or SH along means - camera centre, +0.5,
    clamped at 0 (D = 3)."""
    if sh_degree is None:
        return colors[None].expand(cam_from_world.shape[0], -1, -1)
    return view_colors(means, colors, cam_from_world, sh_degree)


def _pixel_boxes(means2d: Tensor, var2d: Tensor, opac: Tensor,
                 width: int, height: int) -> Tensor:
    """[M,4] int64 inclusive pixel ranges (x0, x1, y0, y1) where alpha can reach 1/255."""
    extend = torch.sqrt(2.0 * torch.log(opac.clamp_min(ALPHA_MIN) / ALPHA_MIN))
    half = extend[:, None] * torch.sqrt(var2d) + 1e-3  # [M,2]
    lo = torch.ceil(means2d - half - 0.5).long()
    hi = torch.floor(means2d + half - 0.5).long()
    lo = torch.maximum(lo, torch.zeros_like(lo))
    hi = torch.minimum(hi, torch.tensor([width - 1, height - 1], device=hi.device))
    return torch.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], dim=-1)


class _Plan(NamedTuple):
    """(tile, Gaussian) pairs of one band, sorted by tile then depth, with per-pixel state.

    Per-pixel tensors are [S,P]: S = TILE * TILE pixels of the pair's tile (row-major inside
    the tile) by P pairs, so scans over a tile's Gaussians run along contiguous memory. Pixels
    where gsplat skips the pair (alpha < 1/255) have alpha 0; pixels from the first pair that
    would take the transmittance to <= 1e-4 on have transmittance 0 ("cut"). No grad.
    """

    gid: Tensor  # [P] int64 Gaussian, as its rank in the view's depth order
    tile: Tensor  # [P] int64 band-local tile index, ty * tiles_x + tx
    counts: Tensor  # [n_tiles] int64 pairs per tile
    dx: Tensor  # [TILE,P] mean x - pixel centre x, per tile column
    dy: Tensor  # [TILE,P] mean y - pixel centre y, per tile row
    trans: Tensor  # [S,P] transmittance before the pair
    weight: Tensor  # [S,P] alpha * trans, the pair's share of the pixel
    dalpha: Tensor  # [S,P] -d alpha / d sigma: alpha, or 0 where clamped at 0.999
    inv_keep: Tensor  # [S,P] 1 / (1 - alpha)


def _tile_pairs(boxes: Tensor, row0: int, row1: int, tiles_x: int) -> Tuple[Tensor, Tensor]:
    """(gid, tile) for every tile of rows [row0,row1) a pixel box touches, by tile then gid.

    Args:
        boxes: [M,4] inclusive pixel boxes (x0, x1, y0, y1) of Gaussians in depth order.
    """
    n_gauss = len(boxes)
    y0, y1 = boxes[:, 2].clamp_min(row0), boxes[:, 3].clamp_max(row1 - 1)
    tx0, ty0 = torch.div(boxes[:, 0], TILE, rounding_mode="floor"), (y0 - row0) // TILE
    n_x = torch.div(boxes[:, 1], TILE, rounding_mode="floor") - tx0 + 1
    n_y = (y1 - row0) // TILE - ty0 + 1
    counts = torch.where((y1 >= y0) & (boxes[:, 1] >= boxes[:, 0]), n_x * n_y, 0)
    gid = torch.repeat_interleave(torch.arange(n_gauss, device=boxes.device), counts)
    local = torch.arange(len(gid), device=boxes.device) - (torch.cumsum(counts, 0) - counts)[gid]
    n_x = n_x[gid]
    row = torch.div(local, n_x, rounding_mode="floor")
    tile = (ty0[gid] + row) * tiles_x + tx0[gid] + local - row * n_x
    keys, _ = torch.sort(tile * n_gauss + gid)
    tile = torch.div(keys, n_gauss, rounding_mode="floor")
    return keys - tile * n_gauss, tile


def _pair_sigmas(means2d: Tensor, conics: Tensor, opac: Tensor, gid: Tensor, tile: Tensor,
                 row0: int, row1: int, width: int) -> Tuple[Tensor, Tensor, Tensor]:
    """sigma - ln(opacity) [TILE,TILE,P] on each pair's tile pixels, +inf off the band/image.

    Returns:
        (sig, dx [TILE,P], dy [TILE,P]).
    """
    tiles_x = -(-width // TILE)
    ty = torch.div(tile, tiles_x, rounding_mode="floor")
    offs = torch.arange(TILE, device=tile.device)[:, None]
    px = (tile - ty * tiles_x) * TILE + offs  # [TILE,P] pixel columns
    py = ty * TILE + row0 + offs  # [TILE,P] pixel rows
    dx = means2d[:, 0].take(gid) - (px + 0.5)
    dy = means2d[:, 1].take(gid) - (py + 0.5)
    ca, cb, cc = (conics[:, k].take(gid) for k in range(3))
    log_o = torch.log(opac).take(gid)
    qx = 0.5 * ca * dx * dx
    qy = 0.5 * cc * dy * dy - log_o
    if width % TILE:
        qx.masked_fill_(px >= width, math.inf)
    if (row1 - row0) % TILE:
        qy.masked_fill_(py >= row1, math.inf)
    sig = (cb * dx)[None] * dy[:, None]  # in place from here: large tensors are costly
    sig += qx[None]
    sig += qy[:, None]
    return sig, dx, dy


@torch.no_grad()
def _plan_band(means2d: Tensor, conics: Tensor, opac: Tensor, boxes: Tensor,
               row0: int, row1: int, width: int) -> _Plan:
    """Evaluate every (tile, Gaussian) pair of rows [row0,row1) on the tile's pixels.

    Gaussians must be in depth order. A pixel blends a Gaussian when gsplat does: alpha >=
    1/255 and before the first Gaussian that would take its transmittance to <= 1e-4 (that
    one and all later ones are cut). Masks are applied with ``threshold_``, in place.
    """
    tiles_x = -(-width // TILE)
    gid, tile = _tile_pairs(boxes, row0, row1, tiles_x)
    counts = torch.bincount(tile, minlength=tiles_x * -(-(row1 - row0) // TILE))
    sig, dx, dy = _pair_sigmas(means2d, conics, opac, gid, tile, row0, row1, width)
    alpha = sig.clamp_max_(30.0).neg_().exp_().clamp_max_(ALPHA_MAX).reshape(TILE * TILE, -1)
    F.threshold_(alpha, _BELOW_ALPHA_MIN, 0.0)  # alpha >= 1/255 or 0; exp(-30) > denormals
    logs = torch.log1p(alpha.neg())
    trans = _run_prefix(logs, counts)[0].to(logs.dtype)  # log T after the pair
    F.threshold_(trans.sub_(math.log(T_MIN)), 0.0, -math.inf)  # -inf from the cut on
    trans.add_(math.log(T_MIN)).sub_(logs).exp_()
    dalpha = F.threshold_(alpha.neg(), -ALPHA_MAX, 0.0).neg_()
    weight = alpha.mul_(trans)
    plan = _Plan(gid, tile, counts, dx, dy, trans, weight, dalpha, logs.neg_().exp_())
    return _drop_idle_pairs(plan)


def _drop_idle_pairs(plan: _Plan) -> _Plan:
    """Remove pairs that blend into none of their tile's pixels (missed or cut)."""
    used = plan.weight.amax(0) > 0
    n_used = int(used.sum())
    if n_used > 0.9 * len(used):
        return plan
    idx = torch.nonzero(used)[:, 0]
    tile = plan.tile[idx]
    return _Plan(plan.gid[idx], tile, torch.bincount(tile, minlength=len(plan.counts)),
                 *(t.index_select(1, idx) for t in plan[3:]))


def _run_prefix(x: Tensor, counts: Tensor) -> Tuple[Tensor, Tensor]:
    """Inclusive prefix sums of x [R,P] along P within runs of ``counts`` pairs (tiles).

    The flat float64 cumsum is reset at each run start by subtracting the previous run's
    total, so values stay run-local and exact to float64 rounding.

    Returns:
        (prefix [R,P] float64, run totals [R,n_runs] float64).
    """
    xd = x.to(torch.float64, copy=True)
    totals = torch.segment_reduce(xd, "sum", lengths=counts.expand(x.shape[0], -1).contiguous(),
                                  axis=1)
    nonempty = counts > 0
    starts = (torch.cumsum(counts, 0) - counts)[nonempty]
    xd[:, starts[1:]] -= totals[:, nonempty][:, :-1]
    return xd.cumsum_(1), totals


def _per_gaussian(gid: Tensor, values: List[Tensor], n_gauss: int) -> Tensor:
    """Sum per-pair values [P] by Gaussian -> [M,len(values)]."""
    if gid.numel() == 0:
        return values[0].new_zeros(n_gauss, len(values))
    return torch.stack([torch.bincount(gid, weights=v, minlength=n_gauss) for v in values], -1)


def _tile_sums(x: Tensor, counts: Tensor) -> Tensor:
    """Sum x [S,P] over each tile's run of pairs -> [S,n_tiles]."""
    return torch.segment_reduce(x, "sum", lengths=counts.expand(x.shape[0], -1).contiguous(),
                                axis=1)


class _Blend(torch.autograd.Function):
    """Front-to-back compositing of a planned band, with gsplat's analytic backward.

    forward(means2d [M,2], conics [M,3], opac [M], feats [M,D], plan)
    -> [1+D,S,n_tiles] per tile pixel: (sum of weights = alpha, sum of weight * feats).
    """

    @staticmethod
    def forward(ctx, means2d, conics, opac, feats, plan: _Plan):
        w = plan.weight  # [S,P]
        out = [_tile_sums(w, plan.counts)]
        buf = torch.empty_like(w)
        for k in range(feats.shape[1]):
            out.append(_tile_sums(torch.mul(w, feats[:, k].take(plan.gid), out=buf),
                                  plan.counts))
        ctx.save_for_backward(conics, opac, feats, *plan)
        return torch.stack(out)

    @staticmethod
    def backward(ctx, g_out):
        conics, opac, feats, gid, tile, counts, dx, dy, trans, w, dalpha, inv_keep = \
            ctx.saved_tensors
        g_out = g_out.contiguous()
        g_w = g_out[0].index_select(1, tile)  # dL / d weight, [S,P]
        g_pix = torch.empty_like(g_w)
        g_feats = []
        for k in range(feats.shape[1]):
            torch.index_select(g_out[k + 1], 1, tile, out=g_pix)
            g_w.addcmul_(g_pix, feats[:, k].take(gid))
            g_feats.append(g_pix.mul_(w).sum(0))
        upto, totals = _run_prefix(torch.mul(w, g_w, out=g_pix), counts)
        behind = totals.to(w.dtype).index_select(1, torch.repeat_interleave(
            torch.arange(len(counts), device=gid.device), counts))
        behind -= upto.to(w.dtype)  # sum of w * g_w over the later pairs of the pixel
        del upto
        # -dL/dsigma; zero on cut pixels, whose trans and later weights are all 0
        g_a = g_w.mul_(trans).sub_(behind.mul_(inv_keep)).mul_(dalpha)
        g_sig = g_a.reshape(TILE, TILE, -1)
        by_col, by_row = g_sig.sum(0), g_sig.sum(1)  # [TILE,P]
        s_xy = (torch.mul(g_sig, dx[None], out=behind.reshape(g_sig.shape)).sum(1) * dy).sum(0)
        sums = _per_gaussian(gid, [(by_col * dx * dx).sum(0), s_xy, (by_row * dy * dy).sum(0),
                                   (by_col * dx).sum(0), (by_row * dy).sum(0), g_a.sum(0)]
                             + g_feats, len(feats))
        sums[:, :5] = -sums[:, :5]
        ca, cb, cc = conics.unbind(-1)
        sx, sy = sums[:, 3], sums[:, 4]
        g_means2d = torch.stack([ca * sx + cb * sy, cb * sx + cc * sy], -1)
        g_conics = torch.stack([0.5 * sums[:, 0], sums[:, 1], 0.5 * sums[:, 2]], -1)
        return g_means2d, g_conics, sums[:, 5] / opac, sums[:, 6:], None


def _render_band(means2d: Tensor, conics: Tensor, opac: Tensor, feats: Tensor,
                 boxes: Tensor, row0: int, row1: int, width: int) -> Tensor:
    """Composite rows [row0,row1) of one view (row0 a multiple of TILE).

    Args:
        means2d [M,2], conics [M,3], opac [M], feats [M,D]: visible Gaussians in depth order.
        boxes: [M,4] from ``_pixel_boxes``.

    Returns:
        [row1-row0, width, 1+D] accumulated (alpha, sum w * feats) per pixel.
    """
    plan = _plan_band(means2d.detach(), conics.detach(), opac.detach(), boxes, row0, row1,
                      width)
    tiles_x, tiles_y = -(-width // TILE), -(-(row1 - row0) // TILE)
    out = _Blend.apply(means2d, conics, opac, feats, plan)  # [1+D,S,n_tiles]
    out = out.reshape(-1, TILE, TILE, tiles_y, tiles_x).permute(3, 1, 4, 2, 0)
    return out.reshape(tiles_y * TILE, tiles_x * TILE, -1)[:row1 - row0, :width]


def _row_bands(boxes: Tensor, height: int, max_pairs: int) -> List[Tuple[int, int]]:
    """Split [0,height) into bands of whole tile rows whose pixel pairs stay near max_pairs."""
    area = ((boxes[:, 1] - boxes[:, 0] + 1 + TILE).clamp_min(0)
            * (boxes[:, 3] - boxes[:, 2] + 1 + TILE).clamp_min(0))
    n_bands = max(1, min(-(-height // TILE), math.ceil(int(area.sum()) / max_pairs)))
    step = TILE * -(-height // (TILE * n_bands))
    return [(r, min(height, r + step)) for r in range(0, height, step)]


def _render_view(means2d: Tensor, conics: Tensor, opac: Tensor, feats: Tensor,
                 depths: Tensor, radii: Tensor, var2d: Tensor, width: int, height: int) -> Tensor:
    """Render one camera.

    Args:
        means2d [N,2], conics [N,3], opac [N], feats [N,D], depths [N], radii [N],
        var2d [N,2]: one camera's projected Gaussians.

    Returns:
        [H,W,1+D] (alpha, sum of weight * feats) per pixel.
    """
    ids = torch.nonzero(radii > 0)[:, 0]
    ids = ids[torch.argsort(depths[ids].detach(), stable=True)]
    if len(ids) == 0:
        return feats.new_zeros(height, width, 1 + feats.shape[-1])
    means2d, conics, opac, feats = means2d[ids], conics[ids], opac[ids], feats[ids]
    boxes = _pixel_boxes(means2d.detach(), var2d[ids], opac.detach(), width, height)
    bands = _row_bands(boxes, height, MAX_PAIRS)
    if len(bands) == 1:
        return _render_band(means2d, conics, opac, feats, boxes, 0, height, width)
    return torch.cat([checkpoint(_render_band, means2d, conics, opac, feats, boxes, r0, r1,
                                 width, use_reentrant=False) for r0, r1 in bands], dim=0)


def check_inputs(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                 colors: Tensor, cam_from_world: Tensor, Ks: Tensor,
                 sh_degree: Optional[int]) -> None:
    """Raise VoxsplatError unless the shapes follow ``rasterize``'s contract."""
    n, c = means.shape[0], cam_from_world.shape[0]
    want = {"means": (means, (n, 3)), "quats": (quats, (n, 4)), "scales": (scales, (n, 3)),
            "opacities": (opacities, (n,)), "cam_from_world": (cam_from_world, (c, 4, 4)),
            "Ks": (Ks, (c, 3, 3))}
    for name, (tensor, shape) in want.items():
        if tuple(tensor.shape) != shape:
            raise VoxsplatError(f"rasterize: {name} must be {list(shape)}, got "
                                f"{list(tensor.shape)}")
    if sh_degree is None and (colors.dim() != 2 or colors.shape[0] != n or colors.shape[1] < 1):
        raise VoxsplatError(f"rasterize: colors must be [N,D] (RGB: D = 3) without sh_degree, "
                            f"got {list(colors.shape)}")
    if sh_degree is not None and (colors.dim() != 3 or colors.shape[0] != n
                                  or colors.shape[2] != 3
                                  or colors.shape[1] < (sh_degree + 1) ** 2):
        raise VoxsplatError(f"rasterize: sh_degree {sh_degree} needs colors [N,K,3] with "
                            f"K >= {(sh_degree + 1) ** 2}, got {list(colors.shape)}")


def backgrounds(background: Optional[Tensor], n_cams: int, like: Tensor,
                channels: int = 3) -> Optional[Tensor]:
    """None, [D] or [C,D] -> None or [C,D] on ``like``'s device and dtype (D = `channels`)."""
    if background is None:
        return None
    bg = background.to(device=like.device, dtype=like.dtype)
    if bg.shape not in ((channels,), (n_cams, channels)):
        raise VoxsplatError(f"background must be [{channels}] or [C,{channels}] with C={n_cams} "
                            f"(one value per colour channel), got {tuple(bg.shape)}")
    return bg.expand(n_cams, channels)


def _rasterize(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
               colors: Tensor, cam_from_world: Tensor, Ks: Tensor, width: int, height: int,
               *, sh_degree: Optional[int] = None, background: Optional[Tensor] = None,
               near: float = 0.01, far: float = 1e10, eps2d: float = 0.3) -> RasterOutput:
    """Reference of ``rasterize`` (same arguments and outputs); see ``rasterize.rasterize``."""
    check_inputs(means, quats, scales, opacities, colors, cam_from_world, Ks, sh_degree)
    n_cams = cam_from_world.shape[0]
    proj = _project(means, quats, scales, opacities, cam_from_world, Ks, width, height,
                    near, far, eps2d)
    feats = torch.cat([_view_colors(means, colors, cam_from_world, sh_degree),
                       proj.depths[..., None]], dim=-1)  # [C,N,D+1]
    views = [_render_view(proj.means2d[c], proj.conics[c], opacities, feats[c],
                          proj.depths[c], proj.radii[c], proj.var2d[c], width, height)
             for c in range(n_cams)]
    acc = torch.stack(views).reshape(n_cams, height, width, feats.shape[-1] + 1)
    alphas, rgb, depth_sum = acc[..., :1], acc[..., 1:-1], acc[..., -1:]
    bg = backgrounds(background, n_cams, rgb, rgb.shape[-1])
    if bg is not None:
        rgb = rgb + (1.0 - alphas) * bg[:, None, None, :]
    depths = depth_sum / alphas.clamp_min(1e-10)
    return RasterOutput(colors=rgb, alphas=alphas, depths=depths, means2d=proj.means2d,
                        radii=proj.radii)
