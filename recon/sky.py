"""The learned sky of a run (`SkyConfig`): a latitude-longitude texture of colour logits,
optimized with the Gaussians, and where the workspace keeps it (`sky.pt`)."""

from __future__ import annotations

import math
import pickle

from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from ..data.atomic import atomic_path
from ..data.cameras import Cameras
from ..data.errors import VoxsplatError
from ..data.scene import Scene
from ..render.camera_paths import estimate_up
from ..render.sky import SkyMap, sky_frame, texture_roughness
from .config import SkyConfig

SKY_PT = "sky.pt"
FAR_QUANTILE = 0.95
"""The depth quantile that stands for a view's farthest content (`far_parallax`)."""


def wants_sky(scene: Scene, cfg: SkyConfig, train_ids: list[int],
              far_share: Optional[float] = None) -> bool:
    """Whether a run on `scene` learns a sky: `cfg.mode` on; auto and no training view has
    a mask (a mask says where the object is; what lies outside it is not sky); far, no mask,
    and the farthest content moves by at most `cfg.far_parallax` of the image width between
    the training views (`far_share`, from `far_parallax`; None: not known, no sky)."""
    masked = scene.masked(train_ids)
    if cfg.mode == "on" and masked:
        raise VoxsplatError(f"{scene.source}: sky.mode=on, but the training views have masks "
                            "(the object's silhouette: what lies outside it is not sky); "
                            "use --set sky.mode=off or auto, or move the masks away")
    if cfg.mode == "far":
        return not masked and far_share is not None and far_share <= cfg.far_parallax
    return cfg.mode == "on" or (cfg.mode == "auto" and not masked)


def far_parallax(cams: Cameras, depth_maps: list[Tensor], quantile: float = FAR_QUANTILE
                 ) -> Optional[float]:
    """How far the farthest content moves between the views of `cams` [C], as a share of the
    image width: for each view with depth (`depth_maps`, its [h,w] camera z, 0 = none, at
    any size), its `quantile` depth z; for each other view, the baseline across its optical
    axis b, and f * b / z / width; the largest over the pairs. A sky (a texture at infinity)
    models such content exactly when this is near 0. None where fewer than two views exist
    or none has depth."""
    if len(cams) < 2:
        return None
    centers, axes = cams.centers.double().cpu(), cams.optical_axes.double().cpu()
    share = None
    for i, depth in enumerate(depth_maps):
        z = depth[depth > 0].double()
        if z.numel() < 100:  # (too few matched pixels to say how far the content is)
            continue
        far = float(z.kthvalue(max(1, math.ceil(quantile * len(z)))).values)  # (any size)
        b = centers - centers[i]
        across = (b - (b @ axes[i])[:, None] * axes[i]).norm(dim=1)
        focal = float(cams.Ks[i, 0, 0])
        s = float(across.max()) * focal / far / cams.size(i)[0]
        share = s if share is None else max(share, s)
    return share


def depth_far_parallax(depth, view_ids) -> Optional[float]:
    """`far_parallax` of the depth stage's result `depth` (`recon.depth.DepthResult`) over
    its maps of the scene views `view_ids` (e.g. the training views)."""
    wanted = set(view_ids)
    views = [c for c, i in enumerate(depth.view_ids) if i in wanted]
    return far_parallax(depth.cameras[views], [depth.depth_map(c) for c in views])


class LearnedSky(torch.nn.Module):
    """Colour logits [h,2h,3] in the sky frame of the training cameras (up estimated from
    their orientations), started at the training photos' mean colour."""

    def __init__(self, logits: Tensor, sky_from_world: Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits)
        self.register_buffer("sky_from_world", sky_from_world)

    @staticmethod
    def create(cams: Cameras, mean_color: Tensor, resolution: int) -> "LearnedSky":
        if resolution < 2:
            raise VoxsplatError(f"sky.resolution must be at least 2, got {resolution}")
        up = estimate_up(cams.cam_from_world.cpu())
        start = torch.logit(mean_color.float().cpu().clamp(0.02, 0.98))
        logits = start.expand(resolution, 2 * resolution, 3).clone()
        return LearnedSky(logits.to(cams.device), sky_frame(up).to(cams.device))

    def map(self) -> SkyMap:
        """The sky as rendered now (differentiable in the logits)."""
        return SkyMap(torch.sigmoid(self.logits), self.sky_from_world)

    def roughness(self) -> Tensor:
        """How much neighbouring texels differ (`render.sky.texture_roughness`)."""
        return texture_roughness(torch.sigmoid(self.logits))


def write_sky(ws: Path, sky: SkyMap) -> Path:
    """Save `sky` as the workspace's sky.pt (atomically)."""
    path = Path(ws) / SKY_PT
    with atomic_path(path) as tmp:
        torch.save({"texture": sky.texture.detach().cpu(),
                    "sky_from_world": sky.sky_from_world.detach().cpu()}, tmp)
    return path


def read_sky(ws: Path) -> Optional[SkyMap]:
    """The workspace's sky, or None when its run learned none."""
    path = Path(ws) / SKY_PT
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        return SkyMap(d["texture"], d["sky_from_world"])
    except (OSError, RuntimeError, ValueError, EOFError, KeyError, TypeError, IndexError,
            pickle.UnpicklingError) as e:
        raise VoxsplatError(f"{path}: cannot read the learned sky ({str(e).splitlines()[0]}); "
                            f"re-run reconstruct, or delete it to go on without the sky") from None
