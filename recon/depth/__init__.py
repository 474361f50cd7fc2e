"""Dense depth by plane-sweep multi-view stereo, fused into a coloured point cloud.

`compute_depths(scene, cfg, device)` -> `DepthResult`; `write_depths` saves it;
`scene_with_points` hands the fused points to the trainer's initialization.
"""

from .config import MVS_PRESETS, MvsConfig, mvs_preset, wide_baseline
from .fusion import consistency_filter, fuse_depths
from .loss import depth_loss
from .metrics import depth_accuracy
from .mvs import DepthResult, compute_depths, scene_with_points, write_depths

__all__ = ["MVS_PRESETS", "MvsConfig", "mvs_preset", "wide_baseline", "consistency_filter", "fuse_depths",
           "depth_loss", "depth_accuracy", "DepthResult", "compute_depths",
           "scene_with_points", "write_depths"]
