"""A sparse-convolution U-Net over a voxel grid (spconv, loaded through `_spconv`).

Level l works at stride 2^l: submanifold 3x3x3 residual blocks, a strided 2x2x2 convolution
down, and `SparseInverseConv3d` with the same `indice_key` back up, so the output has exactly
the input's voxels. Norms are LayerNorms over channels (per voxel), which behave the same in
training and evaluation and for any number of voxels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._spconv import spconv


def sparse_tensor(features: Tensor, coords: Tensor, spatial_shape: list[int]):
    """A batch-1 `SparseConvTensor` from `features [V,F]` and `coords [V,3]`."""
    sp = spconv()
    idx = torch.cat([coords.new_zeros(coords.shape[0], 1), coords], 1).int()
    return sp.SparseConvTensor(features, idx, spatial_shape, 1)


class ResBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))), both convolutions submanifold 3x3x3."""

    def __init__(self, channels: int, key: str):
        super().__init__()
        sp = spconv()
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.conv1 = sp.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=key)
        self.conv2 = sp.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=key)
        nn.init.zeros_(self.conv2.weight)  # blocks start as identities

    def forward(self, x):
        h = self.conv1(x.replace_feature(torch.nn.functional.silu(self.norm1(x.features))))
        h = self.conv2(h.replace_feature(torch.nn.functional.silu(self.norm2(h.features))))
        # h, not x: the same voxels, and h's `indice_dict` holds this level's neighbour pairs,
        # which the decoder's block at this level then reuses instead of recomputing them
        return h.replace_feature(x.features + h.features)


class SparseUNet(nn.Module):
    """`levels` resolutions, `width * 2^l` channels at level l (capped at 4x width).

    Args:
        in_channels: per-voxel input features.
        width: channels at the finest level; also the output channels.
        levels: number of resolutions (1 = no down-sampling).
    """

    def __init__(self, in_channels: int, width: int = 32, levels: int = 3):
        super().__init__()
        sp = spconv()
        ch = [width * min(2 ** l, 4) for l in range(levels)]
        self.stem = sp.SubMConv3d(in_channels, ch[0], 3, padding=1, bias=True, indice_key="subm0")
        self.enc = nn.ModuleList([ResBlock(c, f"subm{l}") for l, c in enumerate(ch)])
        self.down = nn.ModuleList([
            sp.SparseConv3d(ch[l], ch[l + 1], 2, stride=2, bias=False, indice_key=f"down{l}")
            for l in range(levels - 1)])
        self.up = nn.ModuleList([
            sp.SparseInverseConv3d(ch[l + 1], ch[l], 2, bias=False, indice_key=f"down{l}")
            for l in range(levels - 1)])
        self.dec = nn.ModuleList([ResBlock(c, f"subm{l}") for l, c in enumerate(ch[:-1])])
        self.out_norm = nn.LayerNorm(ch[0])
        self.out_channels = ch[0]

    def forward(self, x):
        x = self.stem(x)
        skips = []
        for l, block in enumerate(self.enc):
            x = block(x)
            if l < len(self.down):
                skips.append(x)
                x = self.down[l](x)
        for l in reversed(range(len(self.up))):
            x = self.up[l](x)
            x = self.dec[l](x.replace_feature(x.features + skips[l].features))
        return self.out_norm(x.features)
