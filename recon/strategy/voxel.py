"""Grow and prune a sparse voxel grid during optimization (the voxel model's strategy).

Statistics are per voxel: the view-space positional gradient of its Gaussians (max over the
voxel's K Gaussians, averaged over the views that see it) and the largest opacity among them.
- grow: voxels whose gradient is high get their free 6-neighbours (latent and colour copied),
  which extends the support where the surface is missing;
- prune: voxels whose Gaussians all stayed nearly transparent are removed;
- subdivide: at `subdivide_at` every voxel becomes 8 children of half the size (coarse to fine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import distributed
from ..config import VoxelConfig
from ..representation.voxel_grid import free_neighbours, subdivide
from . import ops

OPACITY = 10
"""Index of the opacity logit in the head's raw outputs (`GaussianHead`)."""


@dataclass
class VoxelState:
    """Running per-voxel statistics between refinements."""

    grad2d: Tensor
    """[V] accumulated max view-space gradient norm of the voxel's Gaussians (NDC units)."""
    count: Tensor
    """[V] number of views in which any of the voxel's Gaussians was visible."""
    max_opacity: Tensor
    """[V] largest opacity of the voxel's Gaussians seen since the last refinement."""

    def state_dict(self) -> dict:
        return {"grad2d": self.grad2d, "count": self.count, "max_opacity": self.max_opacity}

    @staticmethod
    def empty(n: int, device) -> "VoxelState":
        z = lambda: torch.zeros(n, device=device)  # noqa: E731
        return VoxelState(z(), z(), z())


class VoxelStrategy:
    """Typed-config strategy object, used like gsplat's strategies (pre/post backward hooks)."""

    def __init__(self, cfg: VoxelConfig):
        self.cfg = cfg

    def initialize_state(self, n_voxels: int, device) -> VoxelState:
        return VoxelState.empty(n_voxels, device)

    def step_pre_backward(self, means2d: Tensor) -> None:
        if means2d.requires_grad:
            means2d.retain_grad()

    @torch.no_grad()
    def step_post_backward(self, model, optimizers: dict, state: VoxelState, step: int,
                           means2d: Tensor, radii: Tensor, opacities: Tensor, width: int,
                           height: int) -> dict:
        """Accumulate statistics; grow/prune/subdivide on schedule. Returns what changed."""
        cfg = self.cfg
        if step >= cfg.refine_stop or means2d.grad is None:
            return {}
        self._accumulate(model, state, means2d.grad, radii, opacities, width, height)
        if step == cfg.subdivide_at and cfg.subdivide_at > 0:
            return self._subdivide(model, optimizers, state)
        if step > cfg.refine_start and step % cfg.refine_every == 0:
            return self._refine(model, optimizers, state, opacities)
        return {}

    def _accumulate(self, model, state: VoxelState, grad: Tensor, radii: Tensor,
                    opacities: Tensor, W: int, H: int) -> None:
        C, K = grad.shape[0], model.cfg.gaussians_per_voxel
        g = grad.clone()
        g[..., 0] *= W / 2.0 * C
        g[..., 1] *= H / 2.0 * C
        visible = (radii > 0).reshape(C, -1, K)
        norm = (g.norm(dim=-1).reshape(C, -1, K) * visible).amax(-1)  # [C,V]
        state.grad2d += norm.sum(0)
        state.count += visible.any(-1).float().sum(0)
        op = torch.sigmoid(opacities.detach()).reshape(-1, K).amax(-1)
        torch.maximum(state.max_opacity, op, out=state.max_opacity)

    def _refine(self, model, optimizers, state: VoxelState, opacities: Tensor) -> dict:
        cfg = self.cfg
        distributed.sum_(state.grad2d, state.count)  # each torchrun rank saw its own views
        distributed.max_(state.max_opacity)
        prune = state.max_opacity < cfg.prune_opacity
        grads = state.grad2d / state.count.clamp_min(1)
        high = (grads > cfg.grow_grad2d) & ~prune
        logits = opacities.detach().reshape(model.n_voxels, -1)  # [V,K] the decoded ones
        n_pruned = int(prune.sum())
        pruned = model.coords[prune] if not cfg.regrow_pruned else None
        if n_pruned and n_pruned < model.n_voxels:
            remove_voxels(model, optimizers, state, prune)
            high, logits = high[~prune], logits[~prune]
        else:
            n_pruned = 0
        n_grown = 0
        room = cfg.max_voxels - model.n_voxels
        if room > 0 and bool(high.any()):
            new, parent = free_neighbours(model.coords, high, pruned)
            new, parent = new[:room], parent[:room]
            n_grown = new.shape[0]
            _append_children(model, optimizers, new, parent)
            if cfg.grow_opacity > 0 and "residuals" in model.params:
                _fade(model.params["residuals"], logits[parent], cfg.grow_opacity)
        state.__dict__.update(VoxelState.empty(model.n_voxels, model.coords.device).__dict__)
        return {"voxels_pruned": n_pruned, "voxels_grown": n_grown, "voxels": model.n_voxels}

    def _subdivide(self, model, optimizers, state: VoxelState) -> dict:
        """Every voxel -> 8 children at half the size, when that stays under max_voxels."""
        if 8 * model.n_voxels > self.cfg.max_voxels:
            return {}
        children, parent = subdivide(model.coords)
        ops._update(model.params, optimizers, lambda _, p: p[parent], lambda _, v: v[parent])
        model.coords = children
        model.voxel_size = model.voxel_size / 2
        state.__dict__.update(VoxelState.empty(model.n_voxels, model.coords.device).__dict__)
        return {"voxels_subdivided": model.n_voxels // 8, "voxels": model.n_voxels}


@torch.no_grad()
def remove_voxels(model, optimizers, state: VoxelState, drop: Tensor) -> None:
    """Drop the voxels selected by `drop [V]`: parameters, Adam moments, coordinates and the
    running statistics."""
    ops.remove(model.params, optimizers, drop)
    model.coords = model.coords[~drop]
    for k, v in state.state_dict().items():
        setattr(state, k, v[~drop])


def _fade(residuals: Tensor, parent_logits: Tensor, opacity: float) -> None:
    """Lower the residual opacity logits of the last M voxels (just grown; `parent_logits
    [M,K]` their parents' decoded logits) so that their Gaussians start at most `opacity`."""
    M = parent_logits.shape[0]
    excess = (parent_logits - math.log(opacity / (1 - opacity))).clamp_min(0)
    residuals.data[-M:, :, OPACITY] -= excess


def _append_children(model, optimizers, coords: Tensor, parent: Tensor) -> None:
    """Append voxels `coords [M,3]` whose parameters copy those of `parent [M]`."""
    ops._update(model.params, optimizers, lambda _, p: torch.cat([p, p[parent]]),
                lambda _, v: torch.cat([v, torch.zeros_like(v[parent])]))
    model.coords = torch.cat([model.coords, coords])
