"""`voxsplat render`: a workspace's Gaussians along a camera path, to an mp4 or PNG frames."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..data.cameras import Cameras
from ..data.errors import VoxsplatError
from ..render.video import depth_to_rgb, write_frames, write_video
from . import pipeline
from . import workspace as wsp
from .engine import resolve_device
from .gaussians import render_splats, sh_degree_of
from .render_path import path_cameras
from .sky import read_sky


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")
"""What `render --out` may end in (libx264 in these containers); no suffix: PNG frames."""


@torch.no_grad()
def run_render(ws: Path, kind: str, n_frames: Optional[int], out: Path, depth: bool = False,
               device: str = "auto", fps: Optional[float] = None, scale: float = 1.0,
               progress: bool = False, dataparser_transforms: Optional[Path] = None,
               save_path: Optional[Path] = None) -> list[Path]:
    """`voxsplat render`: an mp4 along a camera path (and OUT_depth.mp4 with `depth`); an OUT
    without a suffix of letters is a folder of PNG frames instead (OUT_depth/ for depth). `kind` and
    `n_frames`: see `path_cameras`; `fps`: the path file's, else 30. `scale` resizes the
    frames (2: twice the width and height). Frames are encoded as they render; depth frames
    wait (float16) for the sequence's depth range. `save_path`: also write the frames' cameras,
    in the input's frame, as a camera path file that `--path` takes back (to edit a path)."""
    if not (math.isfinite(scale) and 0 < scale <= 8):
        raise VoxsplatError(f"--scale {scale}: expected a factor in (0, 8], e.g. 2 for twice "
                            f"the training views' width and height")
    from ..data.atomic import check_output_file, check_output_parent
    suffix = Path(out).suffix.lower()
    as_frames = not any(c.isalpha() for c in suffix)  # "frames", "render_0.5": folders
    if not as_frames and suffix not in VIDEO_SUFFIXES:
        raise VoxsplatError(f"--out {out}: render writes an H.264 video ({', '.join(VIDEO_SUFFIXES)}) "
                            f"or, for a name without a suffix, a folder of PNG frames; give "
                            f"{Path(out).with_suffix('.mp4')} or {Path(out).with_suffix('')}")
    (check_output_parent if as_frames else check_output_file)(out)
    if save_path is not None:
        from ..data.readers.camera_path import check_camera_path_target
        check_camera_path_target(save_path)
    dev = resolve_device(device)
    rec = wsp.open_workspace(ws)
    poses, Ks, W, H, file_fps = path_cameras(rec, kind, n_frames, dataparser_transforms)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise VoxsplatError(f"--fps {fps}: expected a frame rate > 0, e.g. 30")
    if as_frames:  # PNG folders replace earlier ones: never a workspace or data
        from ..data.atomic import check_replaceable
        check_replaceable(out)
        if depth:
            check_replaceable(depth_output(Path(out), True))
    fps = fps or file_fps or 30
    F = len(poses)
    path_cams = Cameras(poses, Ks, torch.full((F,), W), torch.full((F,), H)).scaled(scale)
    W, H = path_cams.size(0)
    splats = {k: v.to(dev) for k, v in pipeline.load_splats(ws).items()}
    sky = read_sky(ws)
    bg = torch.tensor(rec["background"], device=dev, dtype=torch.float32) if sky is None else sky.to(dev)
    depths = []

    def frames():
        for i in (_frame_progress(range(F)) if progress else range(F)):
            cam = path_cams[i:i + 1].to(dev)
            r = render_splats(splats, cam, sh_degree_of(splats), bg, rec["config"].get("backend", "auto"))
            if depth:
                d = r.depths[0, ..., 0] * (r.alphas[0, ..., 0] > 0.5)
                depths.append(d.half().cpu().numpy())
            yield (r.colors[0].clamp(0, 1) * 255).round().byte().cpu().numpy()

    write = (lambda p, fr: write_frames(p, fr)) if as_frames else (lambda p, fr: write_video(p, fr, fps=fps))
    write(out, frames())
    written = [Path(out)]
    dpath = depth_output(Path(out), as_frames)
    if not depth and dpath.exists():  # an earlier render's, beside a video it no longer matches
        print(f"voxsplat: note: {dpath} is an earlier render's depth; --depth renders it "
              f"again with this video", file=sys.stderr)
    if depth:
        valid = np.concatenate([d[d > 0].astype(np.float32) for d in depths]) if depths else np.zeros(0)
        near, far = (np.percentile(valid, [2, 98]) if valid.size else (0.0, 1.0))
        _remove_output(dpath)  # an earlier run's: a kill while encoding must not pair it with the new video
        write(dpath, (depth_to_rgb(d.astype(np.float32), float(near), float(far)) for d in depths))
        written.append(dpath)
    if save_path is not None:  # once the video stands: a failed render leaves no path behind
        from ..data.readers.camera_path import write_camera_path
        from .export.frame import input_from_world
        in_input = path_cams.transformed(input_from_world(rec).float())
        written.append(write_camera_path(save_path, in_input.cam_from_world, in_input.Ks, (W, H), fps))
    return written


def depth_output(out: Path, as_frames: bool) -> Path:
    """Where `run_render` writes the depth beside `out`: OUT_depth/ beside a folder of frames,
    else OUT_depth with OUT's suffix."""
    return out.with_name(out.name + "_depth" if as_frames else out.stem + "_depth" + out.suffix)


def _remove_output(path: Path) -> None:
    """Remove an earlier video, or PNG folder that voxsplat wrote (`check_replaceable`)."""
    if path.is_dir():
        import shutil
        from ..data.atomic import check_replaceable
        check_replaceable(path)
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _frame_progress(poses):
    from tqdm.auto import tqdm
    return tqdm(poses, desc="render", unit="frame", leave=False)
