"""Camera paths from files, for `voxsplat render --path FILE.json`.

Two layouts, both with OpenGL camera-to-world poses (x right, y up, z back), as the tools that
write them use:

- NeRF / nerfstudio ``transforms.json``-style: ``frames[].transform_matrix`` with the same
  intrinsic keys as scenes (``camera_angle_x`` or ``fl_x`` ..., ``w``/``h``; per frame or at
  the top); ``file_path`` is not needed. Without intrinsics the caller's camera is used.
- nerfstudio's viewer ``camera_path.json``: ``camera_path[].camera_to_world`` (16 numbers, row
  by row), ``fov`` (vertical, degrees), ``render_width``/``render_height``, ``fps``. Its poses
  are in nerfstudio's normalized frame; its ``dataparser_transforms.json`` (``transform`` 3x4,
  ``scale``) maps them back to the data's frame.

Poses come back as OpenCV ``cam_from_world`` in the file's frame; moving them into a
workspace's frame is the caller's business.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..errors import VoxsplatError
from .blender import _INTRINSIC_KEYS, _OPENCV_FROM_OPENGL, _camera_from_world, _intrinsics
from .common import check_finite, check_rotation


@dataclass(frozen=True)
class CameraPath:
    """F cameras along a path, OpenCV convention, in the frame of the file they came from."""

    cam_from_world: Tensor
    """[F,4,4] float64."""
    Ks: Tensor
    """[F,3,3] float64 intrinsics for frames of `size`."""
    size: tuple[int, int]
    """(width, height) of every frame."""
    fps: Optional[float] = None
    """The file's frame rate, if it has one."""
    in_nerfstudio_frame: bool = False
    """From nerfstudio's viewer, not mapped back by its dataparser transforms."""


def _load(path: Path) -> dict:
    try:
        meta = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: no such camera path file; give a .json file with "
                            f"'frames' (transforms.json layout) or nerfstudio's 'camera_path', "
                            f"or one of auto, orbit, arc, spiral, interp") from None
    except json.JSONDecodeError as e:
        raise VoxsplatError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VoxsplatError(f"{path}: cannot read the file ({e}); check it is readable") from None
    if not isinstance(meta, dict) or not ({"frames", "camera_path"} & set(meta)):
        raise VoxsplatError(f"{path}: expected a JSON object with 'frames' (transforms.json "
                            f"layout) or 'camera_path' (nerfstudio's viewer); fix the file")
    return meta


def _size(value_w, value_h, path: Path) -> tuple[int, int]:
    try:
        W, H = int(value_w), int(value_h)
    except (TypeError, ValueError):
        W = H = 0
    if not (0 < W <= 16384 and 0 < H <= 16384):
        raise VoxsplatError(f"{path}: invalid frame size {value_w} x {value_h}; fix "
                            f"'w'/'h' or 'render_width'/'render_height'")
    return W, H


def _fps(meta: dict, path: Path) -> Optional[float]:
    """The file's frame rate, None when it has none."""
    fps = meta.get("fps")
    if fps is None:
        return None
    if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps)
            and fps > 0):
        raise VoxsplatError(f"{path}: 'fps' must be a number > 0, got {fps!r}; fix the file")
    return float(fps)


def _frames_size(meta: dict, frames: list, path: Path, size: tuple[int, int]) -> tuple[int, int]:
    """The frames' one size: `w`/`h` at the top or on every frame (all equal), else `size`."""
    def size_of(d: dict, label: str):
        if ("w" in d) != ("h" in d):
            raise VoxsplatError(f"{path}: {label} has only one of 'w' and 'h'; give both")
        return _size(d["w"], d["h"], path) if "w" in d else None
    top = size_of(meta, "the top level")
    sizes = {size_of(f, f"frame {i}") for i, f in enumerate(frames)} - {None}
    sizes |= {top} if top is not None and len(sizes) < len(frames) else set()
    if len(sizes) > 1:
        raise VoxsplatError(f"{path}: the frames have different sizes ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}); "
                            f"a video has one frame size, give every frame the same 'w'/'h'")
    return sizes.pop() if sizes else (top or size)


def _entries(meta: dict, key: str, label: str, pose_key: str, path: Path, fix: str) -> list:
    """`meta[key]`: a non-empty list of objects, or a VoxsplatError naming the file."""
    entries = meta[key]
    if not isinstance(entries, list) or not entries:
        what = "empty" if isinstance(entries, list) else "not a list"
        raise VoxsplatError(f"{path}: '{key}' is {what}; {fix}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise VoxsplatError(f"{path}: {label.format(i)} is not an object with '{pose_key}'")
    return entries


def _resized(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int],
             keep: int = 0) -> np.ndarray:
    """`K` of a `from_size` (width, height) camera for frames of `to_size`: the principal
    point moved with the frame, the focal length scaled alike on both axes (pixels stay
    square), keeping the field of view across the width (`keep` 0, as transforms.json's
    camera_angle_x) or the height (1, as nerfstudio's fov)."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    s = (sx, sy)[keep]
    return K * np.array([[s, s, sx], [s, s, sy], [1.0, 1.0, 1.0]])


def _from_frames(meta: dict, path: Path, K: np.ndarray, size: tuple[int, int]) -> CameraPath:
    frames = _entries(meta, "frames", "frame {}", "transform_matrix", path,
                      "list the cameras with 'transform_matrix'")
    top = {k: meta[k] for k in _INTRINSIC_KEYS if k in meta}
    out_size = _frames_size(meta, frames, path, size)
    poses, Ks = [], []
    for i, frame in enumerate(frames):
        label = f"frame {i}"
        poses.append(_camera_from_world(frame, path, label))
        params = {**top, **{k: frame[k] for k in _INTRINSIC_KEYS if k in frame}}
        if "fl_x" in params or "camera_angle_x" in params:
            Ks.append(_intrinsics(params, out_size, path, label))
        else:  # the caller's camera, for frames of the file's size
            Ks.append(_resized(K, size, out_size))
    return CameraPath(torch.from_numpy(np.stack(poses)), torch.from_numpy(np.stack(Ks)),
                      out_size, _fps(meta, path))


def _ns_pose(entry, path: Path, label: str) -> np.ndarray:
    """OpenGL camera-to-world [4,4] of one nerfstudio camera_path entry."""
    try:
        matrix = np.asarray(entry["camera_to_world"], dtype=np.float64).reshape(4, 4)
    except (KeyError, TypeError, ValueError):
        raise VoxsplatError(f"{path}: {label}: 'camera_to_world' must be 16 numbers (a 4x4 "
                            f"matrix row by row); fix that entry") from None
    check_finite(matrix, path, label)
    check_rotation(matrix[:3, :3], path, label)
    return matrix


def _from_nerfstudio(meta: dict, path: Path, K: np.ndarray, size: tuple[int, int],
                     dataparser: Optional[dict]) -> CameraPath:
    if meta.get("camera_type", "perspective") != "perspective":
        raise VoxsplatError(f"{path}: camera_type '{meta['camera_type']}' is not supported; "
                            f"render a perspective camera path")
    entries = _entries(meta, "camera_path", "camera_path[{}]", "camera_to_world", path,
                       "save a path in nerfstudio's viewer")
    default_size = size
    W, H = meta.get("render_width"), meta.get("render_height")
    if W is not None or H is not None:
        try:
            aspect = float(entries[0].get("aspect", size[0] / size[1]))
        except (TypeError, ValueError):
            aspect = 0.0
        if not (math.isfinite(aspect) and aspect > 0):
            raise VoxsplatError(f"{path}: camera_path[0]: 'aspect' must be a number > 0")
        if W is None:
            W = round(float(H) * aspect) if isinstance(H, (int, float)) else H
        if H is None:
            H = round(float(W) / aspect) if isinstance(W, (int, float)) else W
        size = _size(W, H, path)
    world_from_ns = np.eye(4)
    if dataparser is not None:  # nerfstudio: ns = scale * (transform @ data)
        A = np.eye(4)
        A[:3, :4] = np.asarray(dataparser["transform"], dtype=np.float64).reshape(3, 4)
        world_from_ns = np.linalg.inv(A) @ np.diag([1.0 / float(dataparser["scale"])] * 3 + [1.0])
    poses, Ks = [], []
    for i, entry in enumerate(entries):
        label = f"camera_path[{i}]"
        world_from_cam = world_from_ns @ _ns_pose(entry, path, label) @ _OPENCV_FROM_OPENGL
        world_from_cam[:3, :3] /= np.cbrt(abs(np.linalg.det(world_from_cam[:3, :3])))
        poses.append(np.linalg.inv(world_from_cam))
        fov = entry.get("fov")
        if fov is None:
            Ks.append(_resized(K, default_size, size, keep=1))
            continue
        if not (isinstance(fov, (int, float)) and 0 < fov < 180):
            raise VoxsplatError(f"{path}: {label}: 'fov' must be the vertical field of view in "
                                f"degrees, in (0, 180); got {fov!r}")
        f = 0.5 * size[1] / math.tan(math.radians(fov) / 2)
        Ks.append(np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1.0]]))
    return CameraPath(torch.from_numpy(np.stack(poses)), torch.from_numpy(np.stack(Ks)), size,
                      _fps(meta, path), in_nerfstudio_frame=dataparser is None)


def read_dataparser_transforms(path: Path) -> dict:
    """nerfstudio's ``dataparser_transforms.json``: {'transform': [3,4], 'scale': s}."""
    try:
        meta = json.loads(Path(path).read_text())
        transform = np.asarray(meta["transform"], dtype=np.float64).reshape(3, 4)
        scale = float(meta["scale"])
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: not found; nerfstudio writes dataparser_transforms.json "
                            f"in the run's output folder") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise VoxsplatError(f"{path}: expected nerfstudio's dataparser_transforms.json, with "
                            f"'transform' (3x4) and 'scale'; fix the file") from None
    if not (np.all(np.isfinite(transform)) and math.isfinite(scale) and scale > 0):
        raise VoxsplatError(f"{path}: 'transform' and 'scale' must be finite, scale > 0")
    return {"transform": transform, "scale": scale}


def read_camera_path(path: str | Path, K: Tensor, size: tuple[int, int],
                     dataparser_transforms: Optional[str | Path] = None) -> CameraPath:
    """The cameras of a camera path file (see the module's docstring).

    Args:
        path: the .json file.
        K: [3,3] intrinsics used where the file has none, for frames of `size`.
        size: (width, height) of the frames where the file gives none.
        dataparser_transforms: nerfstudio's dataparser_transforms.json, which maps a viewer
            path back to the data's frame (nerfstudio paths only).
    """
    path = Path(path)
    meta = _load(path)
    K_np = K.double().cpu().numpy()
    if "camera_path" in meta:
        dataparser = None if dataparser_transforms is None else read_dataparser_transforms(
            Path(dataparser_transforms))
        return _from_nerfstudio(meta, path, K_np, tuple(size), dataparser)
    if dataparser_transforms is not None:
        raise VoxsplatError(f"{path}: a transforms.json-style path is in the data's frame "
                            f"already; drop --dataparser-transforms")
    return _from_frames(meta, path, K_np, tuple(size))


SAVED_BY = "voxsplat render --save-path"
"""The `saved_by` of the camera path files `write_camera_path` writes: the only .json files
it replaces (never a scene's transforms.json, or a path the user made)."""


def check_camera_path_target(path: str | Path) -> None:
    """Refuse to write a camera path to `path` unless it is new or one `write_camera_path` wrote.

    Raises:
        VoxsplatError: not a .json name, or an existing file that voxsplat did not write.
    """
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise VoxsplatError(f"--save-path {path}: camera paths are .json files")
    if not path.exists():
        return
    try:
        ours = json.loads(path.read_text()).get("saved_by") == SAVED_BY
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise VoxsplatError(f"--save-path {path}: the file exists and is not a path that "
                            f"`render --save-path` wrote (a scene's cameras, or your own path?); "
                            f"give a new name, or remove it first")


def write_camera_path(path: str | Path, cam_from_world: Tensor, Ks: Tensor, size: tuple[int, int],
                      fps: Optional[float] = None) -> Path:
    """Write cameras as a transforms.json-style path (OpenGL camera-to-world, per-frame
    intrinsics), which `read_camera_path` reads back and Blender-style tools edit; atomic.

    Args:
        cam_from_world: [F,4,4] OpenCV poses in the frame the file is meant for.
        Ks: [F,3,3] intrinsics for frames of `size` (width, height).
    """
    from ..atomic import atomic_open
    world_from_cam = torch.linalg.inv(cam_from_world.double()) @ torch.from_numpy(_OPENCV_FROM_OPENGL)
    W, H = int(size[0]), int(size[1])
    frames = [{"transform_matrix": m.tolist(), "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
               "cx": float(K[0, 2]), "cy": float(K[1, 2])} for m, K in zip(world_from_cam, Ks.double())]
    meta = {"saved_by": SAVED_BY, "w": W, "h": H, **({"fps": float(fps)} if fps else {}),
            "frames": frames}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(Path(path), "w") as f:
        json.dump(meta, f, indent=1)
    return Path(path)
