"""Gaussians decoded from a sparse voxel grid: latents -> spconv U-Net -> K Gaussians per voxel.

The decoded Gaussians use the explicit model's raw parameterization (``means``, log
``scales``, ``quats``, logit ``opacities``, ``sh0``, ``shN``), so they render, export and bake
through the same code as explicit ones.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...render.sh import RGB2SH
from ..config import VoxelConfig
from .voxel_grid import SparseVoxelGrid


class GaussianHead(nn.Module):
    """Per-voxel features [V,C] -> raw parameters of K Gaussians per voxel.

    Centres stay within ``offset_voxels`` voxel sizes of the voxel centre (tanh bound); scales
    lie in [min_scale_voxels, max_scale_voxels] voxel sizes (sigmoid bound in log space).
    """

    def __init__(self, in_channels: int, cfg: VoxelConfig, sh_degree: int, seed: int = 0):
        super().__init__()
        self.K, self.cfg = cfg.gaussians_per_voxel, cfg
        self.n_sh = (sh_degree + 1) ** 2
        self.per = 3 + 3 + 4 + 1 + 3 * self.n_sh
        hidden = cfg.head_hidden
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.SiLU(),
                                 nn.Linear(hidden, self.K * self.per))
        last = self.mlp[-1]
        nn.init.normal_(last.weight, std=1e-3)
        g = torch.Generator().manual_seed(seed)
        bias = torch.zeros(self.K, self.per)
        # distinct starting offsets inside the voxel: atanh of uniform samples in (-0.5, 0.5) voxel
        start = (torch.rand(self.K, 3, generator=g) - 0.5) / cfg.offset_voxels
        bias[:, 0:3] = torch.atanh(start)
        lo, hi = math.log(cfg.min_scale_voxels), math.log(cfg.max_scale_voxels)
        frac = (math.log(cfg.init_scale_voxels) - lo) / (hi - lo)
        bias[:, 3:6] = math.log(frac / (1 - frac))
        bias[:, 6] = 1.0  # identity rotation (w, x, y, z)
        bias[:, 10] = math.log(cfg.init_opacity / (1 - cfg.init_opacity))
        last.bias.data.copy_(bias.reshape(-1))

    def residuals_at(self, points: Tensor, colors: Tensor, centers: Tensor, voxel_sizes: Tensor,
                     base_sh0: Tensor, max_frac: float = 0.95) -> Tensor:
        """Residuals [V,K,per] that move the K Gaussians of each voxel from the head's starting
        offsets to world `points [V,K,3]` and give them `colors [V,K,3]` (RGB) instead of the
        voxel's `base_sh0 [V,3]`, for the head as initialized (its last layer's weights are
        ~1e-3, so its output is its bias). Offsets beyond `max_frac` of their bound are clipped."""
        V, K = points.shape[:2]
        res = torch.zeros(V, K, self.per)
        bias = self.mlp[-1].bias.detach().reshape(K, self.per).cpu()
        bound = self.cfg.offset_voxels * voxel_sizes.cpu()[:, None, None]
        rel = (points.cpu() - centers.cpu()[:, None]) / bound
        res[..., 0:3] = torch.atanh(rel.clamp(-max_frac, max_frac)) - bias[None, :, 0:3]
        res[..., 11:14] = RGB2SH(colors.cpu().float().clamp(0, 1)) - base_sh0.cpu()[:, None, :]
        return res

    def forward(self, features: Tensor, centers: Tensor, voxel_sizes: Tensor,
                base_sh0: Tensor, residuals: Tensor | None = None) -> dict[str, Tensor]:
        """Raw Gaussian parameters, N = V*K, Gaussian k of voxel v at index v*K + k, around the
        world `centers [V,3]` of voxels of world edge lengths `voxel_sizes [V]`.
        `residuals [V,K,per]` are added to the decoded values before their bounds apply."""
        V, K = features.shape[0], self.K
        out = self.mlp(features).reshape(V, K, self.per)
        if residuals is not None:
            out = out + residuals
        lo, hi = math.log(self.cfg.min_scale_voxels), math.log(self.cfg.max_scale_voxels)
        size = voxel_sizes[:, None, None]
        means = centers[:, None, :] + torch.tanh(out[..., 0:3]) * (self.cfg.offset_voxels * size)
        scales = torch.log(size) + lo + (hi - lo) * torch.sigmoid(out[..., 3:6])
        sh = out[..., 11:].reshape(V, K, self.n_sh, 3)
        sh0 = sh[:, :, :1] + base_sh0[:, None, None, :]
        return {"means": means.reshape(-1, 3), "scales": scales.reshape(-1, 3),
                "quats": out[..., 6:10].reshape(-1, 4), "opacities": out[..., 10].reshape(-1),
                "sh0": sh0.reshape(-1, 1, 3), "shN": sh[:, :, 1:].reshape(V * K, self.n_sh - 1, 3)}


class VoxelGaussians(nn.Module):
    """A voxel grid with per-voxel parameters (`params`: ``latents [V,F]``, ``colors [V,3]`` SH
    DC, and with ``VoxelConfig.lr_residual > 0`` per-Gaussian ``residuals [V,K,P]`` on the
    head's raw outputs: capacity for detail the network alone cannot fit; zero, or with
    `anchors` (world points and RGB colours [V,K,3] each) set so that each Gaussian starts at
    its point with its colour) and
    the shared network (`net`, `head`). `coords` and the grid geometry are buffers that
    the voxel strategy edits together with `params`."""

    def __init__(self, grid: SparseVoxelGrid, colors: Tensor, cfg: VoxelConfig, sh_degree: int,
                 seed: int = 0, anchors: tuple[Tensor, Tensor] | None = None):
        super().__init__()
        from ..backbone import SparseUNet  # spconv loads here, not at package import
        g = torch.Generator().manual_seed(seed)
        V = len(grid)
        self.cfg = cfg
        self.params = nn.ParameterDict({
            "latents": nn.Parameter(torch.randn(V, cfg.latent_dim, generator=g) * 0.1),
            "colors": nn.Parameter(RGB2SH(colors.float().clamp(0, 1))),
        })
        self.net = SparseUNet(cfg.latent_dim, cfg.width, cfg.levels)
        self.head = GaussianHead(self.net.out_channels + cfg.latent_dim, cfg, sh_degree, seed)
        if cfg.lr_residual > 0:
            res = torch.zeros(V, self.head.K, self.head.per)
            if anchors is not None:  # each Gaussian starts at one of its voxel's points
                centers, sizes = grid.world_centers()
                res = self.head.residuals_at(anchors[0], anchors[1], centers, sizes,
                                             self.params["colors"].detach())
            self.params["residuals"] = nn.Parameter(res)
        self.register_buffer("coords", grid.coords.long())
        self.register_buffer("origin", grid.origin.float())
        self.voxel_size = grid.voxel_size
        # None (world lattice) or [4,4]: the perspective lattice's reference frame; a buffer so
        # that it moves with the module, not persistent (checkpoints store it beside the net)
        self.register_buffer("ref_from_world", None if grid.ref_from_world is None
                             else grid.ref_from_world.float(), persistent=False)

    @property
    def grid(self) -> SparseVoxelGrid:
        return SparseVoxelGrid(self.coords, self.origin, self.voxel_size, self.ref_from_world)

    @property
    def n_voxels(self) -> int:
        return self.coords.shape[0]

    def forward(self) -> dict[str, Tensor]:
        """Decoded raw Gaussian parameters (see GaussianHead.forward)."""
        grid = self.grid
        lat = self.params["latents"]
        from ..backbone import sparse_tensor
        x = sparse_tensor(lat, self.coords, grid.spatial_shape)
        feats = torch.cat([self.net(x), lat], -1)
        centers, sizes = grid.world_centers()
        return self.head(feats, centers, sizes, self.params["colors"],
                         self.params["residuals"] if "residuals" in self.params else None)
