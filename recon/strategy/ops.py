"""In-place surgery on Gaussian parameters and their Adam states (clone, split, remove, reset).

Each op replaces the parameters in the ParameterDict and edits every optimizer's state so the
moment estimates stay aligned with the Gaussians (new Gaussians start with zero moments).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ...data.cameras import quat_to_rotmat


def _update(params: torch.nn.ParameterDict, optimizers: dict[str, torch.optim.Optimizer],
            param_fn: Callable[[str, Tensor], Tensor], state_fn: Callable[[str, Tensor], Tensor],
            names: list[str] | None = None) -> None:
    """Replace params[name] by param_fn(name, p) and each Adam moment v by state_fn(name, v)."""
    for name in names or list(params.keys()):
        old = params[name]
        new = torch.nn.Parameter(param_fn(name, old.data), requires_grad=old.requires_grad)
        params[name] = new
        opt = optimizers.get(name)
        if opt is None:
            continue
        st = opt.state.pop(old, None)
        opt.param_groups[0]["params"] = [new]
        if st is not None:
            opt.state[new] = {k: (state_fn(name, v) if torch.is_tensor(v) and v.dim() > 0 else v)
                              for k, v in st.items()}


@torch.no_grad()
def duplicate(params, optimizers, mask: Tensor) -> None:
    """Append a copy of the Gaussians selected by `mask [N]`."""
    sel = mask.nonzero().squeeze(-1)
    _update(params, optimizers, lambda _, p: torch.cat([p, p[sel]]),
            lambda _, v: torch.cat([v, torch.zeros_like(v[sel])]))


@torch.no_grad()
def split(params, optimizers, mask: Tensor, generator: torch.Generator | None = None) -> None:
    """Replace each selected Gaussian by two samples from it, with scales divided by 1.6."""
    sel = mask.nonzero().squeeze(-1)
    rest = (~mask).nonzero().squeeze(-1)
    scales = torch.exp(params["scales"][sel])
    R = quat_to_rotmat(params["quats"][sel])
    noise = torch.randn(2, len(sel), 3, device=scales.device, generator=generator)
    samples = torch.einsum("nij,bnj->bni", R, scales[None] * noise)

    def param_fn(name: str, p: Tensor) -> Tensor:
        if name == "means":
            new = (p[sel][None] + samples).reshape(-1, 3)
        elif name == "scales":
            new = torch.log(scales / 1.6).repeat(2, 1)
        else:
            new = p[sel].repeat(2, *[1] * (p.dim() - 1))
        return torch.cat([p[rest], new])

    _update(params, optimizers, param_fn,
            lambda _, v: torch.cat([v[rest], torch.zeros((2 * len(sel), *v.shape[1:]), device=v.device,
                                                          dtype=v.dtype)]))


@torch.no_grad()
def remove(params, optimizers, mask: Tensor) -> None:
    """Drop the Gaussians selected by `mask [N]`."""
    keep = (~mask).nonzero().squeeze(-1)
    _update(params, optimizers, lambda _, p: p[keep], lambda _, v: v[keep])


@torch.no_grad()
def reset_opacity(params, optimizers, value: float) -> None:
    """Clamp every opacity to at most `value`, zeroing its Adam moments."""
    logit = float(torch.logit(torch.tensor(value)))
    _update(params, optimizers, lambda _, p: p.clamp_max(logit), lambda _, v: torch.zeros_like(v),
            names=["opacities"])
