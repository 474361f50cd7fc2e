"""Helpers shared by the readers: image loading, pose checks, camera assembly."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import VoxsplatError, shortened_list
from ..images import (IMAGE_EXTENSIONS, composite, read_image, read_mask, resize_image,
                      stored_size)

MASK_FOLDERS = ("masks", "mask")
"""Names of the folder that holds one mask per image (`mask_folder`, `folder_masks`)."""


_DECODE_TARGET: ContextVar[Optional[tuple]] = ContextVar("decode_target", default=None)
"""(size an image of a stored size is to be resized to, or None; the list of the full sizes
of the images resized) of the active `decode_max_side` or `decode_downscale` block."""


@contextlib.contextmanager
def decode_max_side(max_side: Optional[int]) -> Iterator[list[tuple[int, int]]]:
    """Within the block, the readers whose cameras follow their images' size (COLMAP's, LLFF's,
    transforms.json's: `load_images(..., capped=True)`) resize each image longer than `max_side` pixels to that
    as soon as it is decoded, by its own factor, as `transforms.cap_size` would: a hundred
    48 MP photos are never all in memory at full size. Yields the list of the full sizes
    (width, height) of the images it resized."""
    with _decode_target(None if not max_side else
                        lambda size: capped_size(size, max_side) if max(size) > max_side else None
                        ) as resized:
        yield resized


@contextlib.contextmanager
def decode_downscale(factor: float) -> Iterator[list[tuple[int, int]]]:
    """As `decode_max_side`, for one factor (`--downscale`): each image is resized to its size
    times `factor` as `transforms.downscale` rounds it, as soon as it is decoded (a JPEG at
    the power-of-two fraction of its size still that large). Yields the full sizes of the
    images it resized: where they are all the images, the scene needs no `downscale`."""
    def target(size: tuple[int, int]) -> Optional[tuple[int, int]]:
        scaled = tuple(max(1, round(side * factor)) for side in size)
        return scaled if scaled != tuple(size) else None
    with _decode_target(target if factor < 1.0 else None) as resized:
        yield resized


@contextlib.contextmanager
def _decode_target(target) -> Iterator[list[tuple[int, int]]]:
    resized: list[tuple[int, int]] = []
    token = _DECODE_TARGET.set((target, resized) if target is not None else None)
    try:
        yield resized
    finally:
        _DECODE_TARGET.reset(token)


def resizing_as_decoded() -> bool:
    """Whether a `decode_max_side` or `decode_downscale` block is resizing images as decoded."""
    return _DECODE_TARGET.get() is not None


def capped_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) of an image of `size` resized to at most `max_side` pixels a side, as
    `Cameras.scaled(max_side / longest side)` rounds it."""
    (W, H), factor = size, max_side / max(size)
    return max(1, round(W * factor)), max(1, round(H * factor))


def load_images(paths: Sequence[Path], background: Sequence[float], capped: bool = False
                ) -> tuple[tuple[Tensor, ...], Optional[tuple[Tensor, ...]]]:
    """Read images in parallel, composite alpha on `background` and keep alpha as the mask.
    The pixels are read as stored, whatever their EXIF orientation says: the readers' poses
    come from tools that ignore it (COLMAP, nerfstudio, LLFF's scripts). `capped`: resized
    as `decode_max_side` or `decode_downscale` asks, where one does (for readers whose cameras
    follow the images).

    Returns:
        images: uint8 [H,W,3] each.
        masks: `alpha_masks` of the images' alpha: None unless at least half of the images
            have a transparent pixel.
    """
    workers = max(1, min(8, (os.cpu_count() or 1) * 2, len(paths)))
    cap = _DECODE_TARGET.get() if capped else None

    def read(path: Path) -> tuple[Tensor, Optional[Tensor]]:
        full = stored_size(path) if cap is not None else None
        size = cap[0](full) if full else None
        rgb, alpha = read_image(path, exif=False, at_least=size)
        image = composite(rgb, alpha, background)  # before resizing: the colours under
        if size is not None:                        # transparent pixels must not bleed in
            if image_size(rgb) != size:  # (a JPEG comes at a power-of-two fraction, or whole)
                image = resize_image(image, size)
                alpha = None if alpha is None else resize_image(alpha, size)
            cap[1].append(full)  # (list.append: safe across the threads)
        return image, alpha

    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(read, paths))
    images = tuple(rgb for rgb, _ in decoded)
    masks = alpha_masks([alpha for _, alpha in decoded], paths,
                        [tuple(rgb.shape[:2]) for rgb in images])
    return images, None if masks is None else tuple(masks)


def alpha_masks(alphas: Sequence[Optional[Tensor]], paths: Sequence[Path | str],
                shapes: Sequence[tuple[int, int]]) -> Optional[list[Tensor]]:
    """Masks (alpha > 127, True = object) from the images' alpha (None where an image has no
    transparent pixel; [H,W] of `shapes`), when at least half of the images have one: a
    background remover's output, with all-white masks for views the object fills. Where fewer
    do (a screenshot or PNG export among photos), their alpha is no mask: it would put every
    view into masked training. Either mix gets a warning naming the odd images.
    """
    have = [a is not None for a in alphas]
    if not any(have):
        return None
    names = [Path(p).name for p in paths]
    if 2 * sum(have) < len(have):
        odd = [n for n, h in zip(names, have) if h]
        warnings.warn(f"{Path(paths[0]).parent}: only {len(odd)} of {len(names)} images have "
                      f"transparent pixels ({shortened_list(odd)}); their alpha is composited "
                      f"on the background and not used as masks (give every image alpha, or "
                      f"add a masks/ folder)", stacklevel=3)
        return None
    if not all(have):
        odd = [n for n, h in zip(names, have) if not h]
        warnings.warn(f"{Path(paths[0]).parent}: the images' alpha is used as masks, but "
                      f"{len(odd)} of {len(names)} images have no transparent pixel "
                      f"({shortened_list(odd)}): their masks are all white (object "
                      f"everywhere)", stacklevel=3)
    masks = [torch.ones(shape, dtype=torch.bool) if alpha is None else alpha > 127
             for alpha, shape in zip(alphas, shapes)]
    warn_empty_masks(masks, names, Path(paths[0]).parent, alpha=True)
    return masks


def mask_folder(image_dir: Path) -> Optional[Path]:
    """The `masks/` (or `mask/`) folder inside `image_dir`, else beside it when `image_dir` is a
    scene's image folder (`images`, `images_4`, `image`, `rgb`: `scene/masks`; for
    `images_4`, nerfstudio's `scene/masks_4` first), if any; a plain photo folder does not
    take a `masks/` that merely sits next to it."""
    found = _mask_folders(image_dir)
    return found[0] if found else None


def _mask_folders(image_dir: Path) -> list[Path]:
    """Every folder `mask_folder` could take, the one it takes first."""
    layout = re.fullmatch(r"(images?|rgb)(_\d+)?", image_dir.name.lower())
    found = [image_dir / name for name in MASK_FOLDERS]
    if layout is not None:  # nerfstudio's masks_4/ beside images_4/ first, at that size
        found += [image_dir.parent / f"masks{layout.group(2)}"] if layout.group(2) else []
        found += [image_dir.parent / name for name in MASK_FOLDERS]
    return [p for p in found if p.is_dir() and p != image_dir]


def folder_masks(paths: Sequence[Path], image_dir: Path, sizes: Sequence[tuple[int, int]],
                 alpha_masks: Optional[Sequence[Tensor]] = None,
                 orientations: Optional[Sequence[int]] = None) -> Optional[tuple[Tensor, ...]]:
    """Masks of the images `paths` (of (width, height) `sizes`) from their `mask_folder`
    (COLMAP's layout: the mask of `images/a/b.jpg` is `masks/a/b.jpg.png`; `masks/a/b.png` is
    read too, and `masks/a/b.JPG.png`, named after the full-size photo an `images_4/b.png`
    was resized from), else `alpha_masks`: the folder wins, with a warning when both exist.

    A mask is True (white) where the object is. Masks of another size than their image are
    resized (nearest) when the two have one aspect ratio, as for `images_4`-style copies.
    A mask with no object pixel gets a warning. With `orientations` (the EXIF orientation of
    photos used upright, `sizes` upright), a mask is read as stored, as COLMAP reads masks,
    and turned upright with its photo, unless it already has the photo's upright shape
    where the stored one differs (a mask made from the upright photo).

    Raises:
        VoxsplatError: the folder lacks an image's mask, or a mask's shape cannot match.
    """
    folder, *others = _mask_folders(image_dir) or [None]
    if folder is None:
        return None if alpha_masks is None else tuple(alpha_masks)
    if others:
        warnings.warn(f"{folder}: the masks come from this folder; {shortened_list(others)} "
                      f"left out", stacklevel=3)
    if alpha_masks is not None:
        warnings.warn(f"{folder}: the masks come from this folder; the images' transparency "
                      f"is composited on the background and not used as masks", stacklevel=3)
    masks, files = [], []
    for path, (W, H) in zip(paths, sizes):
        rel = Path(path).relative_to(image_dir)
        options = [folder / (rel.as_posix() + ".png"), (folder / rel).with_suffix(".png"), folder / rel]
        found = next((p for p in options if p.is_file()), None) or _mask_of_stem(folder, rel)
        if found is None:
            raise VoxsplatError(f"{folder}: no mask for {rel.as_posix()} (looked for "
                                f"{options[0].name} and {options[1].name}); give every image a "
                                f"mask, or move {folder.name}/ away to use none")
        mask = read_mask(found)
        turn = orientations[len(masks)] if orientations is not None else 1
        upright = W != H and resized_copy((mask.shape[1], mask.shape[0]), (W, H))
        if turn in range(2, 9) and not (turn >= 5 and upright):
            mask = exif_turned(mask, turn)
        masks.append(fit_mask(mask, (W, H), found))
        files.append(found.name)
    warn_empty_masks(masks, files, folder)
    return tuple(masks)


def exif_turned(mask: Tensor, orientation: int) -> Tensor:
    """`mask` [h,w] bool as stored, turned upright as the EXIF `orientation` (1-8) says."""
    from PIL import Image
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}[orientation]
    image = Image.fromarray(mask.numpy().astype(np.uint8) * 255).transpose(method)
    return torch.from_numpy(np.asarray(image) > 127)


def _mask_of_stem(folder: Path, rel: Path) -> Optional[Path]:
    """The one mask `folder/STEM.EXT.png` of the image `rel` under another extension EXT
    (masks named after the full-size `IMG_0.JPG` of an `images_4/IMG_0.png`), if exactly one."""
    found = [p for p in (folder / rel.parent).glob(f"{glob.escape(rel.stem)}.*.png")
             if p.name[len(rel.stem):-len(".png")].lower() in IMAGE_EXTENSIONS]
    return found[0] if len(found) == 1 else None


def warn_empty_masks(masks: Sequence[Tensor], names: Sequence[str], folder: Path | str,
                     alpha: bool = False) -> None:
    """Warn where some of `masks` (the files `names` in `folder`; with `alpha`, the images of
    those names, transparent everywhere) hold no object pixel."""
    empty = [name for name, mask in zip(names, masks) if not mask.any()]
    if not empty:
        return
    what = "image(s) are transparent everywhere" if alpha else "mask(s) have no white (object) pixel"
    warnings.warn(f"{folder}: {len(empty)} {what}: {shortened_list(empty)}; a mask is white "
                  f"where the object is (or, in a PNG with transparency, opaque there)", stacklevel=3)


INVERTED_BORDER = 0.95
"""Masks white along this share of their border, in more than half of the views, with at
least 1% dark inside, look inverted (white around a dark object): `check_masks` warns."""


def check_masks(masks: Optional[Sequence[Tensor]], source: Path | str) -> None:
    """Refuse masks of which none has an object pixel (nothing could be learned), and warn
    where most look inverted: white all along their border (`INVERTED_BORDER`) with some
    background inside, which an object rarely is in every view.

    Raises:
        VoxsplatError: every mask is empty.
    """
    if masks is None or not len(masks):
        return
    if not any(bool(m.any()) for m in masks):
        raise VoxsplatError(f"{source}: every mask is empty (no white, object pixel); a mask "
                            f"is white where the object is: fix or invert the masks, or move "
                            f"them away to train on the whole images")
    framed = sum(1 for m in masks if float((~m).float().mean()) >= 0.01
                 and _border_share(m) >= INVERTED_BORDER)
    if 2 * framed > len(masks):
        warnings.warn(f"{source}: {framed} of {len(masks)} masks are white all around their "
                      f"border, with a dark part inside: they look inverted. A mask is white "
                      f"where the object is; invert them if the object is the dark part",
                      stacklevel=2)


def _border_share(mask: Tensor) -> float:
    """The share of `mask [H,W]`'s border pixels that are True."""
    border = torch.cat([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    return float(border.float().mean())


def fit_mask(mask: Tensor, size: tuple[int, int], source: Path | str) -> Tensor:
    """`mask` [h,w] bool at its image's (width, height) `size` when it is a uniformly resized
    copy (`resized_copy`), else a VoxsplatError naming `source`: shrunk by area, thresholded at
    half (as `transforms.downscale` shrinks masks: an image resized as decoded keeps the mask
    a full-size load resized after would have), enlarged by nearest pixel."""
    h, w = mask.shape
    W, H = size
    if (h, w) == (H, W):
        return mask
    if not resized_copy((w, h), (W, H)):
        raise VoxsplatError(f"{source}: mask is {w}x{h} but its image is {W}x{H}; masks "
                            f"must have their images' shape (or be a resized copy of it)")
    if W <= w and H <= h:
        return resize_image(mask, (W, H))
    return torch.nn.functional.interpolate(mask[None, None].float(), size=(H, W),
                                           mode="nearest")[0, 0] > 0.5


def fit_depth(depth: Tensor, size: tuple[int, int], source: Path | str) -> Tensor:
    """`depth` [h,w] at its image's (width, height) `size`: resized (nearest: no averaging
    across depth edges) when it is a uniformly resized copy (`resized_copy`; depth cameras are
    often coarser than photos), else a VoxsplatError naming `source` (a map of another aspect,
    e.g. a rotated phone sensor's, would put every point in the wrong place)."""
    from ..images import resize_depth
    h, w = depth.shape
    W, H = size
    if (h, w) != (H, W) and not resized_copy((w, h), (W, H)):
        raise VoxsplatError(f"{source}: depth map is {w}x{h} but its image is {W}x{H}; depth "
                            f"maps must have their images' aspect ratio (a rotated or cropped "
                            f"map cannot be placed)")
    return resize_depth(depth, (W, H))


def resized_copy(size: tuple[int, int], image_size: tuple[int, int]) -> bool:
    """True when a map of `size` (width, height) has the aspect ratio of an image of
    `image_size`, up to a pixel of rounding (a uniformly resized copy: masks, depth maps) of
    the smaller of the two (a mask kept at full size for an image resized as decoded, too)."""
    (w, h), (W, H) = sorted((tuple(size), tuple(image_size)), key=lambda s: s[0] * s[1])
    return abs(w / W - h / H) * max(W, H) <= 1.0


def image_size(image: Tensor) -> tuple[int, int]:
    """(width, height) of an [H,W,...] image."""
    return int(image.shape[1]), int(image.shape[0])


def require_one_size(images: Sequence[Tensor], paths: Sequence[Path], why: str) -> None:
    """Raise a VoxsplatError naming two files whose images differ in size."""
    first = image_size(images[0])
    for img, path in zip(images, paths):
        if image_size(img) != first:
            raise VoxsplatError(
                f"{path}: image is {image_size(img)[0]}x{image_size(img)[1]} but {paths[0]} is "
                f"{first[0]}x{first[1]}; {why} needs one image size, resize the images to match")


def check_finite(matrix: np.ndarray, source: Path | str, frame: str) -> None:
    """Raise a VoxsplatError naming `frame` when its pose holds NaN or inf."""
    if not np.all(np.isfinite(matrix)):
        raise VoxsplatError(f"{source}: {frame} has NaN or inf in its pose; "
                            f"fix or remove that frame")


def check_rotation(rotation: np.ndarray, source: Path | str, frame: str) -> None:
    """Raise a VoxsplatError when a camera rotation [3,3] is degenerate (not invertible)."""
    if abs(np.linalg.det(rotation)) < 1e-8:
        raise VoxsplatError(f"{source}: {frame} has a degenerate rotation (determinant ~ 0); "
                            f"fix or remove that frame")


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """[3,3] float64 pinhole intrinsics."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int],
                     path: Path, camera: str, why: str = "") -> np.ndarray:
    """K [3,3] of a camera of `from_size` (width, height) for its photo `path` of `to_size`,
    a uniformly resized copy (e.g. `images_4`); each side may round by a pixel.

    Raises:
        VoxsplatError: the photo's aspect ratio is not the camera's (`camera` names it, `why`
            may say what usually causes it).
    """
    (w, h), (W, H) = from_size, to_size
    if (W, H) == (w, h):
        return K
    sx, sy = W / w, H / h
    if abs(sx - sy) * max(W, H) > 1.0:
        raise VoxsplatError(f"{path}: image is {W}x{H} but {camera} is {w}x{h}"
                            f"{f' ({why})' if why else ''}; give the images the model was made from")
    K = K.copy()
    K[0, :] *= sx
    K[1, :] *= sy
    K[2, :] = (0.0, 0.0, 1.0)
    return K


def make_cameras(cam_from_world: Sequence[np.ndarray], Ks: Sequence[np.ndarray],
                 sizes: Sequence[tuple[int, int]]) -> Cameras:
    """Cameras from per-view float64 [4,4] cam_from_world, [3,3] Ks and (width, height)."""
    return Cameras(
        cam_from_world=torch.from_numpy(np.stack(cam_from_world)).float(),
        Ks=torch.from_numpy(np.stack(Ks)).float(),
        widths=torch.tensor([w for w, _ in sizes], dtype=torch.int64),
        heights=torch.tensor([h for _, h in sizes], dtype=torch.int64),
    )


def unique_names(paths: Sequence[Path], root: Path) -> tuple[str, ...]:
    """File stems when they are unique, else paths relative to `root` without the suffix."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return tuple(stems)
    names = []
    for p in paths:
        try:
            rel = p.relative_to(root)
        except ValueError:
            rel = p
        names.append(rel.with_suffix("").as_posix())
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise VoxsplatError(f"{root}: image '{dup}' is listed twice; list each image once")
    return tuple(names)
