"""`load_scene`: open any supported posed capture by looking at what the path holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import VoxsplatError
from .images import (describe_subfolders, image_subfolders, is_image_file, list_images,
                     unread_photos)
from .readers import read_blender, read_llff, read_neus
from .readers.blender import find_transforms
from .readers.colmap import find_colmap_model, read_colmap
from .readers.common import check_masks
from .readers.llff import POSES_FILE
from .readers.neus import CAMERAS_FILE
from .readers.openmvs import ARCHIVE_SUFFIX, find_mvs_archive, read_openmvs
from .scene import Scene
from .transforms import check_downscale, downscale as downscale_scene

_EXPECTED = "transforms.json, poses_bounds.npy or cameras_sphere.npz"
_EXPECTED_COLMAP = (f"{_EXPECTED}, a COLMAP model (sparse/0/ with images/) or an OpenMVS "
                    f"scene.mvs")
_COLMAP_FILES = ("cameras.bin", "cameras.txt", "images.bin", "images.txt")
_IMAGE_SUB_FOLDERS = ("images", "image", "input", "rgb")

Reader = Callable[..., Scene]


def _check_options(background: Sequence[float], downscale: float) -> None:
    try:
        ok = len(background) == 3 and all(0.0 <= float(c) <= 1.0 for c in background)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise VoxsplatError(f"background={background!r}: expected 3 values in [0,1], "
                            f"e.g. (1, 1, 1) for white")
    check_downscale(downscale)


def _reader_for_file(path: Path) -> tuple[Reader, Path]:
    if path.suffix.lower() == ".json" and path.name.startswith("transforms"):
        return read_blender, path
    if path.name == POSES_FILE:
        return read_llff, path.parent
    if path.name == CAMERAS_FILE:
        return read_neus, path.parent
    if path.name in _COLMAP_FILES:
        return read_colmap, path.parent
    if path.suffix.lower() == ARCHIVE_SUFFIX:
        return read_openmvs, path
    if is_image_file(path):
        raise VoxsplatError(f"{path}: a single image, not a scene; give the folder that holds "
                            f"the photos (or a scene folder, with {_EXPECTED})")
    from .video import VIDEO_EXTENSIONS
    raise VoxsplatError(f"{path}: not a known scene file or video ({', '.join(VIDEO_EXTENSIONS)}; "
                        f"convert others with `ffmpeg -i INPUT out.mp4`); give a video, "
                        f"{_EXPECTED_COLMAP} or their folder")


def _has_images(folder: Path) -> bool:
    if list_images(folder):
        return True
    return any((folder / sub).is_dir() and list_images(folder / sub)
               for sub in _IMAGE_SUB_FOLDERS)


def _reader_for_folder(path: Path) -> tuple[Reader, Path]:
    try:
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    except OSError as e:
        raise VoxsplatError(f"{path}: cannot list the folder ({e}); "
                            f"check its permissions") from None
    if not entries:
        raise VoxsplatError(f"{path}: empty folder; put a scene there ({_EXPECTED} "
                            f"with its images)")
    if find_transforms(path):
        return read_blender, path
    if (path / POSES_FILE).is_file():
        return read_llff, path
    if (path / CAMERAS_FILE).is_file():
        return read_neus, path
    if find_mvs_archive(path) is not None:  # an OpenMVS workspace made from a COLMAP one
        return read_openmvs, path
    if find_colmap_model(path) is not None:
        return read_colmap, path
    if _has_images(path):
        raise VoxsplatError(f"{path}: a folder of images without poses; run `voxsplat poses` "
                            f"or `voxsplat reconstruct` on it (structure-from-motion), or provide "
                            f"{_EXPECTED}")
    nested = image_subfolders(path)
    if nested:
        raise VoxsplatError(f"{path}: no images directly in the folder, only in its sub-folders "
                            f"{describe_subfolders(nested)}; put the photos of one scene together "
                            f"in one folder and give that folder (sub-folders are not searched)")
    unread = unread_photos(path)
    if unread:
        raise VoxsplatError(f"{path}: no photos voxsplat reads, only {unread}")
    raise VoxsplatError(f"{path}: unknown scene layout (no images and no poses); expected "
                        f"{_EXPECTED_COLMAP} next to the images")


def needs_poses(path: str | os.PathLike) -> bool:
    """True for inputs that need structure-from-motion: a video, or photos without poses."""
    path = Path(path)
    if path.is_file():
        from .video import is_video_file
        return is_video_file(path)
    if not path.is_dir():
        return False
    try:
        _reader_for_folder(path)
    except VoxsplatError:
        return _has_images(path)
    return False


def folder_video(path: str | os.PathLike) -> Optional[Path]:
    """The video inside a folder that holds no photos and no scene layout, only a video (a
    phone's capture folder), else None: structure-from-motion then samples its frames.

    Raises:
        VoxsplatError: the folder holds several videos and nothing else to pose.
    """
    path = Path(path)
    if not path.is_dir() or _has_images(path):
        return None
    try:
        _reader_for_folder(path)
        return None
    except VoxsplatError:
        pass
    videos = folder_videos(path)
    if len(videos) > 1:
        names = ", ".join(p.name for p in videos[:3]) + (", ..." if len(videos) > 3 else "")
        raise VoxsplatError(f"{path}: holds {len(videos)} videos ({names}) and no photos; give "
                            f"one video file, e.g. {videos[0]}")
    return videos[0] if videos else None


def input_of_folder(path: str | os.PathLike) -> tuple[Path, Optional[str]]:
    """What to load for `path`: its only video where the folder holds nothing else to pose
    (`folder_video`), else `path`; with a note to print on the choice, or None."""
    path = Path(path)
    video = folder_video(path)
    if video is not None:
        return video, f"{path}: no photos; posing the frames of its video {video.name}"
    beside = folder_videos(path)
    if beside:
        return path, (f"{path}: its {len(beside)} video(s) ({beside[0].name}"
                      f"{', ...' if len(beside) > 1 else ''}) are left out; the photos are used "
                      f"(give a video's own path to pose its frames instead)")
    return path, None


def folder_videos(path: str | os.PathLike) -> list[Path]:
    """The video files directly inside folder `path` (none for a file), by name."""
    path = Path(path)
    if not path.is_dir():
        return []
    from .video import is_video_file
    return sorted(p for p in path.iterdir()
                  if p.is_file() and not p.name.startswith(".") and is_video_file(p))


def find_reader(path: str | os.PathLike) -> tuple[Reader, Path]:
    """The reader for `path` and the path to give it.

    Raises:
        VoxsplatError: the path is missing, empty, or not a recognized layout.
    """
    path = Path(path)
    if not path.exists():
        raise VoxsplatError(f"{path}: no such file or folder; check the path")
    return _reader_for_folder(path) if path.is_dir() else _reader_for_file(path)


_RESIZED_KINDS = {read_llff: "llff", read_colmap: "colmap"}
"""The readers whose scenes may have resized copies of their photos (`readers.resized`)."""


def resized_input(path: str | os.PathLike, downscale: float) -> Optional[str]:
    """The resized copy of the photos of the posed scene at `path` that a load downscaled by
    `downscale` reads (`images_4/` beside `images/`, for LLFF and COLMAP scenes), or None: the
    `image_folder` to give `load_scene`."""
    found = _resized_kind(path) if downscale < 1.0 else None
    if found is None:
        return None
    from .readers.resized import resized_folder
    return resized_folder(*found, downscale)


def stored_longest_side(path: str | os.PathLike) -> Optional[int]:
    """The longest side of an LLFF or COLMAP scene's full-size photos, read from their
    headers (before any is decoded), where they share one size; None otherwise and for other
    scenes."""
    found = _resized_kind(path)
    if found is None:
        return None
    from .readers.resized import full_longest_side
    return full_longest_side(*found)


def _resized_kind(path: str | os.PathLike) -> Optional[tuple[str, Path]]:
    """`readers.resized`'s kind of the scene at `path` and its reader's path; None for the
    scenes other than LLFF's and COLMAP's."""
    reader, reader_path = find_reader(path)
    kind = _RESIZED_KINDS.get(reader)
    return None if kind is None else (kind, reader_path)


def load_scene(path: str | os.PathLike, *, background: Sequence[float] = (1.0, 1.0, 1.0),
               downscale: float = 1.0, image_folder: Optional[str] = None) -> Scene:
    """Load a posed multi-view scene.

    Recognizes `transforms*.json` (NeRF/Blender; a file or a folder holding one), a folder
    with `poses_bounds.npy` (LLFF), a folder with `cameras_sphere.npz` (NeuS/DTU), an OpenMVS
    workspace (`scene.mvs` or its folder, with `depth*.dmap`) and a COLMAP model (`sparse/0/`
    beside `images/`, or the model folder or one of its files).

    Args:
        path: scene folder or file.
        background: RGB in [0,1] that images with alpha are composited on.
        downscale: resize factor in (0, 1] for images, masks and cameras (0.5 halves them).
        image_folder: a resized copy of the photos to read (`resized_input`: LLFF and COLMAP
            scenes), then resized to the size `downscale` gives the full-size photos.

    Returns:
        The scene, cameras in OpenCV convention, with the format's standard splits.

    Raises:
        VoxsplatError: a one-line message naming the file and the fix.
    """
    _check_options(background, downscale)
    reader, reader_path = find_reader(path)
    background = tuple(float(c) for c in background)
    if image_folder is not None and reader in _RESIZED_KINDS:
        from .readers.resized import factor_left, full_folder
        kind = _RESIZED_KINDS[reader]
        downscale = factor_left(kind, reader_path, image_folder, downscale)
        folder = full_folder(kind, reader_path)
        scene = reader(reader_path, background=background, image_folder=folder.parent / image_folder)
    else:
        scene = reader(reader_path, background=background)
    check_masks(scene.masks, scene.source or reader_path)
    return downscale_scene(scene, downscale)
