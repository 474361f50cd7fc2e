"""Writers for scenes in formats other tools read (NeRF/nerfstudio transforms.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .atomic import atomic_open, atomic_path
from .cameras import Cameras
from .scene import Scene

# OpenCV (x right, y down, z forward) <-> OpenGL/Blender (x right, y up, z back) camera axes.
_CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def write_points_ply(path: Path, points: torch.Tensor, colors: torch.Tensor | None = None,
                     normals: torch.Tensor | None = None) -> None:
    """A coloured point cloud PLY (x y z float32, [nx ny nz float32,] red green blue uint8),
    written atomically."""
    from plyfile import PlyData, PlyElement
    pts = points.detach().cpu().numpy().astype(np.float32)
    cols = (np.full_like(pts, 0.5) if colors is None else colors.detach().cpu().numpy())
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4")]
    if normals is not None:
        fields += [("nx", "f4"), ("ny", "f4"), ("nz", "f4")]
    v = np.empty(len(pts), dtype=fields + [("red", "u1"), ("green", "u1"), ("blue", "u1")])
    v["x"], v["y"], v["z"] = pts.T
    if normals is not None:
        v["nx"], v["ny"], v["nz"] = normals.detach().cpu().numpy().astype(np.float32).T
    c = np.clip(np.round(cols * 255), 0, 255).astype(np.uint8)
    v["red"], v["green"], v["blue"] = c.T
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp))


def write_blender_dataset(scene: Scene, folder: Path) -> Path:
    """Write `scene` as PNGs + transforms_{split}.json (+ masks/, points.ply) in `folder`.

    Images are written as they are (already composited); masks go to ``masks/`` through
    nerfstudio's per-frame ``mask_path``; cameras are written as OpenGL camera-to-world with
    per-frame intrinsics (fl_x, fl_y, cx, cy, w, h); points go to ``points.ply``, referenced
    by nerfstudio's ``ply_file_path`` key.

    Returns:
        `folder`.
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    extra = {}
    if scene.points is not None:
        write_points_ply(folder / "points.ply", scene.points, scene.point_colors)
        extra["ply_file_path"] = "points.ply"
    for split, ids in scene.splits.items():
        if not ids:  # no file for an empty split: its reader wants frames in every file
            continue
        frames = []
        for i in ids:
            name = f"images/{scene.names[i]}.png"
            save_png(folder / name, scene.images[i].cpu().numpy())
            frame = {"file_path": name, **camera_frame(scene.cameras, i)}
            if scene.masks is not None:
                frame["mask_path"] = f"masks/{scene.names[i]}.png"
                save_png(folder / frame["mask_path"], scene.masks[i].cpu().numpy().astype(np.uint8) * 255)
            frames.append(frame)
        with atomic_open(folder / f"transforms_{split}.json", "w") as f:
            json.dump({**extra, "frames": frames}, f, indent=1)
    return folder


def camera_frame(cameras: Cameras, i: int) -> dict:
    """transforms.json keys of camera i: its OpenGL camera-to-world `transform_matrix` and
    intrinsics (fl_x, fl_y, cx, cy, w, h), in the cameras' precision."""
    world_from_cam = cameras[i].world_from_cam[0] @ _CV_TO_GL.to(cameras.cam_from_world)
    K = cameras.Ks[i]
    W, H = cameras.size(i)
    return {"transform_matrix": world_from_cam.tolist(), "fl_x": float(K[0, 0]),
            "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]), "w": W, "h": H}


def save_png(path: Path, array: np.ndarray) -> None:
    """A uint8 image or mask array as a PNG, atomically (its folder made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
