"""LLFF forward-facing scenes: `poses_bounds.npy` next to `images/` or `images_<k>/`.

`poses_bounds.npy` is [N,17]: a row-major 3x5 matrix [R | t | hwf] per image followed by the
near/far depth bounds. R's columns are the camera's (down, right, back) axes in world
coordinates; (h, w, f) describe the full-resolution images. The bounds are not used.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import VoxsplatError
from ..images import list_images
from ..scene import Scene
from ..transforms import split_every
from .common import (check_finite, check_rotation, folder_masks, image_size, intrinsics,
                     load_images, make_cameras, require_one_size, unique_names)

POSES_FILE = "poses_bounds.npy"


def _load_poses(file: Path) -> np.ndarray:
    """[N,17] float64 array from poses_bounds.npy, checked for shape."""
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise VoxsplatError(f"{file}: cannot read ({str(e).splitlines()[0]}); check it is the "
                            f"LLFF poses_bounds.npy saved with numpy") from None
    if array.ndim != 2 or array.shape[1] != 17 or array.shape[0] == 0:
        raise VoxsplatError(f"{file}: expected an [N,17] array (3x5 pose + 2 bounds per image), "
                            f"got shape {array.shape}; regenerate it with LLFF's imgs2poses.py")
    return array.astype(np.float64)


def _folder_key(folder: Path) -> tuple[int, str]:
    """Sort key: `images` first, then `images_<k>` by increasing k (decreasing resolution)."""
    match = re.fullmatch(r"images_(\d+)", folder.name)
    return (0 if folder.name == "images" else int(match.group(1)) if match else 10**6, folder.name)


def find_image_folder(root: Path, count: int) -> Path:
    """The highest-resolution `images` / `images_<k>` folder with exactly `count` images."""
    folders = sorted((p for p in root.iterdir()
                      if p.is_dir() and (p.name == "images" or p.name.startswith("images_"))),
                     key=_folder_key)
    counts = {f: len(list_images(f)) for f in folders}
    for k, folder in enumerate(folders):
        if counts[folder] == count:
            passed = [f"{f.name}/ ({counts[f]})" for f in folders[:k] if counts[f]]
            if passed:  # e.g. a stray photo in images/: a smaller copy trains instead
                warnings.warn(f"{root / POSES_FILE}: {count} poses, so the images come from "
                              f"{folder.name}/; {', '.join(passed)} has another count (a stray "
                              f"or missing photo?) and, larger, is left out", stacklevel=3)
            return folder
    found = ", ".join(f"{f.name}/ has {n}" for f, n in counts.items()) or "no images/ folder"
    raise VoxsplatError(f"{root / POSES_FILE}: {count} poses but {found} images; put the "
                        f"{count} images in images/ (or images_<k>/)")


def camera_from_world(pose: np.ndarray) -> np.ndarray:
    """[4,4] OpenCV cam_from_world from an LLFF [3,5] (or [3,4]) pose."""
    down, right, back, t = pose[:, 0], pose[:, 1], pose[:, 2], pose[:, 3]
    world_from_cam = np.eye(4)
    world_from_cam[:3, :3] = np.stack([right, down, -back], axis=1)  # OpenCV x, y, z
    world_from_cam[:3, 3] = t
    return np.linalg.inv(world_from_cam)


def read_llff(path: str | Path, *, background: Sequence[float] = (1.0, 1.0, 1.0),
              image_folder: Optional[str] = None) -> Scene:
    """Read an LLFF scene.

    Args:
        path: the folder holding `poses_bounds.npy` (or that file).
        background: RGB in [0,1] for images with alpha (rare in LLFF).
        image_folder: sub-folder to read; default: the highest-resolution `images` or
            `images_<k>` folder with one image per pose.

    Returns:
        Scene in sorted-name order; intrinsics scaled from the full-resolution hwf to the
        images found; "test" = every 8th image (index % 8 == 0), "train" = the rest.
    """
    path = Path(path)
    root = path.parent if path.is_file() else path
    poses_file = root / POSES_FILE
    poses_bounds = _load_poses(poses_file)
    N = poses_bounds.shape[0]
    folder = root / image_folder if image_folder else find_image_folder(root, N)
    if not folder.is_dir():
        raise VoxsplatError(f"{folder}: no such image folder; check `image_folder`")
    paths = list_images(folder)
    if len(paths) != N:
        raise VoxsplatError(f"{poses_file}: {N} poses but {folder} has {len(paths)} images; "
                            f"keep one image per pose")
    images, masks = load_images(paths, background, capped=True)
    masks = folder_masks(paths, folder, [image_size(im) for im in images], masks)
    require_one_size(images, paths, "LLFF's poses_bounds.npy")
    W, H = image_size(images[0])
    cam_from_world, Ks = [], []
    for i, row in enumerate(poses_bounds):
        label = f"pose {i} ({paths[i].name})"
        check_finite(row, poses_file, label)
        pose = row[:15].reshape(3, 5)
        check_rotation(pose[:, :3], poses_file, label)
        h_full, w_full, focal = pose[:, 4]
        if h_full <= 0 or w_full <= 0 or focal <= 0:
            raise VoxsplatError(f"{poses_file}: {label} has invalid hwf ({h_full}, {w_full}, "
                                f"{focal}); height, width and focal must be positive")
        if abs(W / w_full - H / h_full) * max(W, H) > 1.0:
            raise VoxsplatError(f"{paths[i]}: image is {W}x{H} but {POSES_FILE} says the photos "
                                f"were {w_full:g}x{h_full:g} (a cropped or rotated copy?); give "
                                f"the images the poses were made from, or resized copies of them")
        cam_from_world.append(camera_from_world(pose))
        Ks.append(intrinsics(focal * W / w_full, focal * H / h_full, W / 2.0, H / 2.0))
    scene = Scene(images=images, names=unique_names(paths, folder),
                  cameras=make_cameras(cam_from_world, Ks, [(W, H)] * N), masks=masks,
                  background=tuple(float(c) for c in background), source=str(root))
    return split_every(scene, 8)
