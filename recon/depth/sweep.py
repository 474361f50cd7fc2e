"""Plane-sweep stereo for one reference view: warping, NCC cost, winner-take-all.

Hypotheses are inverse depths, either fronto-parallel planes ([1,D], the coarse sweep) or
per-pixel values ([H*W,D], the fine sweep around a first estimate); one code path serves
both. Tensors keep the hypotheses last ([...,H,W,D,K] for K channels), so box filters run
as channels-last pooling over D*K channels, which is several times faster on CPUs than
NCHW and as fast on GPUs. Everything is batched over source views and a chunk of
hypotheses, without host syncs, so the same functions run on CUDA tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-10


def _box_mean(x: Tensor, patch: int) -> Tensor:
    """Mean over patch x patch windows of x [N,H,W,...] (zero padding), same shape.

    Two separable passes of avg_pool2d on a channels-last view of the memory: on CPUs
    several times faster than one square NCHW pooling.
    """
    N, H, W = x.shape[:3]
    flat = x.reshape(N, H, W, -1).permute(0, 3, 1, 2)  # NCHW view of channels-last memory
    r = patch // 2
    y = F.avg_pool2d(flat, (patch, 1), stride=1, padding=(r, 0))
    y = F.avg_pool2d(y, (1, patch), stride=1, padding=(0, r))
    return y.permute(0, 2, 3, 1).reshape(x.shape)


def _mean_top_k(x: Tensor, k: int) -> Tensor:
    """Mean of the k largest of x [S,...] along dim 0, by a running compare-exchange.

    For the few sources MVS uses this is several times faster than `topk` on CPUs.
    """
    S = x.shape[0]
    if k >= S:
        return x.mean(0)
    if k == 1:
        return x.amax(0)
    top = [x[0]]  # sorted, largest first
    for s in range(1, S):
        v = x[s]
        for j in range(len(top)):
            top[j], v = torch.maximum(top[j], v), torch.minimum(top[j], v)
        if len(top) < k:
            top.append(v)
    return torch.stack(top).mean(0)


def _channel_sum(x: Tensor) -> Tensor:
    """Sum over the last dim (a view when it has size 1)."""
    return x[..., 0] if x.shape[-1] == 1 else x.sum(-1)


def patch_ncc(ref: Tensor, warped: Tensor, patch: int) -> Tensor:
    """Normalized cross-correlation of square windows, from box means of products.

    The K channels of a window form one vector (per-channel means removed), so colour
    images give one NCC per pixel and hypothesis. Windows reaching over the border see zeros.

    Args:
        ref: [H,W,K] reference image.
        warped: [N,H,W,D,K] N source images warped into the reference at D hypotheses.
        patch: odd window side in pixels.

    Returns:
        [N,H,W,D] NCC in [-1,1] (up to rounding); 0 where either window is flat.
    """
    K = ref.shape[-1]
    r = ref[..., None, :]  # [H,W,1,K]
    ref_stats = _box_mean(torch.cat([r, r * r], -1)[None], patch)[0]
    mu_r = ref_stats[..., :K]
    var_r = _channel_sum(torch.addcmul(ref_stats[..., K:], mu_r, mu_r, value=-1.0))  # [H,W,1]
    stack = warped.new_empty(*warped.shape[:-1], 3 * K)
    stack[..., :K] = warped
    torch.mul(warped, warped, out=stack[..., K:2 * K])
    torch.mul(warped, r, out=stack[..., 2 * K:])
    pooled = _box_mean(stack, patch)
    mu_s, sq_s, cross = pooled.split(K, -1)
    var_s = _channel_sum(torch.addcmul(sq_s, mu_s, mu_s, value=-1.0))
    cov = _channel_sum(torch.addcmul(cross, mu_s, mu_r, value=-1.0))
    return cov.mul_(var_s.mul_(var_r).clamp_min_(_EPS).rsqrt_())


def _patch_ncc_reference(ref: Tensor, warped: Tensor, patch: int) -> Tensor:
    """`patch_ncc` by explicit windows (unfold): slow, for tests. Same signature."""
    N, H, W, D, K = warped.shape
    r = patch // 2

    def windows(img: Tensor) -> Tensor:  # [B,H,W,K] -> [B,H*W,K,patch*patch]
        cols = F.unfold(img.permute(0, 3, 1, 2), patch, padding=r)  # [B,K*p*p,H*W]
        return cols.reshape(img.shape[0], K, patch * patch, H * W).permute(0, 3, 1, 2)

    a = windows(ref[None])
    b = windows(warped.permute(0, 3, 1, 2, 4).reshape(N * D, H, W, K))
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    n = patch * patch
    cov = (a * b).sum((-1, -2)) / n
    var = (a * a).sum((-1, -2)) * (b * b).sum((-1, -2)) / (n * n)
    ncc = (cov / torch.sqrt(var + _EPS)).clamp(-1.0, 1.0)  # [N*D,H*W]
    return ncc.reshape(N, D, H, W).permute(0, 2, 3, 1)


def relative_projection(rays: Tensor, cam_from_world: Tensor, Ks: Tensor, ref: int,
                        sources: Tensor, W: int, H: int) -> tuple[Tensor, Tensor]:
    """Terms of the warp into grid_sample coordinates.

    A reference pixel p at inverse depth q lands in source s at normalized coordinates
    (x, y) = (a[s,p,:2] + b[s,:2] q) / (a[s,p,2] + b[s,2] q), in front when the
    denominator is > 0.

    Args:
        rays: [3,H*W] reference rays with camera z = 1.
        cam_from_world: [C,4,4]; Ks: [C,3,3].
        ref: reference index; sources: [S] source indices.
        W, H: image size in pixels.

    Returns:
        a [S,H*W,1,3] and b [S,1,1,3].
    """
    rel = cam_from_world[sources] @ torch.linalg.inv_ex(cam_from_world[ref]).inverse  # no sync
    # pixels -> grid_sample's [-1,1] (align_corners=False: -1 and 1 are the outer pixel edges)
    to_grid = torch.tensor([[2.0 / W, 0.0, -1.0], [0.0, 2.0 / H, -1.0], [0.0, 0.0, 1.0]],
                           device=rays.device) @ Ks[sources]
    a = (to_grid @ rel[:, :3, :3] @ rays).transpose(1, 2)[:, :, None]
    b = (to_grid @ rel[:, :3, 3:]).transpose(1, 2)[:, :, None]
    return a.contiguous(), b.contiguous()


def _warp_grid(a: Tensor, b: Tensor, inv_depth: Tensor, W: int, H: int) -> Tensor:
    """grid_sample grid [S,H,W*D,2] for hypotheses [H*W,D] or [1,D].

    Points behind the source camera get huge coordinates, i.e. they sample outside.
    """
    S, D = a.shape[0], inv_depth.shape[-1]
    q = inv_depth[None, :, :, None]  # [1,HW|1,D,1]
    z = torch.addcmul(a[..., 2:], b[..., 2:], q).clamp_min_(1e-9)  # [S,HW,D,1]
    return torch.addcmul(a[..., :2], b[..., :2], q).div_(z).reshape(S, H, W * D, 2)


def sweep_score(ref: Tensor, srcs: Tensor, a: Tensor, b: Tensor, inv_depth: Tensor,
                patch: int, top_k: int, chunk: int) -> Tensor:
    """Matching score of every hypothesis: mean NCC of its best `top_k` source views.

    Args:
        ref: [K,H,W] reference image; srcs: [S,K+1,H,W] source images with a last channel
            of ones (its warp is the share of the sample inside the source image).
        a, b: warp terms from `relative_projection`.
        inv_depth: [H*W,D] per-pixel or [1,D] per-plane inverse depths.
        patch: NCC window side; top_k: sources averaged; chunk: hypotheses per batch.

    Returns:
        [H,W,D] score in [-1,1]; a source that does not see the point scores 0.
    """
    S, K1, H, W = srcs.shape
    ref_hwk = ref.permute(1, 2, 0)
    k = min(top_k, S)
    scores = []
    for start in range(0, inv_depth.shape[-1], chunk):
        grid = _warp_grid(a, b, inv_depth[:, start:start + chunk], W, H)
        D = grid.shape[2] // W
        warped = F.grid_sample(srcs, grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)  # [S,K+1,H,W*D]
        warped = warped.reshape(S, K1, H, W, D).permute(0, 2, 3, 4, 1)  # [S,H,W,D,K+1]
        score = patch_ncc(ref_hwk, warped[..., :-1], patch).mul_(warped[..., -1])
        scores.append(_mean_top_k(score, k))
    return torch.cat(scores, -1)


def winner_take_all(score: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Best hypothesis per pixel with a parabolic sub-hypothesis offset.

    Args:
        score: [H,W,D] scores (higher is better) of hypotheses at uniform spacing.

    Returns:
        position [H,W] (fractional hypothesis index), best score [H,W], and interior [H,W]
        (the maximum is not at either end of the range).
    """
    D = score.shape[-1]
    best, idx = score.max(-1)
    prev = score.gather(-1, (idx - 1).clamp(min=0)[..., None])[..., 0]
    nxt = score.gather(-1, (idx + 1).clamp(max=D - 1)[..., None])[..., 0]
    interior = (idx > 0) & (idx < D - 1)
    curvature = 2.0 * best - prev - nxt
    ok = interior & (curvature > 1e-9)
    safe = torch.where(ok, curvature, torch.ones_like(curvature))
    offset = torch.where(ok, 0.5 * (nxt - prev) / safe, torch.zeros_like(curvature))
    return idx.float() + offset.clamp(-0.5, 0.5), best, interior


def _smooth_inverse_depth(inv: Tensor, weight: Tensor, size: int) -> Tensor:
    """Weighted box filter of inverse depth [H,W] (weights [H,W] >= 0), same shape."""
    if size <= 1:
        return inv
    x = torch.stack([inv * weight, weight])[None]
    y = F.avg_pool2d(x, size, stride=1, padding=size // 2)[0]
    return torch.where(y[1] > 1e-6, y[0] / y[1].clamp_min(1e-6), inv)


def view_depth(ref: Tensor, srcs: Tensor, a: Tensor, b: Tensor, inv_near: Tensor,
               inv_far: Tensor, cfg) -> tuple[Tensor, Tensor, Tensor]:
    """Coarse plane sweep, then finer per-pixel sweeps, for one reference view.

    Each fine sweep tests offsets from a smoothed copy of the current estimate, so the
    NCC windows follow the local surface (slanted or curved) instead of a fronto-parallel
    plane; that removes most of the bias on slanted ground.

    Args:
        ref: [K,H,W]; srcs: [S,K+1,H,W] (see `sweep_score`); a, b: warp terms;
        inv_near, inv_far: 0-dim tensors; cfg: an MvsConfig.

    Returns:
        inverse depth [H,W], confidence [H,W] (aggregated NCC at the estimate, in [0,1]) and
        in-range flags [H,W] (the coarse maximum is not at an end of the sweep).
    """
    H, W = ref.shape[1:]
    D, D2, R = cfg.n_depths, cfg.n_refine_depths, cfg.refine_radius
    step = (inv_near - inv_far) / (D - 1)
    planes = inv_far + step * torch.arange(D, device=ref.device)
    score = sweep_score(ref, srcs, a, b, planes[None], cfg.patch_size, cfg.top_k,
                        cfg.depth_chunk)
    pos, best, in_range = winner_take_all(score)
    inv = inv_far + pos * step
    offsets = torch.linspace(-R, R, max(D2, 2), device=ref.device) * step
    for _ in range(cfg.refine_iters if D2 >= 2 else 0):
        weight = best.clamp_min(0.0) * in_range
        inv = _smooth_inverse_depth(inv, weight, cfg.refine_smooth).reshape(H * W, 1)
        score = sweep_score(ref, srcs, a, b, (inv + offsets).clamp_min(1e-9), cfg.patch_size,
                            cfg.top_k, cfg.depth_chunk)
        pos2, best, _ = winner_take_all(score)
        inv = (inv + (pos2.reshape(H * W, 1) * (2.0 * R / (D2 - 1)) - R) * step).reshape(H, W)
    confidence = best.clamp(0.0, 1.0)
    return inv.clamp_min(1e-9), confidence, in_range


def texture_std(ref: Tensor, patch: int) -> Tensor:
    """[H,W] std-dev of the reference window, averaged over channels (ref [K,H,W])."""
    x = ref.permute(1, 2, 0)[None]
    stats = _box_mean(torch.cat([x, x * x], -1), patch)[0]
    K = ref.shape[0]
    return (stats[..., K:] - stats[..., :K] ** 2).clamp_min(0.0).mean(-1).sqrt()
