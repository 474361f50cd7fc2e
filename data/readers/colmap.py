"""COLMAP sparse models (`sparse/0/` in binary or text) with their `images/` folder.

A model is `cameras`, `images` and (optionally) `points3D`, each as `.bin` or `.txt`. Poses
are COLMAP's `cam_from_world` (quaternion w,x,y,z and translation), already the OpenCV
convention, and COLMAP's pixel centres sit at half-integers like ours, so no conversion is
needed. Pinhole models are read as they are; distorted models (SIMPLE_RADIAL, RADIAL, OPENCV)
are accepted only when their distortion moves no pixel by more than `MAX_DISTORTION_PX`, and
the other perspective models only with no distortion at all (all their extra parameters 0, as
COLMAP's `Camera::IsUndistorted`); fisheye models never are. Otherwise the images must be
undistorted first (`DistortedCameraError`; `voxsplat reconstruct` does it with pycolmap).

Pure numpy: pycolmap is not needed to read a model.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Sequence

import numpy as np
import torch

from ..errors import VoxsplatError
from ..scene import Scene
from ..transforms import split_every
from .common import (fit_depth, folder_masks, image_size, intrinsics, load_images,
                     make_cameras, scale_intrinsics, unique_names)

MAX_DISTORTION_PX = 0.5
"""Largest lens-distortion displacement (pixels, anywhere in the image) read as pinhole."""
ZERO_PARAM = 1e-8
"""An extra (distortion) parameter at most this large is zero, as in COLMAP's IsUndistorted."""

MODEL_FILES = ("cameras", "images", "points3D")

# COLMAP camera model id -> (name, number of parameters). Ids follow colmap/sensor/models.h.
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16), 12: ("SIMPLE_DIVISION", 4), 13: ("DIVISION", 5),
    14: ("SIMPLE_FISHEYE", 3), 15: ("FISHEYE", 4), 16: ("EUCM", 6), 17: ("EQUIRECTANGULAR", 2),
}
_MODEL_IDS = {name: (model_id, n) for model_id, (name, n) in CAMERA_MODELS.items()}
SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
PERSPECTIVE_MODELS = SUPPORTED_MODELS + ("FULL_OPENCV", "FOV", "SIMPLE_DIVISION", "DIVISION",
                                         "EUCM")
"""Models that are pinhole when their extra parameters are all 0 (FOV's omega, EUCM's alpha and
beta included); the fisheye models are not (their zero is the equidistant projection)."""
_ONE_FOCAL = ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_DIVISION")
_N_PINHOLE = {name: 3 if name in _ONE_FOCAL else 4 for name in PERSPECTIVE_MODELS}
_UNDISTORT_HINT = ("`voxsplat reconstruct` undistorts them itself (with pycolmap); to read "
                   "the scene directly, undistort the images first (`colmap image_undistorter` "
                   "or pycolmap.undistort_images) and give the undistorted folder")


class DistortedCameraError(VoxsplatError):
    """A camera of the model is not pinhole, or its lens distortion is not negligible."""


@dataclass(frozen=True)
class ColmapCamera:
    """One COLMAP camera: model name, image size in pixels and the model's parameters."""

    camera_id: int
    model: str
    width: int
    height: int
    params: np.ndarray


@dataclass(frozen=True)
class ColmapImage:
    """One registered image: cam_from_world as quaternion [4] (w,x,y,z) and translation [3]."""

    image_id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str


@dataclass(frozen=True)
class ColmapModel:
    """A parsed sparse model. `points_xyz` [P,3] float64 and `points_rgb` [P,3] uint8."""

    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points_xyz: np.ndarray
    points_rgb: np.ndarray


# ---------------------------------------------------------------------------------------------
# Finding a model.


def _model_file(folder: Path, stem: str) -> Optional[Path]:
    """`folder/stem.bin` or `folder/stem.txt` (binary preferred), or None."""
    for suffix in (".bin", ".txt"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def find_colmap_model(root: Path) -> Optional[Path]:
    """The model folder of a COLMAP scene, or None when `root` holds none.

    Looks for `cameras.bin|txt` in `root/sparse/0`, then in the lowest-numbered other
    `root/sparse/<k>`, then `root/sparse`, then `root` itself.
    """
    root = Path(root)
    candidates = [root / "sparse" / "0"]
    if (root / "sparse").is_dir():
        candidates += _numbered_models(root / "sparse") + [root / "sparse"]
    candidates.append(root)
    return next((c for c in candidates if c.is_dir() and _model_file(c, "cameras")), None)


def _numbered_models(sparse: Path) -> list[Path]:
    """The model folders `sparse/<k>` (those with a cameras file), by k: COLMAP writes one per
    group of photos it could connect."""
    return sorted((p for p in sparse.iterdir() if p.is_dir() and p.name.isdigit()
                   and _model_file(p, "cameras")), key=lambda p: int(p.name))


def find_image_folder(model_dir: Path) -> Optional[Path]:
    """The `images/` folder belonging to a model folder (`X/sparse/0` -> `X/images`)."""
    for base in (model_dir, model_dir.parent, model_dir.parent.parent):
        if base.name != "sparse" and (base / "images").is_dir():
            return base / "images"
    return None


# ---------------------------------------------------------------------------------------------
# Binary files.


def _read(f: BinaryIO, fmt: str, path: Path) -> tuple:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise VoxsplatError(f"{path}: file ends early (truncated?); re-export the COLMAP model")
    return struct.unpack(fmt, data)


def _read_name(f: BinaryIO, path: Path) -> str:
    chars = bytearray()
    while True:
        c = f.read(1)
        if not c:
            raise VoxsplatError(f"{path}: file ends inside an image name; re-export the model")
        if c == b"\x00":
            return chars.decode("utf-8", errors="replace")
        chars += c


def _cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    with open(path, "rb") as f:
        (count,) = _read(f, "<Q", path)
        for _ in range(count):
            camera_id, model_id, width, height = _read(f, "<iiQQ", path)
            if model_id not in CAMERA_MODELS:
                raise VoxsplatError(f"{path}: camera {camera_id} has unknown model id {model_id}; "
                                    f"re-export the model with a standard COLMAP camera model")
            name, n_params = CAMERA_MODELS[model_id]
            params = np.array(_read(f, f"<{n_params}d", path))
            cameras[camera_id] = ColmapCamera(camera_id, name, int(width), int(height), params)
    return cameras


def _images_bin(path: Path) -> dict[int, ColmapImage]:
    images = {}
    with open(path, "rb") as f:
        (count,) = _read(f, "<Q", path)
        for _ in range(count):
            values = _read(f, "<I7dI", path)
            name = _read_name(f, path)
            (n_points2d,) = _read(f, "<Q", path)
            f.seek(24 * n_points2d, 1)  # x, y (double) and point3D_id (int64) per observation
            images[values[0]] = ColmapImage(values[0], np.array(values[1:5]),
                                            np.array(values[5:8]), values[8], name)
    return images


def _points_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        (count,) = _read(f, "<Q", path)
        xyz, rgb = np.zeros((count, 3)), np.zeros((count, 3), dtype=np.uint8)
        for i in range(count):
            values = _read(f, "<Q3d3BdQ", path)
            xyz[i], rgb[i] = values[1:4], values[4:7]
            f.seek(8 * values[8], 1)  # track: (image_id, point2D_idx) as 2 x uint32
    return xyz, rgb


# ---------------------------------------------------------------------------------------------
# Text files.


def _data_lines(path: Path) -> list[str]:
    """All lines of a text model file (comments kept out later), as text."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise VoxsplatError(f"{path}: cannot read ({e}); check the file") from None


def _bad_line(path: Path, number: int, what: str) -> VoxsplatError:
    return VoxsplatError(f"{path}: line {number} is not a valid {what}; fix or re-export the "
                         f"COLMAP model")


def _cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for number, line in enumerate(_data_lines(path), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            camera_id, model, width, height = int(tokens[0]), tokens[1], int(tokens[2]), int(tokens[3])
            params = np.array([float(t) for t in tokens[4:]])
        except (ValueError, IndexError):
            raise _bad_line(path, number, "camera (ID MODEL WIDTH HEIGHT PARAMS...)") from None
        if model not in _MODEL_IDS or len(params) != _MODEL_IDS[model][1]:
            raise VoxsplatError(f"{path}: line {number}: camera model {model} with {len(params)} "
                                f"parameters is not a COLMAP camera model; fix the line")
        cameras[camera_id] = ColmapCamera(camera_id, model, width, height, params)
    return cameras


def _images_txt(path: Path) -> dict[int, ColmapImage]:
    """images.txt: two lines per image; the second (2D points, possibly empty) is skipped."""
    images = {}
    lines = _data_lines(path)
    number = 0
    while number < len(lines):
        line = lines[number].strip()
        number += 1
        if not line or line.startswith("#"):
            continue
        tokens = line.split(maxsplit=9)
        try:
            image_id, camera_id = int(tokens[0]), int(tokens[8])
            values = np.array([float(t) for t in tokens[1:8]])
            name = tokens[9]
        except (ValueError, IndexError):
            raise _bad_line(path, number, "image (ID QW QX QY QZ TX TY TZ CAMERA_ID NAME)") from None
        images[image_id] = ColmapImage(image_id, values[:4], values[4:], camera_id, name)
        if number < len(lines) and _is_image_line(lines[number]):
            raise VoxsplatError(f"{path}: line {number + 1} is the next image where image "
                                f"{image_id}'s 2D points belong; each image takes two lines, the "
                                f"second (its points) may be empty: re-export the model")
        number += 1  # the POINTS2D line
    return images


def _is_image_line(line: str) -> bool:
    """Whether a line of images.txt reads as an image (9 numbers, then a name), not as 2D
    points (X Y POINT3D_ID triples: numbers only)."""
    tokens = line.split()
    return len(tokens) >= 10 and all(map(_number, tokens[:9])) and not _number(tokens[9])


def _number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _points_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    xyz, rgb = [], []
    for number, line in enumerate(_data_lines(path), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            xyz.append([float(t) for t in tokens[1:4]])
            rgb.append([int(t) for t in tokens[4:7]])
        except ValueError:
            raise _bad_line(path, number, "point (ID X Y Z R G B ERROR TRACK...)") from None
        if len(xyz[-1]) != 3 or len(rgb[-1]) != 3:
            raise _bad_line(path, number, "point (ID X Y Z R G B ERROR TRACK...)")
    return (np.array(xyz, dtype=np.float64).reshape(-1, 3),
            np.clip(np.array(rgb), 0, 255).astype(np.uint8).reshape(-1, 3))


def read_colmap_model(model_dir: str | Path) -> ColmapModel:
    """Parse `cameras`, `images` and (if present) `points3D` of a model folder.

    Raises:
        VoxsplatError: a file is missing, truncated or malformed.
    """
    model_dir = Path(model_dir)
    files = {stem: _model_file(model_dir, stem) for stem in MODEL_FILES}
    for stem in ("cameras", "images"):
        if files[stem] is None:
            raise VoxsplatError(f"{model_dir}: COLMAP model without {stem}.bin or {stem}.txt; "
                                f"export the full model (cameras, images, points3D)")
    binary = {stem: f is not None and f.suffix == ".bin" for stem, f in files.items()}
    try:
        cameras = (_cameras_bin if binary["cameras"] else _cameras_txt)(files["cameras"])
        images = (_images_bin if binary["images"] else _images_txt)(files["images"])
        if files["points3D"] is None:
            xyz, rgb = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8)
        else:
            xyz, rgb = (_points_bin if binary["points3D"] else _points_txt)(files["points3D"])
    except (OSError, UnicodeDecodeError, struct.error) as e:
        raise VoxsplatError(f"{model_dir}: cannot read the COLMAP model ({e}); re-export "
                            f"it") from None
    return ColmapModel(cameras, images, xyz, rgb)


# ---------------------------------------------------------------------------------------------
# Cameras.


def quaternion_to_matrix(qvec: np.ndarray) -> np.ndarray:
    """[3,3] rotation from a quaternion (w, x, y, z), normalized first."""
    w, x, y, z = np.asarray(qvec, dtype=np.float64) / np.linalg.norm(qvec)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _pinhole_and_distortion(camera: ColmapCamera) -> tuple[tuple[float, ...], np.ndarray]:
    """((fx, fy, cx, cy), distortion [k1, k2, p1, p2]) of a supported camera model."""
    p = camera.params
    if camera.model == "SIMPLE_PINHOLE":
        return (p[0], p[0], p[1], p[2]), np.zeros(4)
    if camera.model == "PINHOLE":
        return (p[0], p[1], p[2], p[3]), np.zeros(4)
    if camera.model == "SIMPLE_RADIAL":
        return (p[0], p[0], p[1], p[2]), np.array([p[3], 0.0, 0.0, 0.0])
    if camera.model == "RADIAL":
        return (p[0], p[0], p[1], p[2]), np.array([p[3], p[4], 0.0, 0.0])
    return (p[0], p[1], p[2], p[3]), np.array(p[4:8])  # OPENCV


def max_distortion_px(camera: ColmapCamera, samples: int = 65) -> float:
    """Largest pixel displacement the camera's lens distortion causes in the image, over a
    `samples` x `samples` grid that includes the border (a radial polynomial may peak at an
    edge's middle or inside, not at the corners)."""
    (fx, fy, cx, cy), (k1, k2, p1, p2) = _pinhole_and_distortion(camera)
    xs, ys = np.meshgrid(np.linspace(0.0, camera.width, samples),
                         np.linspace(0.0, camera.height, samples))
    u, v = (xs.ravel() - cx) / fx, (ys.ravel() - cy) / fy
    r2 = u * u + v * v
    radial = k1 * r2 + k2 * r2 * r2
    du = u * radial + 2 * p1 * u * v + p2 * (r2 + 2 * u * u)
    dv = v * radial + p1 * (r2 + 2 * v * v) + 2 * p2 * u * v
    return float(np.max(np.hypot(du * fx, dv * fy)))


def is_undistorted(camera: ColmapCamera) -> bool:
    """Whether all of a perspective camera's extra (distortion) parameters are 0, as COLMAP's
    `Camera::IsUndistorted` says (the fisheye models' zero is no pinhole; see
    `PERSPECTIVE_MODELS`)."""
    n = _N_PINHOLE.get(camera.model, 4)
    return bool(np.all(np.abs(camera.params[n:]) <= ZERO_PARAM))


def camera_intrinsics(camera: ColmapCamera, source: Path) -> np.ndarray:
    """[3,3] K of a pinhole (or negligibly distorted) camera.

    Raises:
        DistortedCameraError: the model is unsupported or its distortion is not negligible.
    """
    label = f"{source}: camera {camera.camera_id} ({camera.model})"
    if camera.model == "EQUIRECTANGULAR":
        raise VoxsplatError(f"{label}: 360-degree panoramas are not supported; give perspective "
                            f"images (e.g. the panoramas cut into cube faces) and their model")
    if camera.model in SUPPORTED_MODELS:
        shift = max_distortion_px(camera)
        if shift > MAX_DISTORTION_PX:
            raise DistortedCameraError(f"{label} has lens distortion moving pixels by up to "
                                       f"{shift:.1f} px; {_UNDISTORT_HINT}")
    elif camera.model not in PERSPECTIVE_MODELS or not is_undistorted(camera):
        raise DistortedCameraError(f"{label} is not pinhole (only {', '.join(SUPPORTED_MODELS)} "
                                   f"with little distortion, or other perspective models with "
                                   f"none, are read as they are); {_UNDISTORT_HINT}")
    n = _N_PINHOLE[camera.model]
    p = camera.params
    fx, fy, cx, cy = (p[0], p[0], p[1], p[2]) if n == 3 else (p[0], p[1], p[2], p[3])
    if min(fx, fy) <= 0 or camera.width <= 0 or camera.height <= 0:
        raise VoxsplatError(f"{label} has a non-positive focal length or size; fix the model")
    return intrinsics(fx, fy, cx, cy)


def _cam_from_world(image: ColmapImage, source: Path) -> np.ndarray:
    """[4,4] OpenCV cam_from_world of a COLMAP image."""
    values = np.concatenate([image.qvec, image.tvec])
    if not np.all(np.isfinite(values)) or np.linalg.norm(image.qvec) < 1e-12:
        raise VoxsplatError(f"{source}: image {image.image_id} ({image.name}) has an invalid pose "
                            f"(NaN, inf or zero quaternion); fix or re-export the model")
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_matrix(image.qvec)
    pose[:3, 3] = image.tvec
    return pose


# ---------------------------------------------------------------------------------------------
# The scene.


def _image_paths(model: ColmapModel, image_dir: Path, model_dir: Path) -> list[tuple[ColmapImage, Path]]:
    """(image, file) pairs sorted by name; every file must exist."""
    entries = sorted(model.images.values(), key=lambda im: im.name)
    missing = [im.name for im in entries if not (image_dir / im.name).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise VoxsplatError(f"{model_dir}: {len(missing)} of {len(entries)} registered images are "
                            f"missing from {image_dir} ({shown}); put the images the model was "
                            f"made from in {image_dir}")
    return [(im, image_dir / im.name) for im in entries]


def read_colmap(path: str | Path, *, background: Sequence[float] = (1.0, 1.0, 1.0),
                image_folder: Optional[str | Path] = None) -> Scene:
    """Read a COLMAP scene (sparse model and its images).

    Args:
        path: the scene folder (holding `sparse/0/` and `images/`) or the model folder.
        background: RGB in [0,1] for images with alpha.
        image_folder: the images' folder (relative to `path`, or absolute); default
            `images/` beside `sparse/`. Uniformly resized copies (e.g. `images_4`) are accepted
            and their intrinsics scaled.

    Returns:
        Scene in name order with the model's points and colours, and the depth maps of a dense
        workspace (`dense_depths`) when it has them; "test" = every 8th image.

    Raises:
        VoxsplatError: a model file is missing or malformed, images are missing, or a camera
            is distorted (see `MAX_DISTORTION_PX`).
    """
    path = Path(path)
    model_dir = find_colmap_model(path)
    if model_dir is None:
        raise VoxsplatError(f"{path}: no COLMAP model (sparse/0/cameras.bin or .txt); give the "
                            f"folder that holds sparse/0 and images/")
    model = read_colmap_model(model_dir)
    if not model.images:
        raise VoxsplatError(f"{model_dir}: the model has no registered images; re-run SfM")
    others = ([p.name for p in _numbered_models(model_dir.parent) if p != model_dir]
              if model_dir.parent.name == "sparse" else [])
    if others:  # COLMAP split the photos into several models: the others' photos are not in it
        warnings.warn(f"{model_dir}: {len(model.images)} images from this model; sparse/"
                      f"{', sparse/'.join(others)} (models COLMAP also made, of other photos) "
                      f"left out", stacklevel=2)
    image_dir = path / image_folder if image_folder is not None else find_image_folder(model_dir)
    if image_dir is None or not image_dir.is_dir():
        raise VoxsplatError(f"{model_dir}: no images folder (expected {path / 'images'}); put the "
                            f"images next to sparse/ in images/")
    entries = _image_paths(model, image_dir, model_dir)
    unknown = sorted({im.camera_id for im, _ in entries} - set(model.cameras))
    if unknown:
        raise VoxsplatError(f"{model_dir}: images refer to camera {unknown[0]} which is not in "
                            f"cameras; re-export the model")
    Ks = {cid: camera_intrinsics(cam, model_dir) for cid, cam in model.cameras.items()}
    paths = [p for _, p in entries]
    images, masks = load_images(paths, background, capped=True)
    masks = folder_masks(paths, image_dir, [image_size(im) for im in images], masks)
    cam_from_world, K_list = [], []
    for (image, file), img in zip(entries, images):
        cam_from_world.append(_cam_from_world(image, model_dir))
        camera = model.cameras[image.camera_id]
        K_list.append(scale_intrinsics(Ks[image.camera_id], (camera.width, camera.height),
                                       image_size(img), file,
                                       f"camera {camera.camera_id} in {model_dir}",
                                       "COLMAP ignores EXIF rotation"))
    has_points = len(model.points_xyz) > 0
    scene = Scene(images=images, names=unique_names(paths, image_dir),
                  cameras=make_cameras(cam_from_world, K_list, [image_size(im) for im in images]),
                  masks=masks, depths=dense_depths(image_dir, [im.name for im, _ in entries],
                                                   [image_size(im) for im in images]),
                  points=torch.from_numpy(model.points_xyz).float() if has_points else None,
                  point_colors=(torch.from_numpy(model.points_rgb).float() / 255.0
                                if has_points else None),
                  background=tuple(float(c) for c in background), source=str(path))
    return split_every(scene, 8)


DEPTH_MAP_KINDS = ("geometric", "photometric")
"""COLMAP's depth maps, in order of preference (geometric: filtered by multi-view consistency)."""


def read_colmap_array(path: Path) -> np.ndarray:
    """A COLMAP dense array file (``stereo/depth_maps/*.bin``): the text header ``W&H&C&``, then
    float32 values in column-major order. Returns [H,W] (one channel) or [H,W,C]."""
    data = Path(path).read_bytes()
    parts = data.split(b"&", 3)
    try:
        W, H, C = (int(x) for x in parts[:3])
        values = np.frombuffer(parts[3], dtype=np.float32)
        array = values.reshape((W, H, C), order="F")
    except (ValueError, IndexError):
        raise VoxsplatError(f"{path}: not a COLMAP depth map (a 'W&H&C&' header and W*H*C "
                            f"float32 values); re-run patch_match_stereo or remove it") from None
    return np.transpose(array, (1, 0, 2)).squeeze(-1) if C == 1 else np.transpose(array, (1, 0, 2))


def dense_depths(image_dir: Path, names: Sequence[str], sizes: Sequence[tuple[int, int]]):
    """Depth maps of COLMAP's dense workspace (``stereo/depth_maps/NAME.geometric.bin``, else
    ``.photometric.bin``, beside the `images/` folder), as camera z, resized (nearest) to the
    images; images without one get zeros (unknown). None when the folder has none."""
    folder = Path(image_dir).parent / "stereo" / "depth_maps"
    if not folder.is_dir():
        return None
    found = []
    for name in names:
        files = [folder / f"{name}.{kind}.bin" for kind in DEPTH_MAP_KINDS]
        found.append(next((f for f in files if f.is_file()), None))
    if not any(found):
        return None
    depths = []
    for file, (W, H) in zip(found, sizes):
        if file is None:
            depths.append(torch.zeros(H, W))
            continue
        array = read_colmap_array(file)
        if array.ndim != 2:
            raise VoxsplatError(f"{file}: {array.shape[-1]} channels; a depth map has one")
        array = np.where(np.isfinite(array) & (array > 0), array, 0).astype(np.float32)
        depths.append(fit_depth(torch.from_numpy(array), (W, H), file))
    return tuple(depths)


def is_colmap_scene(folder: Path) -> bool:
    """True when `folder` holds a COLMAP model (see `find_colmap_model`)."""
    return find_colmap_model(folder) is not None

