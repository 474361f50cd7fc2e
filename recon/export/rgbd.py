"""`export --format depth`: every view's depth from the Gaussians, with its camera (and, when the
input is at hand, its photo and mask) as a nerfstudio-style RGB-D dataset.

The folder holds ``transforms.json`` (OpenGL camera-to-world ``transform_matrix`` and per-frame
``fl_x fl_y cx cy w h``, in the output frame; ``depth_file_path``, and ``file_path`` /
``mask_path`` where the photos are written; ``train_filenames`` ... as nerfstudio lists the
splits), ``depth/NAME.npy`` (float32 [H,W] camera z in the output frame's units, 0 where no
surface), ``images/NAME.png`` and ``masks/NAME.png``. Each map is aligned pixel for pixel with
the photo as training saw it (undistorted, at the workspace's size).

Depth is the mesher's (``mesh.render_view``): the alpha-normalized expected depth with sharpened
opacities, kept where the rendered alpha exceeds ``MeshConfig.alpha_surface``, where the pixel
does not blend a nearer and a farther surface (``MeshConfig.max_blend_offset``) and, when the
view has a mask, inside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ...data.atomic import check_output_parent, replace_folder, temp_folder_beside
from ...data.cameras import Cameras
from ...data.errors import VoxsplatError
from ...data.writers import camera_frame, save_png
from .frame import frame_scale, is_identity
from .mesh import MeshConfig, render_view, sharpened

GENERATOR = "voxsplat export --format depth"
"""The `generator` key of the transforms.json written here: a folder holding it may be replaced."""
TRANSFORMS = "transforms.json"
_NERFSTUDIO_SPLITS = {"train": "train_filenames", "val": "val_filenames", "test": "test_filenames"}


def check_output_folder(folder: Path) -> None:
    """Raise unless `folder` is absent, empty, or an earlier depth export (which is replaced)."""
    folder = Path(folder)
    check_output_parent(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise VoxsplatError(f"{folder}: exists and is not a folder; depth maps go to a folder, "
                            f"give a new folder name")
    if not any(folder.iterdir()):
        return
    try:
        earlier = json.loads((folder / TRANSFORMS).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        earlier = False
    if not earlier:
        raise VoxsplatError(f"{folder}: holds files that are not an earlier depth export, which "
                            f"this output would replace; give a new or empty folder")


def file_stem(name: str) -> str:
    """A view name as a relative path without '..' (names may hold subfolders)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "view"


def depth_map(splats: Mapping[str, Tensor], camera: Cameras, mask: Optional[Tensor],
              scale: float = 1.0, cfg: MeshConfig = MeshConfig(), backend: str = "auto") -> Tensor:
    """[H,W] float32 camera z of one view times `scale`, 0 where no surface (see module doc).

    `splats` must already be `sharpened` by ``cfg.opacity_power`` and on the render device."""
    depth, _, surface, _ = render_view(dict(splats), camera, mask, cfg, backend)
    return torch.where(surface, depth * scale, torch.zeros_like(depth)).float()


@torch.no_grad()
def write_rgbd(folder: Path, splats: Mapping[str, Tensor], cameras: Cameras, names: Sequence[str],
               splits: Mapping[str, Sequence[int]], out_from_world: Tensor,
               images: Optional[Sequence[Tensor]] = None, masks: Optional[Sequence[Tensor]] = None,
               cfg: MeshConfig = MeshConfig(), backend: str = "auto", progress: bool = False) -> Path:
    """Write every view's depth map, camera, and (when given) photo and mask to `folder`.

    Args:
        folder: the output; absent, empty or an earlier depth export (replaced when done).
        splats: Gaussians (raw parameters) in the scene frame, on the render device.
        cameras: C cameras in the scene frame, each rendered at its size.
        names: C view names (file names inside the folder).
        splits: split name -> view indices (written as nerfstudio's ``*_filenames``).
        out_from_world: [4,4] similarity to the output frame (depth scales with it).
        images: None or C uint8 [H,W,3] photos at the cameras' sizes; masks likewise bool [H,W].
    """
    folder = Path(folder)
    check_output_folder(folder)
    dev = splats["means"].device
    cams_out = Cameras(cameras.cam_from_world.double().cpu(), cameras.Ks.double().cpu(),
                       cameras.widths, cameras.heights)  # float64: georeferenced frames
    if not is_identity(out_from_world):
        cams_out = cams_out.transformed(out_from_world.double().cpu())
    cameras = cameras.to(dev)
    scale = frame_scale(out_from_world)
    splats = sharpened(dict(splats), cfg.opacity_power)
    tmp = temp_folder_beside(folder)
    try:
        frames = []
        for i in _progress(len(cameras), progress):
            stem = file_stem(names[i])
            mask = None if masks is None else masks[i]
            depth = depth_map(splats, cameras[i], mask, scale, cfg, backend)
            frame = camera_frame(cams_out, i)
            frame["depth_file_path"] = f"depth/{stem}.npy"
            (tmp / frame["depth_file_path"]).parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp / frame["depth_file_path"], depth.cpu().numpy())
            if images is not None:
                frame["file_path"] = f"images/{stem}.png"
                save_png(tmp / frame["file_path"], images[i].cpu().numpy())
            if mask is not None:
                frame["mask_path"] = f"masks/{stem}.png"
                save_png(tmp / frame["mask_path"], mask.cpu().numpy().astype(np.uint8) * 255)
            frames.append(frame)
        meta = {"generator": GENERATOR, "depth_unit_scale_factor": 1.0, "frames": frames}
        if images is not None:
            for split, ids in splits.items():
                if split in _NERFSTUDIO_SPLITS and len(ids):
                    meta[_NERFSTUDIO_SPLITS[split]] = [frames[i]["file_path"] for i in ids]
        (tmp / TRANSFORMS).write_text(json.dumps(meta, indent=1))
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _progress(count: int, progress: bool):
    if not progress:
        return range(count)
    from tqdm.auto import tqdm
    return tqdm(range(count), desc="depth", unit="view", leave=False)
