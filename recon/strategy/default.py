"""The 3DGS grow-and-prune strategy (gsplat's DefaultStrategy logic), for either backend.

Statistics come from the rasterizer's ``means2d`` gradient and ``radii``, which both backends
return with the same meaning, so CPU and GPU runs densify alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import DensifyConfig
from .. import distributed
from . import ops


@dataclass
class DefaultState:
    """Running statistics between refinements."""

    grad2d: Tensor
    """[N] accumulated norm of the view-space positional gradient (NDC units)."""
    count: Tensor
    """[N] number of views in which each Gaussian was visible."""
    scene_scale: float
    """Scene extent the 3D scale thresholds are relative to."""

    def state_dict(self) -> dict:
        return {"grad2d": self.grad2d, "count": self.count, "scene_scale": self.scene_scale}


class DefaultStrategy:
    """Clone small / split large Gaussians with high view-space gradient; prune transparent ones."""

    def __init__(self, cfg: DensifyConfig):
        self.cfg = cfg

    def initialize_state(self, n: int, scene_scale: float, device) -> DefaultState:
        return DefaultState(torch.zeros(n, device=device), torch.zeros(n, device=device), scene_scale)

    def step_pre_backward(self, means2d: Tensor) -> None:
        if means2d.requires_grad:
            means2d.retain_grad()

    @torch.no_grad()
    def step_post_backward(self, params, optimizers, state: DefaultState, step: int,
                           means2d: Tensor, radii: Tensor, width: int, height: int,
                           generator: torch.Generator | None = None) -> dict:
        """Accumulate statistics and refine on schedule. Returns counts of what changed."""
        cfg = self.cfg
        report = {}
        if step < cfg.refine_stop and means2d.grad is not None:
            self._accumulate(state, means2d.grad, radii, width, height)
            if step > cfg.refine_start and step % cfg.refine_every == 0:
                report = self._refine(params, optimizers, state, step, generator)
        if step > 0 and step % cfg.reset_every == 0 and step < cfg.refine_stop:
            ops.reset_opacity(params, optimizers, 2 * cfg.prune_opacity)
        return report

    def _accumulate(self, state: DefaultState, grad: Tensor, radii: Tensor, W: int, H: int) -> None:
        C = grad.shape[0]
        g = grad.clone()
        g[..., 0] *= W / 2.0 * C
        g[..., 1] *= H / 2.0 * C
        visible = (radii > 0).to(g.dtype)  # [C,N]; masked sums avoid a host sync per step
        state.grad2d += (g.norm(dim=-1) * visible).sum(0)
        state.count += visible.sum(0)

    def _refine(self, params, optimizers, state: DefaultState, step: int, generator) -> dict:
        cfg = self.cfg
        distributed.sum_(state.grad2d, state.count)  # each torchrun rank saw its own views
        n_before = params["means"].shape[0]
        grads = state.grad2d / state.count.clamp_min(1)
        high = grads > cfg.grow_grad2d
        small = torch.exp(params["scales"]).max(-1).values <= cfg.grow_scale3d * state.scene_scale
        room = cfg.max_gaussians - n_before
        clone_mask = high & small
        split_mask = high & ~small
        if room <= 0:
            clone_mask[:] = False
            split_mask[:] = False
        n_clone, n_split = int(clone_mask.sum()), int(split_mask.sum())
        ops.duplicate(params, optimizers, clone_mask)
        split_mask = torch.cat([split_mask, split_mask.new_zeros(n_clone)])
        ops.split(params, optimizers, split_mask, generator)
        prune = torch.sigmoid(params["opacities"]) < cfg.prune_opacity
        if step > cfg.reset_every:
            prune |= torch.exp(params["scales"]).max(-1).values > cfg.prune_scale3d * state.scene_scale
        n_prune = int(prune.sum())
        ops.remove(params, optimizers, prune)
        n = params["means"].shape[0]
        state.grad2d = torch.zeros(n, device=state.grad2d.device)
        state.count = torch.zeros(n, device=state.count.device)
        return {"cloned": n_clone, "split": n_split, "pruned": n_prune, "n": n}
