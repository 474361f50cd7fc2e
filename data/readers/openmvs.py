"""OpenMVS workspaces: the scene archive (`scene.mvs`, `scene_dense.mvs`) with its images, and
the depth maps `DensifyPointCloud` leaves beside it (`depthNNNN.dmap`).

The archive is OpenMVS's interface format (`MVS::Interface`, "MVSI"): platforms (rigs) with
cameras and poses, images naming a platform, camera and pose, and the points with their
colours. An image's pose is its platform pose composed with its camera's mounting:
``R = R_camera @ R_pose`` and ``C = C_pose + R_pose^T C_camera``, and a point projects as
``K R (X - C)``, OpenCV's axes. K is in pixels, copied from COLMAP's cameras by
`InterfaceCOLMAP` (our pixel convention too); an archive saved with normalized intrinsics
(no image size) divides K by max(width, height), and it is scaled back with the photo's size
(see `denormalized_K` for the conventions).

A `.dmap` holds one image's depth (camera z, 0 = unknown), possibly smaller than the photo.
Two layouts exist: "DR" (float32 depths, OpenMVS up to 2.3) and the newer "D2" (float16
depths scaled by a power of two stored in the header, plus a confidence scale); both are read. Only the depth
is taken: the normals, confidences and view masks after it are skipped.

Pure numpy: OpenMVS is not needed to read a workspace.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import VoxsplatError
from ..images import read_mask, resize_depth
from ..scene import Scene
from ..transforms import split_every
from .common import (check_finite, check_rotation, fit_mask, folder_masks, image_size, load_images,
                     make_cameras, resized_copy, scale_intrinsics, unique_names)

ARCHIVE_SUFFIX = ".mvs"
NO_ID = 0xFFFFFFFF
"""OpenMVS's id of an image without a pose (not registered)."""
_ARCHIVE_PREFERENCE = ("scene_dense.mvs", "scene.mvs")
_REEXPORT = "re-export it with OpenMVS"


@dataclass(frozen=True)
class MvsImage:
    """One posed image of an archive: `cam_from_world` [4,4] (OpenCV), `K` [3,3] in pixels of
    `size` (None: normalized by max(width, height), size unknown), the archive's image id."""

    name: str
    mask_name: str
    image_id: int
    cam_from_world: np.ndarray
    K: np.ndarray
    size: Optional[tuple[int, int]]


@dataclass(frozen=True)
class MvsArchive:
    """A parsed interface archive: posed images (archive order), points [P,3] float32 and
    their colours [P,3] uint8 RGB (None when the archive has none)."""

    version: int
    images: tuple[MvsImage, ...]
    points: np.ndarray
    colors: Optional[np.ndarray]
    n_unposed: int


@dataclass(frozen=True)
class DepthMap:
    """One `.dmap`: the depth [h,w] float32 (camera z, 0 = unknown), the size of the image it
    belongs to (width, height), that image's file name and id as OpenMVS recorded them."""

    depth: np.ndarray
    image_size: tuple[int, int]
    image_name: str
    image_id: int


class _Cursor:
    """Little-endian reads from a file's bytes; running past the end is a VoxsplatError."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as e:
            raise VoxsplatError(f"{path}: cannot read ({e.strerror}); check the file") from None
        self.pos = 0

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise VoxsplatError(f"{self.path}: file ends early (truncated?); {_REEXPORT}")

    def take(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        self.need(struct.calcsize(fmt))
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype).newbyteorder("<")
        self.need(count * dt.itemsize)
        out = np.frombuffer(self.data, dtype=dt, count=count, offset=self.pos)
        self.pos += count * dt.itemsize
        return out

    def string(self, size_fmt: str = "Q") -> str:
        (n,) = self.take(size_fmt)
        self.need(n)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def matrix(self) -> np.ndarray:
        return self.array("f8", 9).reshape(3, 3).copy()

    def vector(self) -> np.ndarray:
        return self.array("f8", 3).copy()


# ---------------------------------------------------------------------------------------------
# The interface archive.


def _read_platforms(cur: _Cursor, version: int) -> list[tuple[list, list]]:
    """[(cameras, poses)] per platform; a camera is (K, R, C, size or None), a pose (R, C)."""
    platforms = []
    for _ in range(cur.take("Q")[0]):
        cur.string()  # platform name
        cameras = []
        for _ in range(cur.take("Q")[0]):
            cur.string()  # camera name
            if version > 3:
                cur.string()  # band name
            size = cur.take("II") if version > 0 else (0, 0)
            K, R, C = cur.matrix(), cur.matrix(), cur.vector()
            cameras.append((K, R, C, size if min(size) > 0 else None))
        poses = [(cur.matrix(), cur.vector()) for _ in range(cur.take("Q")[0])]
        platforms.append((cameras, poses))
    return platforms


def _image_pose(platforms, platform_id: int, camera_id: int, pose_id: int, path: Path,
                name: str) -> tuple[np.ndarray, np.ndarray, Optional[tuple[int, int]]]:
    """cam_from_world [4,4], K and the camera's size for one image (OpenMVS's Platform::GetPose)."""
    try:
        cameras, poses = platforms[platform_id]
        K, R_cam, C_cam, size = cameras[camera_id]
        R_pose, C_pose = poses[pose_id]
    except IndexError:
        raise VoxsplatError(f"{path}: image {name} refers to platform {platform_id}, camera "
                            f"{camera_id}, pose {pose_id}, which the archive lacks; "
                            f"{_REEXPORT}") from None
    R = R_cam @ R_pose
    C = C_pose + R_pose.T @ C_cam
    cam_from_world = np.eye(4)
    cam_from_world[:3, :3] = R
    cam_from_world[:3, 3] = -R @ C
    check_finite(cam_from_world, path, f"image {name}")
    check_rotation(R, path, f"image {name}")
    return cam_from_world, K, size


def _vertex_offsets(cur: _Cursor, n: int) -> np.ndarray:
    """Byte offsets of the n vertices' positions; each is followed by its list of views
    (uint32 image id, float32 confidence), which is skipped."""
    offsets = np.empty(n, dtype=np.int64)
    data, pos, unpack = cur.data, cur.pos, struct.Struct("<Q").unpack_from
    end = len(data)
    for i in range(n):
        if pos + 20 > end:
            cur.pos = pos
            cur.need(20)
        offsets[i] = pos
        pos += 20 + 8 * unpack(data, pos + 12)[0]
    cur.pos = pos
    cur.need(0)
    return offsets


def _read_points(cur: _Cursor) -> tuple[np.ndarray, Optional[np.ndarray]]:
    n = cur.take("Q")[0]
    offsets = _vertex_offsets(cur, n)
    raw = np.frombuffer(cur.data, dtype=np.uint8)
    points = raw[offsets[:, None] + np.arange(12)].copy().view("<f4").reshape(n, 3)
    cur.array("f4", 3 * cur.take("Q")[0])  # normals
    n_colors = cur.take("Q")[0]
    bgr = cur.array("u1", 3 * n_colors).reshape(n_colors, 3)
    colors = bgr[:, ::-1].copy() if n_colors == n and n > 0 else None
    return points.astype(np.float32), colors


def read_mvs_archive(path: str | os.PathLike) -> MvsArchive:
    """Parse an OpenMVS interface archive (`scene.mvs`): its posed images and points.

    Raises:
        VoxsplatError: not an archive, truncated, or an image refers to a missing camera.
    """
    path = Path(path)
    cur = _Cursor(path)
    if cur.data[:4] != b"MVSI":
        raise VoxsplatError(f"{path}: not an OpenMVS interface archive (no 'MVSI' header); "
                            f"{_REEXPORT}")
    cur.pos = 4
    version, _reserved = cur.take("II")
    platforms = _read_platforms(cur, version)
    images, n_unposed = [], 0
    for index in range(cur.take("Q")[0]):
        name = cur.string()
        mask_name = cur.string() if version > 4 else ""
        platform_id, camera_id, pose_id = cur.take("III")
        image_id = cur.take("I")[0] if version > 2 else index
        if version > 6:
            cur.take("fff")  # min, mean, max depth
            cur.array("u1", 24 * cur.take("Q")[0])  # neighbour view scores
        if pose_id == NO_ID:
            n_unposed += 1
            continue
        cam_from_world, K, size = _image_pose(platforms, platform_id, camera_id, pose_id,
                                              path, name)
        images.append(MvsImage(name, mask_name, image_id, cam_from_world, K, size))
    points, colors = _read_points(cur)
    return MvsArchive(version, tuple(images), points, colors, n_unposed)


# ---------------------------------------------------------------------------------------------
# Depth maps.


def read_dmap(path: str | os.PathLike) -> DepthMap:
    """Read the depth of an OpenMVS `.dmap` ("DR": float32; "D2": float16 times 2^exponent).

    Raises:
        VoxsplatError: not a depth map, or truncated.
    """
    path = Path(path)
    cur = _Cursor(path)
    magic = cur.data[:2]
    if magic not in (b"DR", b"D2") or len(cur.data) < 4 or not cur.data[2] & 1:
        raise VoxsplatError(f"{path}: not an OpenMVS depth map (a 'DR' or 'D2' header with "
                            f"depth); re-run DensifyPointCloud or remove it")
    cur.pos = 3
    (exponent,) = cur.take("b")
    image_w, image_h, depth_w, depth_h = cur.take("IIII")
    if not (0 < depth_w <= image_w and 0 < depth_h <= image_h):
        raise VoxsplatError(f"{path}: depth map of {depth_w}x{depth_h} for an image of "
                            f"{image_w}x{image_h}; re-run DensifyPointCloud or remove it")
    cur.take("ff")  # depth range
    if magic == b"D2":
        cur.take("f")  # confidence scale
    image_name = cur.string("H")
    ids = cur.array("u4", cur.take("I")[0])
    cur.array("f8", 9 + 9 + 3)  # K, R, C of the image (the archive's are used)
    if magic == b"D2":
        depth = np.ldexp(cur.array("f2", depth_w * depth_h).astype(np.float32), exponent)
    else:
        depth = cur.array("f4", depth_w * depth_h).astype(np.float32)
    depth = depth.reshape(depth_h, depth_w)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    return DepthMap(depth, (int(image_w), int(image_h)), image_name,
                    int(ids[0]) if len(ids) else -1)


def _archive_depths(folder: Path, images: Sequence[MvsImage],
                    sizes: Sequence[tuple[int, int]]) -> Optional[tuple[torch.Tensor, ...]]:
    """The `depth*.dmap` maps of `folder` matched to the images by id, resized (nearest) to the
    photos; zeros for images without one. None when the folder has none."""
    files = sorted(folder.glob("depth*.dmap"))
    if not files:
        return None
    by_id = {}
    for file in files:
        dmap = read_dmap(file)
        by_id.setdefault(dmap.image_id, (file, dmap))
    depths = []
    for image, (W, H) in zip(images, sizes):
        if image.image_id not in by_id:
            depths.append(torch.zeros(H, W))
            continue
        file, dmap = by_id[image.image_id]
        w, h = dmap.image_size
        if not resized_copy((w, h), (W, H)):
            raise VoxsplatError(f"{file}: made for an image of {w}x{h}, but {image.name} is "
                                f"{W}x{H}; give the photos the workspace was made from")
        depths.append(resize_depth(torch.from_numpy(dmap.depth), (W, H)))
    return tuple(depths)


# ---------------------------------------------------------------------------------------------
# The scene.


def find_mvs_archive(path: Path) -> Optional[Path]:
    """The archive of an OpenMVS workspace: `path` itself when it is a `.mvs` file, else in
    the folder `scene_dense.mvs`, `scene.mvs`, or its only `.mvs` file; None when none.

    Raises:
        VoxsplatError: the folder holds several other `.mvs` files.
    """
    path = Path(path)
    if path.is_file():
        return path if path.suffix.lower() == ARCHIVE_SUFFIX else None
    if not path.is_dir():
        return None
    archives = sorted(p for p in path.iterdir() if p.suffix.lower() == ARCHIVE_SUFFIX
                      and p.is_file())
    for name in _ARCHIVE_PREFERENCE:
        if path / name in archives:
            return path / name
    if len(archives) > 1:
        raise VoxsplatError(f"{path}: several OpenMVS archives ({', '.join(a.name for a in archives)});"
                            f" give the one to read")
    return archives[0] if archives else None


def _image_file(folder: Path, name: str, archive: Path) -> Path:
    """An image named in the archive: relative to the archive's folder (as OpenMVS saves
    them), absolute, or, for a workspace that moved, by file name in `images/` or beside it."""
    stored = Path(name.replace("\\", "/"))
    options = [stored if stored.is_absolute() else folder / stored,
               folder / "images" / stored.name, folder / stored.name]
    found = next((p for p in options if p.is_file()), None)
    if found is None:
        raise VoxsplatError(f"{archive}: image {name} not found (looked for {options[0]} and "
                            f"{options[1]}); put the photos where the archive names them")
    return found


def denormalized_K(K_norm: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[3,3] pixel K of an archive's normalized one for an image of `size` (width, height).

    OpenMVS has normalized K by s = max(width, height) two ways: older tools divide all of it
    (c_n = c / s), newer ones use `Camera::ScaleK` (c_n = (c + 0.5) / s - 0.5, which puts a
    centred principal point near 0), and a principal point of exactly 0 means the image centre
    (`Camera::ComposeK`). The two readings differ by about s/2, so the one nearer the image's
    centre is the right one.
    """
    W, H = size
    s = float(max(W, H))
    K = np.asarray(K_norm, dtype=np.float64).copy()
    K[:2, :2] *= s
    c_norm = K[:2, 2].copy()
    centre = np.array([W / 2.0, H / 2.0])
    if not c_norm.any():
        K[:2, 2] = centre
    else:
        K[:2, 2] = min((c_norm * s, (c_norm + 0.5) * s - 0.5),
                       key=lambda c: float(np.abs(c - centre).max()))
    return K


def _intrinsics(image: MvsImage, size: tuple[int, int], file: Path, archive: Path) -> np.ndarray:
    if image.size is None:
        return denormalized_K(image.K, size)
    return scale_intrinsics(image.K, image.size, size, file, f"its camera in {archive}")


def _masks(archive: MvsArchive, archive_path: Path, paths: Sequence[Path],
           sizes: Sequence[tuple[int, int]], alpha_masks):
    """Masks named in the archive (white = the object), else a `masks/` folder, else alpha."""
    folder = archive_path.parent
    named = [image.mask_name for image in archive.images]
    if not any(named):
        image_dir = Path(os.path.commonpath([p.parent for p in paths]))
        return folder_masks(paths, image_dir, sizes, alpha_masks)
    masks = []
    for name, path, (W, H) in zip(named, paths, sizes):
        if not name:
            masks.append(torch.ones(H, W, dtype=torch.bool))
            continue
        file = _image_file(folder, name, archive_path)
        masks.append(fit_mask(read_mask(file), (W, H), file))
    return tuple(masks)


def read_openmvs(path: str | os.PathLike, *, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Scene:
    """Read an OpenMVS workspace: the archive's posed images, its points and colours, and the
    depth maps beside it.

    Args:
        path: the `.mvs` archive, or the workspace folder (see `find_mvs_archive`).
        background: RGB in [0,1] for images with alpha.

    Returns:
        Scene in name order; `depths` from `depth*.dmap` when the folder has them (zeros for
        images without one); "test" = every 8th image.

    Raises:
        VoxsplatError: no archive, a malformed archive or depth map, or missing photos.
    """
    archive_path = find_mvs_archive(Path(path))
    if archive_path is None:
        raise VoxsplatError(f"{path}: no OpenMVS archive (.mvs); give the scene.mvs file or "
                            f"its folder")
    archive = read_mvs_archive(archive_path)
    if not archive.images:
        raise VoxsplatError(f"{archive_path}: no image has a pose ({archive.n_unposed} without);"
                            f" run SfM first (e.g. COLMAP, then InterfaceCOLMAP)")
    folder = archive_path.parent
    files = [_image_file(folder, image.name, archive_path) for image in archive.images]
    order = sorted(range(len(files)), key=lambda i: files[i].as_posix())
    archive = replace(archive, images=tuple(archive.images[i] for i in order))
    files = [files[i] for i in order]
    images, alpha_masks = load_images(files, background)
    sizes = [image_size(im) for im in images]
    Ks = [_intrinsics(image, size, file, archive_path)
          for image, size, file in zip(archive.images, sizes, files)]
    has_points = len(archive.points) > 0
    scene = Scene(
        images=images, names=unique_names(files, folder),
        cameras=make_cameras([image.cam_from_world for image in archive.images], Ks, sizes),
        masks=_masks(archive, archive_path, files, sizes, alpha_masks),
        depths=_archive_depths(folder, archive.images, sizes),
        points=torch.from_numpy(archive.points) if has_points else None,
        point_colors=(torch.from_numpy(archive.colors).float() / 255.0
                      if has_points and archive.colors is not None else None),
        background=tuple(float(c) for c in background), source=str(archive_path))
    return split_every(scene, 8)
