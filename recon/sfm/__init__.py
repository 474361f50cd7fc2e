"""Structure-from-motion with COLMAP (pycolmap, in-process): photos or a video -> posed Scene.

`run_sfm` poses a folder of photos; `load_or_run_sfm` also takes a video (frames are sampled
first) or an existing COLMAP model (read without SfM; `undistort_colmap` makes a distorted
one pinhole). This package is the one place that
imports pycolmap (lazily, in `colmap_steps`); without it, SfM raises a VoxsplatError that says
`pip install pycolmap`.
"""

from .config import SFM_PRESETS, SfmConfig, sfm_preset
from .progress import ProgressFn
from .run import (PartialRegistrationWarning, check_registration, is_current, load_or_run_sfm,
                  recorded_config, recorded_source, run_sfm, undistort_colmap)

__all__ = ["SFM_PRESETS", "PartialRegistrationWarning", "ProgressFn", "SfmConfig",
           "check_registration", "is_current", "load_or_run_sfm", "recorded_config", "recorded_source", "run_sfm", "sfm_preset", "undistort_colmap"]
