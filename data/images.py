"""Image and mask I/O through Pillow: every mode to uint8 RGB (+ alpha), compositing, resizing.

All images leave this module as uint8 tensors [H,W,3] (RGB) with an optional uint8 [H,W]
alpha (None where the file has none, or one with no transparent pixel), colours in sRGB.
Photos are rotated upright by their EXIF orientation, unless a reader asks for the stored
pixels (`exif=False`): COLMAP, nerfstudio and LLFF's tools all ignore the tag, so their poses
and intrinsics describe the pixels as stored.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .errors import VoxsplatError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".bmp", ".tif", ".tiff", ".webp",
                    ".avif", ".heic", ".heif")
UNREAD_EXTENSIONS = {**dict.fromkeys((".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf",
                                      ".rw2", ".pef", ".srw"), "camera RAW"), ".gif": "GIF"}
"""Photos in these formats are not read (RAW needs a raw developer; a GIF has 256 colours):
`unread_photos` names them, so that they are not left out without a word."""
HEIF_EXTENSIONS = (".heic", ".heif")
"""iPhone photos: decoded through pillow-heif (an optional install), upright as shown."""

# Pillow's own remarks on files it reads ("Palette images with transparency expressed in
# bytes ...", "Corrupt EXIF data", a photo's pixel count over its decompression-bomb guard) are
# not the user's business. They are filtered once for the process: `warnings.catch_warnings`
# around each read would race between the reader threads (`readers.common.load_images`) and
# leave every later warning of the process ignored, or lost from a caller's record.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
MAX_PIXELS = 1_000_000_000
"""The largest image read (a gigapixel; Pillow's own guard, 179 MP, refuses 200 MP phone
photos): Pillow raises its decompression-bomb error past twice its MAX_IMAGE_PIXELS."""
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when `path` has a known image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def unread_photos(folder: str | os.PathLike) -> str:
    """The files directly inside `folder` in a photo format that is not read (camera RAW, GIF),
    but for a RAW file beside the camera's JPEG of it (one stem), as a phrase naming a few of
    them and what to do ("" where there are none)."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")]
    read = {p.stem.lower() for p in files if is_image_file(p)}
    found = sorted(p for p in files if p.suffix.lower() in UNREAD_EXTENSIONS
                   and p.stem.lower() not in read)
    if not found:
        return ""
    kinds = sorted({UNREAD_EXTENSIONS[p.suffix.lower()] for p in found})
    names = ", ".join(p.name for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return (f"{len(found)} file(s) in a format that is not read ({names}: {' and '.join(kinds)}); "
            f"export them as JPEG to use them")


def stored_size(path: str | os.PathLike) -> Optional[tuple[int, int]]:
    """(width, height) of an image file as stored (EXIF rotation ignored), from its header;
    None where it cannot be opened."""
    try:
        ensure_decoder(path)
        with Image.open(path) as img:
            return img.size
    except Exception:  # unreadable: whoever decodes it names it
        return None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def image_subfolders(folder: str | os.PathLike, skip: Sequence[str] = ("masks", "mask")
                     ) -> list[tuple[str, int]]:
    """(name, image count) of the sub-folders of `folder` that hold images directly (hidden
    ones and `skip`, the mask folders, left out): photos there are not `list_images`'."""
    found = []
    for sub in sorted(Path(folder).iterdir()):
        if sub.is_dir() and not sub.name.startswith(".") and sub.name.lower() not in skip:
            try:
                count = len(list_images(sub))
            except OSError:
                continue
            if count:
                found.append((sub.name, count))
    return found


def describe_subfolders(found: Sequence[tuple[str, int]], shown: int = 4) -> str:
    """``day1/ (12), day2/ (9)`` for `image_subfolders`' result."""
    text = ", ".join(f"{name}/ ({count})" for name, count in found[:shown])
    return text + (f" and {len(found) - shown} more" if len(found) > shown else "")


def ensure_decoder(path: str | os.PathLike) -> None:
    """Make Pillow able to open `path`: HEIC/HEIF photos need pillow-heif, registered on first
    use (the one import site of pillow_heif; it applies the photo's rotation when decoding).

    Raises:
        VoxsplatError: a HEIC/HEIF file and pillow-heif is not installed.
    """
    try:
        import pillow_heif
    except ImportError:
        if Path(path).suffix.lower() not in HEIF_EXTENSIONS:
            return  # (registered where installed: a HEIC photo renamed .jpg opens too)
        raise VoxsplatError(f"{path}: a HEIC photo, which needs pillow-heif to read; run `pip "
                            f"install pillow-heif` (or `pip install 'voxsplat[heic]'`), or "
                            f"export the photos as JPEG") from None
    _register_heif(pillow_heif)


@functools.cache
def _register_heif(pillow_heif) -> None:
    pillow_heif.register_heif_opener()


def too_large(path) -> VoxsplatError:
    """The error for an image of more than MAX_PIXELS (Pillow's DecompressionBombError)."""
    return VoxsplatError(f"{path}: more than {MAX_PIXELS // 10**6} megapixels, more than "
                         f"voxsplat reads; resize it")


def _cannot_read(path, reason: str) -> VoxsplatError:
    return VoxsplatError(f"{path}: cannot read image ({reason}); "
                         f"check the file is a valid JPEG/PNG")


@contextlib.contextmanager
def _decoding(path: str | os.PathLike) -> Iterator[None]:
    """Turn any failure to open or decode `path` inside the block into a VoxsplatError."""
    ensure_decoder(path)
    try:
        yield
    except FileNotFoundError:
        raise _cannot_read(path, "no such file") from None
    except IsADirectoryError:
        raise _cannot_read(path, "it is a folder") from None
    except UnidentifiedImageError:
        raise _cannot_read(path, "unknown or corrupt format") from None
    except Image.DecompressionBombError:
        raise too_large(path) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise _cannot_read(path, str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def _open(path: str | os.PathLike, exif: bool = True,
          at_least: Optional[tuple[int, int]] = None) -> Image.Image:
    """Open, fully decode and (with `exif`) EXIF-rotate an image; any failure becomes a
    VoxsplatError. `at_least` (width, height, as stored): a JPEG may be decoded at a half,
    quarter or eighth of its size where that is still this large (Pillow's draft mode)."""
    with _decoding(path), Image.open(path) as img:
        if at_least is not None:
            img.draft(None, at_least)  # (a no-op for formats other than JPEG)
        img.load()
        rotated = ImageOps.exif_transpose(img) if exif else img
        return rotated if rotated is not img else img.copy()


def check_decodes(path: str | os.PathLike) -> None:
    """Decode an image in full, keeping nothing: a file whose header reads but whose pixels
    are cut short (a truncated download) raises here, as it does in `read_image`.

    Raises:
        VoxsplatError: the file is missing, unreadable or corrupt.
    """
    with _decoding(path), Image.open(path) as img:
        img.load()


@functools.lru_cache(maxsize=16)
def _to_srgb_transform(icc: bytes, mode: str):
    """Pillow's transform from the colour profile `icc` (an ICC file's bytes) of a `mode`
    image ("RGB" or "CMYK") to sRGB RGB, or None where the profile is sRGB already (its
    description says so) or cannot be used: the pixels are then taken as sRGB, as before."""
    try:
        from PIL import ImageCms  # (a Pillow built without littlecms has none)
    except ImportError:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode == "RGB" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None
        # intent 1, relative colorimetric: as browsers and photo viewers show a Display P3 or
        # Adobe RGB photo on an sRGB screen; flag 0x40, lcms's NOCACHE: the transform is shared
        # by the reader threads (as ints: Pillow < 10 has no enums for them)
        return ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), mode, "RGB",
                                       renderingIntent=1, flags=0x40)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _in_srgb(img: Image.Image) -> Image.Image:
    """`img` with its colours in sRGB, where its embedded colour profile says they are in
    another space: phones' Display P3 (iPhones), cameras' Adobe RGB, print CMYK. Training,
    the exports and the videos all take pixel values as sRGB, as viewers show them; read
    as stored, a P3 photo's reds and greens came out duller."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    transform = _to_srgb_transform(bytes(icc), "CMYK" if img.mode == "CMYK" else "RGB")
    if transform is None:
        return img
    from PIL import ImageCms
    if img.mode != "RGBA":
        return ImageCms.applyTransform(img, transform)
    rgb = ImageCms.applyTransform(img.convert("RGB"), transform)
    rgb.putalpha(img.getchannel("A"))
    return rgb


def _sixteen_to_eight(img: Image.Image) -> np.ndarray:
    """[H,W] uint8 from a 16-bit (or 32-bit integer) grayscale image, 65535 -> 255."""
    values = np.asarray(img).astype(np.float64)
    return np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)


def _to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Numpy [H,W,3] uint8 RGB and [H,W] uint8 alpha (or None) from any Pillow mode."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        gray = _sixteen_to_eight(img)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("LA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "F":  # 32-bit float gray: 0..1 as linear exports write it, else 0..255
        values = np.asarray(img, dtype=np.float64)
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        gray = np.clip(np.round(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    elif mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    array = np.asarray(img)
    if img.mode == "RGBA":
        alpha = array[:, :, 3]
        # an alpha with no transparent pixel (a photo saved as RGBA) is no mask
        return np.ascontiguousarray(array[:, :, :3]), (None if alpha.min() == 255
                                                       else np.ascontiguousarray(alpha))
    return np.ascontiguousarray(array), None


def read_image(path: str | os.PathLike, exif: bool = True,
               at_least: Optional[tuple[int, int]] = None) -> tuple[Tensor, Optional[Tensor]]:
    """Read an image file as RGB and optional alpha, after its EXIF orientation.

    Handles RGB, RGBA, LA, palette (with or without transparency), grayscale, 16-bit
    grayscale (scaled so 65535 -> 255), 32-bit float grayscale (0..1 scaled to 0..255) and CMYK.
    Colours are converted to sRGB where the file's embedded colour profile names another space
    (an iPhone's Display P3, a camera's Adobe RGB, a CMYK print profile).

    Args:
        path: image file (PNG, JPEG, or anything Pillow reads).
        exif: rotate the image upright as its EXIF orientation says; False keeps the pixels as
            stored (what COLMAP and nerfstudio read).
        at_least: (width, height) as stored that the caller will resize the image to: a JPEG
            is then decoded at the smallest power-of-two fraction of its size at least this
            large (faster, and a fraction of the memory), not at full size.

    Returns:
        rgb [H,W,3] uint8 and alpha [H,W] uint8, or None when the file has no alpha or its
        alpha is opaque everywhere.

    Raises:
        VoxsplatError: the file is missing, unreadable or corrupt.
    """
    rgb, alpha = _to_rgb_alpha(_in_srgb(_open(path, exif, at_least)))
    return torch.from_numpy(rgb.copy()), None if alpha is None else torch.from_numpy(alpha.copy())


_LOSSY_FORMATS = ("JPEG", "MPO", "WEBP", "HEIF", "AVIF")
"""Formats whose compression noise adds levels to a mask: thresholded at half range only."""


def _mask_levels(img: Image.Image) -> tuple[np.ndarray, int, Optional[np.ndarray]]:
    """A mask's per-pixel value [H,W] (the max over its colour channels, palette as RGB, 16-bit
    kept as stored), half its range (127, or 32767 for a 16-bit file with values over 255) and
    its alpha [H,W] uint8 (None where it has no transparent pixel)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
        return values, (127 if values.size == 0 or values.max() <= 255 else 32767), None
    rgb, alpha = _to_rgb_alpha(img)
    return rgb.max(axis=2), 127, alpha


def _mask_from_levels(values: np.ndarray, half: int, lossy: bool) -> np.ndarray:
    """bool [H,W]: a binary mask (two values) is the larger value, one value is all object
    unless 0; more levels (or a lossy file) are thresholded at `half`."""
    if values.size == 0 or lossy:
        return values > half
    lo, hi = values.min(), values.max()
    if lo == hi:
        return np.full(values.shape, bool(hi > 0))
    if np.logical_or(values == lo, values == hi).all():
        return values == hi
    return values > half


def read_mask(path: str | os.PathLike, exif: bool = False) -> Tensor:
    """Read a mask image as bool [H,W], True on the object.

    With a transparent pixel the alpha is the mask (> 127; background removers write the
    object there, over any colour). Otherwise each pixel's value is the max over its colour
    channels (a palette as its RGB colours; 16-bit as stored), so white, red, green or blue
    objects on black all count, and:
      - two values (a binary mask: 0/1, 0/255, 0/65535, VOC's 0/(128,0,0)): the object is the
        larger one;
      - one value: all object, or none when it is 0;
      - more levels (soft edges), or any JPEG/WebP/HEIF/AVIF file (compression noise):
        threshold at half the range, > 127, or > 32767 for 16-bit values over 255.

    Args:
        path: mask file (PNG, JPEG, or anything Pillow reads).
        exif: rotate as its EXIF orientation says (as `read_image`). False (the default)
            keeps the pixels as stored, as COLMAP reads masks: a mask follows its photo, and
            is turned with it where the photo is used upright (`folder_masks`).

    Returns:
        bool [H,W] mask.

    Raises:
        VoxsplatError: the file is missing, unreadable or corrupt.
    """
    with _decoding(path), Image.open(path) as img:
        img.load()
        lossy = img.format in _LOSSY_FORMATS
        values, half, alpha = _mask_levels(ImageOps.exif_transpose(img) if exif else img)
    mask = alpha > 127 if alpha is not None else _mask_from_levels(values, half, lossy)
    return torch.from_numpy(np.ascontiguousarray(mask))


def composite(rgb: Tensor, alpha: Optional[Tensor],
              background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Blend an image over a constant background colour.

    Args:
        rgb: [H,W,3] uint8 colours (not premultiplied).
        alpha: [H,W] uint8 opacity, or None (returns `rgb` unchanged).
        background: RGB in [0,1].

    Returns:
        [H,W,3] uint8 composited image.
    """
    if alpha is None:
        return rgb
    if len(background) != 3 or not all(0.0 <= float(c) <= 1.0 for c in background):
        raise VoxsplatError(f"background {tuple(background)}: expected 3 values in [0,1], "
                            f"e.g. (1, 1, 1) for white")
    # numpy, not torch: elementwise torch ops on a busy small CPU oversubscribe its threads.
    a = alpha.numpy().astype(np.float32)[:, :, None] / 255.0
    bg = np.array([float(c) for c in background], dtype=np.float32) * 255.0
    out = rgb.numpy().astype(np.float32) * a + bg * (1.0 - a)
    return torch.from_numpy(np.clip(np.round(out), 0, 255).astype(np.uint8))


def _resize_channel(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one [H,W] uint8 channel: box (area) filter to shrink, bicubic to enlarge."""
    w, h = size
    shrinking = w <= channel.shape[1] and h <= channel.shape[0]
    resample = Image.BOX if shrinking else Image.BICUBIC
    return np.array(Image.fromarray(channel).resize((w, h), resample=resample))


def resize_image(img: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a uint8 image with an antialiasing (area) filter.

    Args:
        img: [H,W,C] or [H,W] uint8 (bool is treated as 0/255 and thresholded back).
        size: target (width, height) in pixels.

    Returns:
        The resized image, same dtype and channel count, [h,w,C] or [h,w].
    """
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"resize_image: size must be positive, got {size}")
    if (img.shape[1], img.shape[0]) == (w, h):
        return img.clone()
    is_bool = img.dtype == torch.bool
    array = (img.to(torch.uint8) * 255 if is_bool else img).numpy()
    if array.dtype != np.uint8:
        raise ValueError(f"resize_image: expected uint8 or bool, got {img.dtype}")
    if array.ndim == 2:
        out = _resize_channel(array, (w, h))
    else:
        out = np.stack([_resize_channel(np.ascontiguousarray(array[:, :, c]), (w, h))
                        for c in range(array.shape[2])], axis=2)
    out_t = torch.from_numpy(np.ascontiguousarray(out))
    return out_t > 127 if is_bool else out_t


def resize_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    """A depth map [H,W] (float, 0 = unknown) at `size` (width, height): each pixel takes the
    sample nearest its centre (no averaging across depth edges or into unknown pixels)."""
    w, h = int(size[0]), int(size[1])
    if (depth.shape[1], depth.shape[0]) == (w, h):
        return depth.clone()
    return torch.nn.functional.interpolate(depth[None, None].float(), size=(h, w),
                                           mode="nearest")[0, 0].to(depth.dtype)


def read_depth(path: str | os.PathLike, unit_scale: float = 1.0) -> Tensor:
    """A depth map file as float32 [H,W] times `unit_scale`, 0 (or NaN, inf, negative) =
    unknown: a .npy array, or a 16-bit or float image (PNG/TIFF; e.g. millimetres, as depth
    cameras and nerfstudio store it, with `unit_scale` 1e-3).

    Raises:
        VoxsplatError: the file is missing, unreadable, or not a single-channel map.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise _cannot_read(path, "no such file") from None
        except (OSError, ValueError) as e:
            raise VoxsplatError(f"{path}: cannot read the depth map ({e}); write it with "
                                f"numpy.save") from None
    else:
        img = _open(path)
        if img.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L"):
            raise VoxsplatError(f"{path}: a {img.mode} image is not a depth map; depth maps are "
                                f"16-bit or float single-channel images, or .npy arrays")
        array = np.asarray(img)
    array = np.squeeze(np.asarray(array, dtype=np.float64))
    if array.ndim != 2:
        raise VoxsplatError(f"{path}: the depth map has shape {array.shape}; expected one value "
                            f"per pixel [H,W]")
    array = np.where(np.isfinite(array) & (array > 0), array * float(unit_scale), 0.0)
    return torch.from_numpy(array.astype(np.float32))
