"""NeRF / Blender `transforms.json` scenes (NeRF-Synthetic, instant-ngp, nerfstudio).

Poses are Blender/OpenGL camera-to-world (x right, y up, z back); they become OpenCV
`cam_from_world` by flipping the camera's y and z axes. Intrinsics come from `camera_angle_x`
(and optionally `camera_angle_y`) or from `fl_x`, `fl_y`, `cx`, `cy` in pixels for an image
of `w` x `h`; per-frame keys override the top-level ones. Lens distortion (nerfstudio's
`k1 k2 k3 k4 p1 p2` with `camera_model` OPENCV or OPENCV_FISHEYE) is removed on reading: the
image (and mask) is resampled onto a pinhole camera of the same size (see `lens`).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..errors import VoxsplatError
from ..images import IMAGE_EXTENSIONS, read_depth, read_mask, stored_size
from ..scene import Scene
from ..transforms import split_every
from .common import (check_finite, check_rotation, fit_depth, fit_mask, folder_masks,
                     image_size, intrinsics, load_images, make_cameras, require_one_size,
                     resizing_as_decoded, scale_intrinsics, unique_names, warn_empty_masks)
from .lens import LENS_KEYS, NEGLIGIBLE_PX, lens_of, max_shift_px, pinhole_for, undistort_image

SPLITS = ("train", "val", "test")
_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y",
                   *LENS_KEYS)
# OpenGL camera axes (x right, y up, z back) -> OpenCV (x right, y down, z forward).
_OPENCV_FROM_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def find_transforms(folder: Path) -> list[tuple[Optional[str], Path]]:
    """The transforms files of a folder: per-split files if any, else `transforms.json`.

    Returns:
        (split name or None, file) pairs; empty when the folder has none.
    """
    per_split = [(s, folder / f"transforms_{s}.json") for s in SPLITS]
    per_split = [(s, f) for s, f in per_split if f.is_file()]
    if per_split:
        return per_split
    single = folder / "transforms.json"
    return [(None, single)] if single.is_file() else []


def _read_json(path: Path) -> dict[str, Any]:
    """Parse a transforms file and check it has a non-empty `frames` list."""
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VoxsplatError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); "
                            f"fix the file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VoxsplatError(f"{path}: cannot read the file ({e}); check it is readable") from None
    if not isinstance(meta, dict):
        raise VoxsplatError(f"{path}: expected a JSON object with 'frames'; fix the file")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        what = "no 'frames' field" if "frames" not in meta else "an empty or invalid 'frames'"
        raise VoxsplatError(f"{path}: {what}; add a list of frames with 'file_path' and "
                            f"'transform_matrix'")
    return meta


def _frame_label(index: int, frame: dict) -> str:
    file_path = frame.get("file_path") if isinstance(frame, dict) else None
    return f"frame {index} ({file_path})" if file_path else f"frame {index}"


def _find_image(root: Path, file_path: str) -> Optional[Path]:
    """A frame's image from its `file_path`, with or without extension, also with its
    backslashes read as slashes (a file written on Windows); None if absent."""
    suffixes = IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)
    for written in dict.fromkeys([file_path, file_path.replace("\\", "/")]):
        base = root / written
        for candidate in [base] + [base.with_name(base.name + ext) for ext in suffixes]:
            if candidate.is_file():
                return candidate
    return None


def _image_path(root: Path, file_path: str, source: Path, label: str) -> Path:
    """Resolve a frame's `file_path`, with or without its extension."""
    found = _find_image(root, file_path)
    if found is None:
        raise VoxsplatError(f"{source}: {label}: image '{file_path}' not found in {root} (also "
                            f"tried adding .png/.jpg); fix 'file_path' or add the image")
    return found


def _split_is_absent(source: Path) -> bool:
    """True when none of a transforms file's images exist (e.g. a dataset shipped without val/)."""
    frames = _read_json(source)["frames"]
    return not any(isinstance(f, dict) and "file_path" in f
                   and _find_image(source.parent, str(f["file_path"])) is not None
                   for f in frames)


def _camera_from_world(frame: dict, source: Path, label: str) -> np.ndarray:
    """[4,4] OpenCV cam_from_world from a frame's OpenGL `transform_matrix`."""
    if "transform_matrix" not in frame:
        raise VoxsplatError(f"{source}: {label} has no 'transform_matrix'; every frame needs a "
                            f"4x4 camera-to-world pose")
    try:
        matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except (TypeError, ValueError):
        matrix = np.zeros(0)
    if matrix.shape == (3, 4):
        matrix = np.concatenate([matrix, [[0.0, 0.0, 0.0, 1.0]]])
    if matrix.shape != (4, 4):
        raise VoxsplatError(f"{source}: {label}: 'transform_matrix' must be a 4x4 list of numbers, "
                            f"got shape {matrix.shape}; fix that frame")
    check_finite(matrix, source, label)
    check_rotation(matrix[:3, :3], source, label)
    return np.linalg.inv(_without_scale(matrix, source, label) @ _OPENCV_FROM_OPENGL)


def _without_scale(matrix: np.ndarray, source: Path, label: str) -> np.ndarray:
    """`matrix` [4,4] with the scale of its rotation block removed (a Blender camera object
    scaled by other than 1 writes it in): the centres, paths and unseen views need a rigid
    pose, though the projection looks right either way. A warning says so.

    Raises:
        VoxsplatError: the block is skewed (no rotation and scale).
    """
    rotation = matrix[:3, :3]
    scale = np.linalg.norm(rotation, axis=0)
    if np.abs(scale - 1).max() <= 1e-4:
        return matrix
    unit = rotation / scale
    if np.abs(unit.T @ unit - np.eye(3)).max() > 1e-3:
        raise VoxsplatError(f"{source}: {label}: 'transform_matrix' is skewed (its 3x3 block is "
                            f"no rotation times a scale); fix that frame")
    warnings.warn(f"{source}: camera poses with a scale in their rotation (a scaled camera "
                  f"object?) are taken without it", stacklevel=4)
    out = matrix.copy()
    out[:3, :3] = unit
    return out


def _intrinsics(params: dict, size: tuple[int, int], source: Path, label: str) -> np.ndarray:
    """[3,3] K for an image of `size` (width, height) from NeRF/instant-ngp keys."""
    W, H = size
    sx = W / float(params["w"]) if params.get("w") else None
    sy = H / float(params["h"]) if params.get("h") else None
    sx, sy = (sx or sy or 1.0), (sy or sx or 1.0)  # one of w/h given: a uniform resize
    if params.get("w") and params.get("h") and abs(sx - sy) * max(W, H) > 1.0:
        raise VoxsplatError(f"{source}: {label}'s image is {W}x{H} but its 'w'/'h' say "
                            f"{float(params['w']):g}x{float(params['h']):g} (a cropped or rotated "
                            f"copy?); give the images the file was made from, or resized copies")
    if params.get("fl_x") is not None:
        fx = float(params["fl_x"]) * sx
    elif params.get("camera_angle_x") is not None:
        fx = 0.5 * W / math.tan(0.5 * float(params["camera_angle_x"]))
    else:
        raise VoxsplatError(f"{source}: {label} has no 'camera_angle_x' or 'fl_x'; add the "
                            f"horizontal field of view (radians) or the focal length in pixels")
    if params.get("fl_y") is not None:
        fy = float(params["fl_y"]) * sy
    elif params.get("camera_angle_y") is not None:
        fy = 0.5 * H / math.tan(0.5 * float(params["camera_angle_y"]))
    else:
        fy = fx * (sy / sx)
    cx = float(params["cx"]) * sx if params.get("cx") is not None else W / 2.0
    cy = float(params["cy"]) * sy if params.get("cy") is not None else H / 2.0
    K = intrinsics(fx, fy, cx, cy)
    if not np.all(np.isfinite(K)) or fx <= 0 or fy <= 0:
        raise VoxsplatError(f"{source}: {label} has invalid intrinsics (fx={fx}, fy={fy}); "
                            f"fix 'camera_angle_x' / 'fl_x'")
    return K


def _frame_intrinsics(frame, size: tuple[int, int]) -> np.ndarray:
    """K of `frame`'s image as loaded at `size`: from its keys at the size it is stored at,
    then scaled to `size` per axis where it was resized as decoded (`decode_max_side`,
    `decode_downscale`), as `Cameras.scaled` scales a full-size load: the field of view alone
    gave fy from the rounded width."""
    stored = stored_size(frame.path) if resizing_as_decoded() else None
    if stored is None or tuple(stored) == tuple(size):
        return _intrinsics(frame.params, size, frame.source, frame.label)
    return scale_intrinsics(_intrinsics(frame.params, stored, frame.source, frame.label), stored,
                            size, frame.path, frame.label)


@dataclass(frozen=True)
class _Frame:
    """One parsed frame: its image, OpenCV pose [4,4], intrinsic keys and where it came from."""

    path: Path
    cam_from_world: np.ndarray
    params: dict
    source: Path
    label: str
    mask: Optional[Path] = None
    """nerfstudio's per-frame `mask_path`, if any (overrides the alpha channel)."""
    depth: Optional[Path] = None
    """nerfstudio's per-frame `depth_file_path`, if any."""
    depth_scale: float = 1e-3
    """The file's `depth_unit_scale_factor` (nerfstudio's default: millimetres to metres)."""


def _parse_frames(source: Path) -> tuple[list[_Frame], bool]:
    """Every frame of one transforms file.

    Returns:
        The frames, and whether their intrinsics are global pixel values (a top-level
        `fl_x` without `w`/`h`), which only make sense for one image size.
    """
    meta = _read_json(source)
    root = source.parent
    global_params = {k: meta[k] for k in _INTRINSIC_KEYS if k in meta}
    depth_scale = _depth_scale(meta, source)
    frames = []
    pixel_focal_global = "fl_x" in meta and "w" not in meta
    for index, frame in enumerate(meta["frames"]):
        label = _frame_label(index, frame)
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise VoxsplatError(f"{source}: {label} has no 'file_path'; every frame needs the "
                                f"image path relative to {root}")
        params = {**global_params, **{k: frame[k] for k in _INTRINSIC_KEYS if k in frame}}
        mask = (_image_path(root, str(frame["mask_path"]), source, label + " mask")
                if frame.get("mask_path") else None)
        depth = None
        if frame.get("depth_file_path"):
            depth = root / str(frame["depth_file_path"])
            if not depth.is_file():
                raise VoxsplatError(f"{source}: {label}: depth map '{frame['depth_file_path']}' "
                                    f"not found in {root}; fix 'depth_file_path' or remove it")
        frames.append(_Frame(_image_path(root, str(frame["file_path"]), source, label),
                             _camera_from_world(frame, source, label), params, source, label, mask,
                             depth, depth_scale))
        if any(k in frame for k in ("fl_x", "camera_angle_x")):
            pixel_focal_global = False
    return frames, pixel_focal_global


def read_blender(path: str | Path, *, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Scene:
    """Read a NeRF-style scene.

    Args:
        path: a folder with `transforms_{train,val,test}.json` or `transforms.json`, or one
            such file (a `transforms_<split>.json` file loads only that split).
        background: RGB in [0,1] that RGBA images are composited on; alpha becomes the mask.

    Returns:
        Scene with splits from the per-split files, or for one `transforms.json` from its
        nerfstudio ``*_filenames`` lists (`_listed_splits`), else every 8th image (by sorted
        name) as "test" and the rest as "train". In a folder with several
        split files, a split none of whose images exist is skipped with a warning, and
        `transforms_val.json` gives the "test" split where there is no `transforms_test.json`.
    """
    path = Path(path)
    files = find_transforms(path) if path.is_dir() else [(_split_of(path), path)]
    if not files:
        raise VoxsplatError(f"{path}: no transforms.json or transforms_{{train,val,test}}.json; "
                            f"add one")
    frames: list[_Frame] = []
    spans: dict[Optional[str], range] = {}
    one_size: list[range] = []
    for split, source in files:
        if len(files) > 1 and _split_is_absent(source):
            warnings.warn(f"{source}: none of its images exist; the '{split}' split is skipped",
                          stacklevel=2)
            continue
        parsed, pixel_focal_global = _parse_frames(source)
        spans[split] = range(len(frames), len(frames) + len(parsed))
        frames += parsed
        if pixel_focal_global:
            one_size.append(spans[split])
    if not frames:
        raise VoxsplatError(f"{path}: none of the images listed in its transforms files exist; "
                            f"put them next to the JSON files at their 'file_path'")
    paths = [f.path for f in frames]
    images, masks = load_images(paths, background, capped=True)
    masks = _frame_masks(frames, images, masks)
    depths = _frame_depths(frames, images)
    for span in one_size:
        require_one_size([images[i] for i in span], [paths[i] for i in span],
                         "a top-level 'fl_x' without 'w'/'h'")
    Ks = [_frame_intrinsics(f, image_size(img)) for f, img in zip(frames, images)]
    images, masks, depths, Ks = _undistorted(frames, images, masks, depths, Ks)
    root = path if path.is_dir() else path.parent
    scene = Scene(images=images, names=unique_names(paths, root),
                  cameras=make_cameras([f.cam_from_world for f in frames], Ks,
                                       [image_size(img) for img in images]),
                  masks=masks, depths=depths, background=tuple(float(c) for c in background),
                  source=str(path),
                  **_points(files))
    if list(spans) == [None]:
        listed = _listed_splits(files[0][1], frames)
        return scene.with_splits(listed) if listed else split_every(scene, 8)
    if "test" not in spans and "val" in spans:  # the views measured, as in `_listed_splits`
        spans["test"] = spans.pop("val")
    return scene.with_splits({split: tuple(span) for split, span in spans.items()})


def _listed_splits(source: Path, frames: list[_Frame]) -> Optional[dict[str, tuple[int, ...]]]:
    """Splits from nerfstudio's ``train_filenames`` / ``val_filenames`` / ``test_filenames``
    (each a list of frames' `file_path`); None when the file has none. The views measured are
    ``test``: ``val_filenames`` serve as ``test`` when no ``test_filenames`` is given."""
    meta = _read_json(source)
    keys = {s: f"{s}_filenames" for s in SPLITS if meta.get(f"{s}_filenames")}
    if not keys:
        return None
    if "test" not in keys and "val" in keys:
        keys["test"] = keys.pop("val")
    index = {f.path.resolve(): i for i, f in enumerate(frames)}
    splits = {}
    for split, key in keys.items():
        entries = meta[key]
        if not isinstance(entries, list):
            raise VoxsplatError(f"{source}: '{key}' must be a list of file paths; fix the file")
        ids = []
        for entry in entries:
            found = _find_image(source.parent, str(entry))
            i = index.get(found.resolve()) if found is not None else None
            if i is None:
                raise VoxsplatError(f"{source}: '{key}' lists '{entry}', which is not the "
                                    f"'file_path' of any frame; fix the list")
            ids.append(i)
        splits[split] = tuple(ids)
    return splits


def _undistorted(frames: list[_Frame], images, masks, depths, Ks):
    """Images, masks, depth maps and K with each frame's lens distortion resampled away (see
    `lens`); frames without (or with negligible) distortion are kept as they are."""
    images, Ks = list(images), list(Ks)
    masks = list(masks) if masks is not None else None
    depths = list(depths) if depths is not None else None
    pinholes: dict[tuple, np.ndarray] = {}  # frames that share a camera share its pinhole
    for i, f in enumerate(frames):
        try:
            lens = lens_of(f.params)
        except ValueError as e:
            raise VoxsplatError(f"{f.source}: {f.label}: {e}; fix the lens keys") from None
        if lens is None:
            continue
        W, H = image_size(images[i])
        K = torch.from_numpy(Ks[i])
        if max_shift_px(K, lens, W, H) <= NEGLIGIBLE_PX:
            continue
        key = (lens, W, H, Ks[i].tobytes())
        if key not in pinholes:
            try:
                pinholes[key] = pinhole_for(K, lens, W, H).double().numpy()
            except ValueError as e:
                raise VoxsplatError(f"{f.source}: {f.label}: {e}") from None
        K_new = torch.from_numpy(pinholes[key])
        images[i] = undistort_image(images[i], K, lens, K_new)
        if masks is not None:
            masks[i] = undistort_image(masks[i], K, lens, K_new, nearest=True)
        if depths is not None:
            depths[i] = undistort_image(depths[i], K, lens, K_new, nearest=True)
        Ks[i] = pinholes[key]
    return (tuple(images), (tuple(masks) if masks is not None else None),
            (tuple(depths) if depths is not None else None), Ks)


def _split_of(file: Path) -> Optional[str]:
    """"train" for transforms_train.json, None for transforms.json or other names."""
    stem = file.stem
    return stem[len("transforms_"):] if stem.startswith("transforms_") else None


def _frame_masks(frames: list[_Frame], images, alpha_masks):
    """Masks from `mask_path` where frames give one (alpha, else all white, for the frames
    without), else from a `masks/` folder beside or inside the one folder of the images
    (`common.folder_masks`, as for a COLMAP capture, which wins over alpha), else from
    alpha; None if none of these. Masks at another size than their image are resized when
    they are a resized copy (`common.fit_mask`)."""
    if not any(f.mask for f in frames):
        folders = {f.path.parent for f in frames}
        if len(folders) == 1:
            (folder,) = folders
            return folder_masks([f.path for f in frames], folder,
                                [image_size(img) for img in images], alpha_masks)
        return alpha_masks
    masks, given = [], []
    for i, (f, img) in enumerate(zip(frames, images)):
        if f.mask is None:
            m = alpha_masks[i] if alpha_masks is not None else torch.ones(img.shape[:2], dtype=torch.bool)
        else:
            m = fit_mask(read_mask(f.mask), image_size(img), f"{f.source}: {f.label}: {f.mask.name}")
            given.append((m, f.mask.name))
        masks.append(m)
    warn_empty_masks([m for m, _ in given], [name for _, name in given], frames[0].source)
    return tuple(masks)


def _depth_scale(meta: dict, source: Path) -> float:
    """nerfstudio's `depth_unit_scale_factor` (default 1e-3: depth maps in millimetres)."""
    value = meta.get("depth_unit_scale_factor", 1e-3)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise VoxsplatError(f"{source}: 'depth_unit_scale_factor' must be a positive number "
                            f"(1e-3 for depth maps in millimetres), got {meta['depth_unit_scale_factor']!r}")
    return value


def _frame_depths(frames: list[_Frame], images):
    """Depth maps from frames' `depth_file_path` (times the file's unit scale), resized
    (nearest) to their images; frames without one get zeros (unknown); None if no frame has one."""
    if not any(f.depth for f in frames):
        return None
    depths = []
    for f, img in zip(frames, images):
        H, W = int(img.shape[0]), int(img.shape[1])
        if f.depth is None:
            depths.append(torch.zeros(H, W))
            continue
        depths.append(fit_depth(read_depth(f.depth, f.depth_scale), (W, H), f.depth))
    return tuple(depths)


def _points(files: list[tuple[Optional[str], Path]]) -> dict:
    """Scene points from nerfstudio's `ply_file_path` key (first file that has one)."""
    for _, source in files:
        rel = _read_json(source).get("ply_file_path")
        if rel:
            points, colors = read_points_ply(source.parent / rel, source)
            return {"points": points, "point_colors": colors}
    return {}


def read_points_ply(path: Path, source: Path) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """[P,3] points and [P,3] colours in [0,1] (or None) from a point-cloud PLY."""
    from plyfile import PlyData
    try:
        v = PlyData.read(str(path))["vertex"]
        pts = np.stack([v["x"], v["y"], v["z"]], -1).astype(np.float32)
    except FileNotFoundError:
        raise VoxsplatError(f"{source}: 'ply_file_path' {path.name} not found; fix the path or "
                            f"remove the key") from None
    except Exception as e:
        raise VoxsplatError(f"{path}: cannot read the point cloud ({e}); check it is a PLY with "
                            f"x, y, z vertex properties") from None
    if not np.all(np.isfinite(pts)):
        raise VoxsplatError(f"{path}: the point cloud has NaN/inf coordinates; fix the file")
    names = v.data.dtype.names
    colors = None
    if all(c in names for c in ("red", "green", "blue")):
        colors = torch.from_numpy(np.stack([v["red"], v["green"], v["blue"]], -1).astype(np.float32) / 255.0)
    return torch.from_numpy(pts), colors
