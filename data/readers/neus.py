"""DTU / NeuS scenes: `cameras_sphere.npz` with `image/` and optional `mask/` folders.

`world_mat_i` is the projection K[R|t] (as a 4x4) of image i in the input frame and
`scale_mat_i` maps the unit sphere around the object to the input frame. As in NeuS, the
scene is read in the normalized frame (P = world_mat @ scale_mat) and `world_from_input`
records inverse(scale_mat).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import VoxsplatError
from ..images import list_images, read_mask
from ..scene import Scene
from ..transforms import split_every
from .common import (check_finite, fit_mask, image_size, load_images, make_cameras,
                     unique_names, warn_empty_masks)

CAMERAS_FILE = "cameras_sphere.npz"
# DTU sparse-view protocol (RegNeRF, DNGaussian, ...) for the 49-image scans.
DTU_TRAIN_IDS = (25, 22, 28)
DTU_TEST_IDS = (1, 2, 9, 10, 11, 12, 14, 15, 23, 24, 26, 27, 29, 30, 31, 32, 33, 34, 35, 41, 42,
                43, 45, 46, 47)
# Snap the image downscale to 1/k when the size implied by the principal point is within
# this relative distance of k times the image size.
_SNAP_TOLERANCE = 0.15


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a 3x4 projection P ~ K [R | -R c] into its parts (what cv2's
    decomposeProjectionMatrix does), via an RQ decomposition of P's left 3x3 block.

    Returns:
        K [3,3] upper triangular with positive diagonal and K[2,2] = 1, R [3,3] rotation
        (cam_from_world), c [3] camera centre in world coordinates.
    """
    P = np.asarray(P, dtype=np.float64)[:3, :4]
    M = P[:, :3]
    if np.linalg.det(M) < 0:  # P is only defined up to scale: pick the sign with det(R) = +1
        P, M = -P, -M
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ M).T)  # M = (flip r^T flip) (flip q^T) = K R
    K = flip @ r.T @ flip
    R = flip @ q.T
    signs = np.diag(np.where(np.diag(K) < 0, -1.0, 1.0))
    K, R = K @ signs, signs @ R
    center = -np.linalg.solve(M, P[:, 3])
    return K / K[2, 2], R, center


def image_scale(K: np.ndarray, size: tuple[int, int]) -> float:
    """Factor from K's image size to the actual `size` (width, height).

    The files do not say K's image size. It is taken as twice the principal point, and the
    ratio snaps to 1/k for an integer k within 15% (e.g. DTU's 1600x1200 read at 400x300 gives
    0.25). A principal point inside the image that is not near its centre on both axes by the
    same factor (a crop's, e.g. at 30% and 40% of the image) is K's own: 1.0.
    """
    W, H = size
    rx, ry = 2.0 * K[0, 2] / W, 2.0 * K[1, 2] / H  # original / actual, on each axis
    ratio = 0.5 * (rx + ry)
    inside = 0.0 < K[0, 2] < W and 0.0 < K[1, 2] < H
    if inside and (ratio < 1.0 + _SNAP_TOLERANCE or abs(rx - ry) > _SNAP_TOLERANCE * ratio):
        return 1.0
    k = max(1, round(ratio))
    return 1.0 / k if abs(ratio - k) <= _SNAP_TOLERANCE * k else 1.0 / ratio


def _load_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as data:
            return {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
    except (OSError, ValueError, EOFError) as e:
        raise VoxsplatError(f"{file}: cannot read ({str(e).splitlines()[0]}); check it is the "
                            f"NeuS cameras_sphere.npz saved with numpy") from None


def _sub_folder(root: Path, names: Sequence[str]) -> Optional[Path]:
    """The first of `names` that is a folder inside `root`, or None."""
    return next((root / n for n in names if (root / n).is_dir()), None)


def _matrix(mats: dict, key: str, file: Path, label: str) -> np.ndarray:
    if key not in mats:
        raise VoxsplatError(f"{file}: no '{key}' for {label}; every image needs a world_mat "
                            f"(or remove the extra image)")
    m = mats[key]
    if m.shape not in ((4, 4), (3, 4)):
        raise VoxsplatError(f"{file}: '{key}' has shape {m.shape}, expected 4x4; fix the file")
    check_finite(m, file, label)
    return m if m.shape == (4, 4) else np.concatenate([m, [[0.0, 0.0, 0.0, 1.0]]])


def _camera_numbers(paths: Sequence[Path], mats: dict, file: Path) -> list[int]:
    """The N of each image's `world_mat_N`: the number its file is named by (000005.png: 5,
    as NeuS and IDR name them, so a deleted view shifts no camera), else its position where
    the file has exactly one camera per image.

    Raises:
        VoxsplatError: names that are not numbers, and another count of cameras.
    """
    if all(p.stem.isdigit() for p in paths):
        return [int(p.stem) for p in paths]
    cameras = sum(1 for k in mats if k.startswith("world_mat_") and k[len("world_mat_"):].isdigit())
    if cameras != len(paths):
        raise VoxsplatError(f"{file}: {cameras} cameras for {len(paths)} images, whose names "
                            f"are not their cameras' numbers; name each image after its "
                            f"world_mat_N (000005.png for world_mat_5)")
    return list(range(len(paths)))


def _scale_mat(mats: dict, numbers: Sequence[int], file: Path) -> np.ndarray:
    """The one `scale_mat` of the scene's cameras `numbers` (identity when absent); all must
    agree."""
    scale_mats = [mats.get(f"scale_mat_{i}", np.eye(4)) for i in numbers]
    for i, m in zip(numbers, scale_mats):
        check_finite(m, file, f"scale_mat_{i}")
        if m.shape != (4, 4) or not np.allclose(m, scale_mats[0], rtol=1e-5, atol=1e-6):
            raise VoxsplatError(f"{file}: scale_mat_{i} differs from scale_mat_0; one scene "
                                f"needs one normalization, make them equal")
    if abs(np.linalg.det(scale_mats[0][:3, :3])) < 1e-12:
        raise VoxsplatError(f"{file}: scale_mat_0 is singular; fix the normalization")
    return scale_mats[0]


def _read_masks(root: Path, image_paths: list[Path],
                images: Sequence[torch.Tensor]) -> Optional[tuple[torch.Tensor, ...]]:
    """Masks from `mask/` (`read_mask`), matched to images in sorted order; resized copies
    are resized (`common.fit_mask`)."""
    folder = _sub_folder(root, ("mask", "masks"))
    if folder is None:
        return None
    mask_paths = list_images(folder)
    if len(mask_paths) != len(image_paths):
        raise VoxsplatError(f"{folder}: {len(mask_paths)} masks for {len(image_paths)} images; "
                            f"give one mask per image (sorted names pair them) or remove {folder}")
    masks = tuple(fit_mask(read_mask(p), image_size(img), p)
                  for p, img in zip(mask_paths, images))
    warn_empty_masks(masks, [p.name for p in mask_paths], folder)
    return masks


def read_neus(path: str | Path, *, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Scene:
    """Read a NeuS / DTU scene in its unit-sphere frame.

    Args:
        path: the folder holding `cameras_sphere.npz` (or that file).
        background: RGB in [0,1] for images with alpha.

    Returns:
        Scene with masks when `mask/` exists. Intrinsics are scaled to the actual image size
        (see `image_scale`). Splits: the DTU 3-view protocol for 49 images, else every 8th
        image is "test".
    """
    path = Path(path)
    root = path.parent if path.is_file() else path
    file = root / CAMERAS_FILE
    mats = _load_npz(file)
    image_folder = _sub_folder(root, ("image", "images"))
    if image_folder is None or not list_images(image_folder):
        raise VoxsplatError(f"{root}: no images in image/; put the images named in order "
                            f"(000000.png, ...) there")
    paths = list_images(image_folder)
    images, alpha_masks = load_images(paths, background)
    numbers = _camera_numbers(paths, mats, file)
    scale_mat = _scale_mat(mats, numbers, file)
    cam_from_world, Ks = [], []
    for i, p, img in zip(numbers, paths, images):
        world_mat = _matrix(mats, f"world_mat_{i}", file, f"image {i} ({p.name})")
        K, R, center = decompose_projection((world_mat @ scale_mat)[:3, :4])
        K[:2] *= image_scale(K, image_size(img))
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R, -R @ center
        cam_from_world.append(pose)
        Ks.append(K)
    masks = _read_masks(root, paths, images)
    if masks is not None and alpha_masks is not None:
        warnings.warn(f"{root}: the masks come from mask/; the images' transparency is "
                      f"composited on the background and not used as masks", stacklevel=2)
    scene = Scene(images=images, names=unique_names(paths, image_folder),
                  cameras=make_cameras(cam_from_world, Ks, [image_size(img) for img in images]),
                  masks=masks if masks is not None else alpha_masks,
                  world_from_input=torch.from_numpy(np.linalg.inv(scale_mat)),
                  background=tuple(float(c) for c in background), source=str(root))
    if len(scene) == 49:
        return scene.with_splits({"train": DTU_TRAIN_IDS, "test": DTU_TEST_IDS})
    return split_every(scene, 8)
