"""The camera paths `voxsplat render` follows: made from a workspace's training views (`auto`,
orbit, arc, spiral, interp) or read from a camera path file in the input's frame."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..data.cameras import Cameras
from ..data.errors import VoxsplatError
from ..render.camera_paths import (covered_arc, default_arc, default_orbit, estimate_orbit,
                                   interpolate_path, keyframe_indices, spiral_path,
                                   through_views)
from . import workspace as wsp
from .representation.lattice import cameras_face_forward


PATH_KINDS = ("auto", "orbit", "arc", "spiral", "interp")
"""The camera paths `render` makes from the training views; anything else is a .json file."""
ORBIT_MIN_COVERAGE_DEG = 210.0
"""`--path auto` orbits all the way round where the training cameras cover at least this much
of the circle around what they look at: in their widest gap (at most 150 degrees) an orbit
faces surfaces its two neighbours saw within 75 degrees of face-on. The synthetic scene's 8
training views cover 222 degrees, DTU's 49 views 124."""


def auto_path_kind(cams: Cameras) -> tuple[str, str]:
    """`render --path auto` for the training cameras `cams`: (kind, why). "spiral" where they
    all face one way (photos of a facade, LLFF, DTU's 3 views), "orbit" where they surround
    the scene (`ORBIT_MIN_COVERAGE_DEG`), else "arc" over the part of the circle they saw
    (DTU's 49 views): an orbit would show what no photo saw."""
    if cameras_face_forward(cams.cam_from_world):
        return "spiral", "the training cameras face one way; --path orbit goes around"
    _, span = covered_arc(cams, estimate_orbit(cams))
    if span >= ORBIT_MIN_COVERAGE_DEG:
        return "orbit", ("the training cameras surround the scene; --path arc goes over part "
                         "of the circle")
    return "arc", (f"the training cameras cover {span:.0f} degrees around the scene; "
                   f"--path orbit goes all the way round")


DEFAULT_FRAMES = 120
MAX_FRAMES = 108_000
"""`--frames` above this (an hour at 30 fps) is refused: 1e8 frames ran out of memory building
the path, with advice about --scale."""


def path_cameras(rec: dict, kind: str, n_frames: Optional[int] = None,
                 dataparser_transforms: Optional[Path] = None):
    """The frames' cameras: (cam_from_world [F,4,4], Ks [F,3,3], width, height, fps or None).

    `kind`: auto (`auto_path_kind`), orbit, arc, spiral or interp (through the training views;
    `n_frames`, 120 when None) or a camera path file (`data.readers.camera_path`) in the
    input's frame, moved into the workspace's; `n_frames` then resamples a smooth path
    through its cameras.
    """
    if n_frames is not None and n_frames < (2 if kind in PATH_KINDS else 1):
        raise VoxsplatError(f"--frames must be at least {2 if kind in PATH_KINDS else 1}, got "
                            f"{n_frames}")
    if n_frames is not None and n_frames > MAX_FRAMES:
        raise VoxsplatError(f"--frames {n_frames}: at most {MAX_FRAMES} (an hour at 30 fps); "
                            f"render a long path in parts")
    cams = wsp.cameras_from_record(rec)
    train = [i for i, im in enumerate(rec["images"]) if im["split"] == "train"] or list(range(len(cams)))
    cams = cams[train]
    W, H = cams.size(0)
    if kind not in PATH_KINDS:
        return _file_path_cameras(rec, Path(kind), n_frames, cams.Ks[0], (W, H), dataparser_transforms)
    if dataparser_transforms is not None:
        raise VoxsplatError("--dataparser-transforms maps a nerfstudio camera path file; "
                            f"drop it for --path {kind}")
    n_frames = DEFAULT_FRAMES if n_frames is None else n_frames
    if kind == "auto":
        kind, why = auto_path_kind(cams)
        print(f"voxsplat: note: --path auto: {kind} ({why})", file=sys.stderr)
    elif kind in ("orbit", "arc") and cameras_face_forward(cams.cam_from_world):
        print(f"voxsplat: note: --path {kind}: the training cameras all face one way, so much "
              f"of this path looks at what no photo saw; --path spiral (what auto picks here) "
              f"stays in front of the scene", file=sys.stderr)
    if kind == "orbit":
        poses = default_orbit(cams, n_frames)
    elif kind == "arc":
        poses = default_arc(cams, n_frames)
    elif kind == "spiral":
        poses = spiral_path(cams.cam_from_world, n_frames)
    else:
        poses = through_views(cams.cam_from_world, n_frames)
    return poses.float(), cams.Ks[0].expand(len(poses), 3, 3).clone(), W, H, None


def _file_path_cameras(rec: dict, path: Path, n_frames: Optional[int], K, size,
                       dataparser_transforms: Optional[Path]):
    """`path_cameras` for a camera path file."""
    from ..data.readers.camera_path import read_camera_path
    if path.suffix.lower() != ".json":
        raise VoxsplatError(f"unknown path '{path}'; use {', '.join(PATH_KINDS)} or a camera "
                            f"path .json file (transforms.json layout, or nerfstudio's "
                            f"camera_path.json)")
    cp = read_camera_path(path, K, size, dataparser_transforms)
    if cp.in_nerfstudio_frame:
        print(f"voxsplat: note: {path} is a nerfstudio camera path, in nerfstudio's normalized "
              f"frame; if the frames miss the scene, add --dataparser-transforms "
              f"outputs/.../dataparser_transforms.json", file=sys.stderr)
    from .export.frame import world_from_input
    F = len(cp.cam_from_world)
    in_input = Cameras(cp.cam_from_world, cp.Ks, torch.full((F,), cp.size[0]), torch.full((F,), cp.size[1]))
    poses, Ks = in_input.transformed(world_from_input(rec)).cam_from_world, cp.Ks  # float64
    if n_frames is not None and n_frames != len(poses):  # a smooth path through the file's cameras
        if n_frames < len(poses):
            raise VoxsplatError(f"--frames {n_frames}: {path} has {len(poses)} cameras, and the "
                                f"path passes through each; give at least {len(poses)} frames, "
                                f"or leave --frames out to render its cameras as they are")
        keys = keyframe_indices(len(poses), n_frames).double()
        frames = torch.arange(n_frames, dtype=torch.float64)
        Ks = torch.from_numpy(np.stack([np.interp(frames, keys, k) for k in Ks.reshape(-1, 9).T.numpy()],
                                       -1)).reshape(n_frames, 3, 3)
        poses = interpolate_path(poses, n_frames)
    return poses.float(), Ks.float(), cp.size[0], cp.size[1], cp.fps
