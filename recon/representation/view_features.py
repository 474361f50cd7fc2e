"""Per-voxel input features read from the training photos (`voxel.image_features`).

Each voxel centre is projected into every training view and the photo's colour there is
sampled (from a copy shrunk by `scale`, so that a sample averages about a voxel's footprint).
Across the views that see the centre, the mean colour and its spread are the features: where
the photos agree (small spread) a surface likely lies at the voxel, where they disagree the
voxel is likely empty or occluded. The network reads them beside the learnable latents, so
what it learns on voxels the photos constrain carries over to voxels with similar evidence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_FEATURES = 7
"""Mean RGB (centred on 0), RGB standard deviation, fraction of views that see the centre."""


class ViewFeatures(nn.Module):
    """Photo-consistency features of world points, from C training views.

    Args:
        images: [C,3,h,w] float in [0,1], the views shrunk to (h, w).
        cam_from_world: [C,4,4] OpenCV world-to-camera transforms.
        Ks: [C,3,3] intrinsics for the shrunk (h, w) images.
    """

    def __init__(self, images: Tensor, cam_from_world: Tensor, Ks: Tensor):
        super().__init__()
        self.register_buffer("images", images.float(), persistent=False)
        self.register_buffer("cam_from_world", cam_from_world.float(), persistent=False)
        self.register_buffer("Ks", Ks.float(), persistent=False)

    @staticmethod
    def from_views(images: list[Tensor], cam_from_world: Tensor, Ks: Tensor,
                   scale: float = 0.25) -> "ViewFeatures":
        """From uint8 [H,W,3] photos of one size, their cameras, shrunk by `scale` (area)."""
        imgs = torch.stack([im.permute(2, 0, 1).float() / 255.0 for im in images])
        H, W = imgs.shape[-2:]
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        small = F.interpolate(imgs, size=(h, w), mode="area")
        Ks = Ks.clone().float()
        Ks[:, 0] *= w / W
        Ks[:, 1] *= h / H
        return ViewFeatures(small, cam_from_world, Ks)

    def forward(self, points: Tensor) -> Tensor:
        """[P,N_FEATURES] features of world `points [P,3]` (no gradient flows to them)."""
        pts = points.detach().float()
        rot, trans = self.cam_from_world[:, :3, :3], self.cam_from_world[:, :3, 3]
        cam = pts[None] @ rot.transpose(1, 2) + trans[:, None]  # [C,P,3]
        z = cam[..., 2]
        front = z > 1e-6
        uv = cam[..., :2] / z.clamp_min(1e-6)[..., None]
        px = uv[..., 0] * self.Ks[:, 0, 0, None] + self.Ks[:, 0, 2, None]
        py = uv[..., 1] * self.Ks[:, 1, 1, None] + self.Ks[:, 1, 2, None]
        h, w = self.images.shape[-2:]
        inside = front & (px >= 0) & (px <= w) & (py >= 0) & (py <= h)
        grid = torch.stack([2 * px / w - 1, 2 * py / h - 1], -1)[:, :, None]  # [C,P,1,2]
        grid = torch.where(inside[..., None, None], grid, torch.zeros_like(grid))
        rgb = F.grid_sample(self.images, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)[..., 0].permute(0, 2, 1)  # [C,P,3]
        wgt = inside.float()[..., None]
        n = wgt.sum(0)
        mean = (wgt * rgb).sum(0) / n.clamp_min(1)
        var = (wgt * (rgb - mean) ** 2).sum(0) / n.clamp_min(1)
        return torch.cat([mean - 0.5, var.add(1e-4).sqrt(), n / len(self.images)], -1)
