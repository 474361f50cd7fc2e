"""The photos SfM runs on: listing, checks, camera grouping by EXIF, and a staging folder.

COLMAP reads pixels as stored and ignores EXIF orientation; our images are always shown
upright. So images with an EXIF rotation, an alpha channel or a format COLMAP may not read
are staged as upright, opaque JPEG/PNG copies (keeping the EXIF focal length); the others are
hard-linked (or copied). No pycolmap here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...data.errors import VoxsplatError, shortened_list
from ...data.images import (check_decodes, composite, describe_subfolders, ensure_decoder,
                            image_subfolders, list_images, read_image, too_large,
                            unread_photos)
from ...data.readers.common import alpha_masks, check_masks, folder_masks, mask_folder
from .config import SfmConfig

_COLMAP_FORMATS = (".jpg", ".jpeg", ".png")
_ORIENTATION, _MAKE, _MODEL, _EXIF_IFD, _FOCAL, _FOCAL_35MM = (0x0112, 0x010F, 0x0110, 0x8769,
                                                               0x920A, 0xA405)


@dataclass(frozen=True)
class InputImage:
    """One photo: its file, the name SfM sees, its upright size and camera identity."""

    source: Path
    name: str
    """File name in the staging folder (and in the COLMAP model)."""
    width: int
    height: int
    camera_key: tuple
    """(width, height, EXIF make, model, focal) - equal keys share intrinsics under `auto`."""
    needs_copy: bool
    """True when the file must be re-encoded upright/opaque rather than linked."""
    has_alpha: bool = False
    """The file has an alpha channel (or a transparent palette entry): a mask."""
    orientation: int = 1
    """EXIF orientation (1-8; 1 upright): `width`, `height` are after it."""
    gray: bool = False
    """A grayscale photo (no colour to train)."""


def _exif_fields(img: Image.Image) -> tuple[int, str, str, Optional[float]]:
    """(orientation, make, model, focal length in mm or 35-mm equivalent) from EXIF."""
    try:
        exif = img.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # malformed EXIF: treat as absent
        return 1, "", "", None
    focal = sub.get(_FOCAL) or sub.get(_FOCAL_35MM)
    try:
        focal = float(focal) if focal else None
    except (TypeError, ValueError, ZeroDivisionError):
        focal = None
    orientation = exif.get(_ORIENTATION, 1)
    make, model = (str(exif.get(tag, "")).strip("\x00 ") for tag in (_MAKE, _MODEL))
    return orientation if isinstance(orientation, int) else 1, make, model, focal


def describe_image(path: Path) -> InputImage:
    """Read a photo's header (not its pixels): size after EXIF rotation and camera identity.

    Raises:
        VoxsplatError: the file is not a readable image.
    """
    ensure_decoder(path)
    try:
        with Image.open(path) as img:
            W, H = img.size
            orientation, make, model, focal = _exif_fields(img)
            has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
            odd_mode = img.mode not in ("RGB", "L", "RGBA", "LA", "P", "PA")
            other_format = img.format not in ("JPEG", "MPO", "PNG")  # a WebP saved as .jpg
            gray = img.mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
    except Image.DecompressionBombError:
        raise too_large(path) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        reason = "unknown or corrupt format" if isinstance(e, UnidentifiedImageError) else str(e)
        raise VoxsplatError(f"{path}: cannot read image ({reason}); check the file is a valid "
                            f"JPEG/PNG or remove it") from None
    if orientation in (5, 6, 7, 8):
        W, H = H, W
    needs_copy = (orientation not in (0, 1) or has_alpha or odd_mode or other_format
                  or path.suffix.lower() not in _COLMAP_FORMATS)
    name = path.name if not needs_copy else path.stem + (
        ".png" if path.suffix.lower() == ".png" else ".jpg")
    return InputImage(path, name, W, H, (W, H, make, model, focal), needs_copy, has_alpha,
                      orientation if orientation in range(1, 9) else 1, gray)


def check_readable(images: Sequence[InputImage]) -> None:
    """Decode `images` in full (their headers alone passed `describe_image`): COLMAP reads a
    truncated file without a word, and it would pose and train with grey or black rows.

    Raises:
        VoxsplatError: naming the first photo that cannot be decoded, and the fix.
    """
    from concurrent.futures import ThreadPoolExecutor

    def decode(im: InputImage) -> Optional[tuple[Path, str]]:
        try:
            check_decodes(im.source)
        except VoxsplatError as e:
            return im.source, str(e)
        return None
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        failed = [f for f in pool.map(decode, images) if f is not None]
    _raise_unreadable(failed, "; SfM could not use it: replace it with a readable copy or remove "
                              "it from the folder")


def scan_images(image_dir: Path) -> list[InputImage]:
    """The photos directly inside `image_dir`, sorted by name, checked for SfM.

    Raises:
        VoxsplatError: the folder is missing, has fewer than 2 images, or two images share a
            name stem (e.g. `a.jpg` and `a.png`).
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise VoxsplatError(f"{image_dir}: no such folder; give the folder holding the photos")
    paths = list_images(image_dir)
    if not paths:
        raise VoxsplatError(f"{image_dir}: no images (.jpg, .png, ...) in the folder; put the "
                            f"photos directly inside it")
    nested = [(n, c) for n, c in image_subfolders(image_dir) if n != "sfm"]
    if len(paths) < 2:
        more = max(nested, key=lambda nc: nc[1], default=None)
        hint = (f"; its sub-folder {more[0]}/ holds {more[1]}: give {image_dir / more[0]}"
                if more and more[1] >= 2 else "")
        raise VoxsplatError(f"{image_dir}: only 1 image ({paths[0].name}); structure-from-motion "
                            f"needs at least 2 overlapping photos (20 or more work best){hint}")
    unread = unread_photos(image_dir)
    if unread:  # (RAW beside the JPEGs a camera wrote of them: said, once)
        warnings.warn(f"{image_dir}: {unread}", stacklevel=2)
    if nested:
        warnings.warn(f"{image_dir}: the photos in its sub-folders {describe_subfolders(nested)} "
                      f"are left out (sub-folders are not searched); if they are photos of "
                      f"this scene (not thumbnails), move them beside the others to use them",
                      stacklevel=2)
    paths = _without_copies(image_dir, paths)  # (IMG_5.JPG and its copy IMG_5.jpg: one photo)
    seen: dict[str, Path] = {}
    for p in paths:
        try:
            p.name.encode("utf-8")
        except UnicodeEncodeError:  # (bytes of another system's encoding, e.g. from a zip)
            raise VoxsplatError(f"{image_dir}: the file name {ascii(p.name)[1:-1]} is not "
                                f"UTF-8 text (made on another system?); rename it") from None
        if p.stem in seen:
            raise VoxsplatError(f"{image_dir}: {seen[p.stem].name} and {p.name} share the name "
                                f"{p.stem} (images are identified by name); if they are one "
                                f"photo (a phone's HEIC and JPEG of a shot), remove one, else "
                                f"rename one")
        seen[p.stem] = p
    images, failed = [], []
    for p in paths:  # every unreadable photo named at once (an interrupted copy leaves several)
        try:
            images.append(describe_image(p))
        except VoxsplatError as e:
            failed.append((p, str(e)))
    _raise_unreadable(failed, "")
    _warn_small(images)
    gray = [im.source.name for im in images if im.gray]
    if 0 < len(gray) < len(images):  # (all gray: a grayscale capture, trained as such)
        warnings.warn(f"{image_dir}: {len(gray)} grayscale photo(s) among colour ones "
                      f"({shortened_list(gray)}): their colours cannot match the others' (a "
                      f"filter, or an infrared frame?); leave them out if they were not meant",
                      stacklevel=2)
    return images


def _raise_unreadable(failed: Sequence[tuple[Path, str]], fix: str) -> None:
    """Raise one VoxsplatError for the photos in `failed` ((path, its error) pairs), if any:
    the error itself for one, the names and the first error for several."""
    if len(failed) == 1:
        raise VoxsplatError(failed[0][1] + fix)
    if failed:
        names = ", ".join(p.name for p, _ in failed[:6]) + (" ..." if len(failed) > 6 else "")
        raise VoxsplatError(f"{failed[0][0].parent}: {len(failed)} photos cannot be read "
                            f"({names}); replace them with readable copies or remove them. The "
                            f"first: {failed[0][1]}")


SMALL_PHOTO_SIDE = 200
"""Photos whose longer side is under this many pixels (thumbnails) get a warning: too few
features match on them, and SfM's failure would otherwise be put down to the capture."""


def _warn_small(images: Sequence[InputImage]) -> None:
    small = [im for im in images if max(im.width, im.height) < SMALL_PHOTO_SIDE]
    if small:
        named = ", ".join(f"{im.source.name} ({im.width}x{im.height})" for im in small[:3])
        warnings.warn(f"{small[0].source.parent}: {len(small)} photo(s) under {SMALL_PHOTO_SIDE} "
                      f"px ({named}{', ...' if len(small) > 3 else ''}): thumbnails? too small "
                      f"for features to match; give the full-size photos", stacklevel=3)


def _without_copies(image_dir: Path, paths: list[Path]) -> list[Path]:
    """`paths` less the byte-for-byte copies of an earlier one (`IMG_1 (1).jpg`), which add
    no view and, as the only other photo, no parallax; a warning names them.

    Raises:
        VoxsplatError: fewer than 2 distinct photos remain.
    """
    by_size: dict[int, list[Path]] = {}
    for p in paths:  # (empty files are no copies: `describe_image` names them)
        if p.stat().st_size:
            by_size.setdefault(p.stat().st_size, []).append(p)
    copies: dict[Path, Path] = {}
    for group in (g for g in by_size.values() if len(g) > 1):
        same: dict[str, list[Path]] = {}
        for p in group:
            same.setdefault(hashlib.sha1(p.read_bytes()).hexdigest(), []).append(p)
        for found in same.values():  # the shortest name is the original: `a.jpg`, not `a (1).jpg`
            original = min(found, key=lambda p: (len(p.name), p.name))
            copies.update({p: original for p in found if p != original})
    if not copies:
        return paths
    kept = [p for p in paths if p not in copies]
    pairs = ", ".join(f"{p.name} (= {q.name})" for p, q in sorted(copies.items())[:4])
    if len(kept) < 2:
        raise VoxsplatError(f"{image_dir}: the photos are copies of one photo ({pairs}); "
                            f"structure-from-motion needs at least 2 photos taken from "
                            f"different places")
    warnings.warn(f"{image_dir}: {len(copies)} photo(s) are byte-for-byte copies of another and "
                  f"are left out: {pairs}{', ...' if len(copies) > 4 else ''}", stacklevel=3)
    return kept


def camera_groups(images: Sequence[InputImage], single_camera: str) -> list[list[InputImage]]:
    """Images that share one camera (intrinsics), in name order within each group.

    Args:
        images: the scanned photos.
        single_camera: `auto` (group by size and EXIF make/model/focal), `yes` (one group;
            all images must have one size) or `no` (one group per image).

    Raises:
        VoxsplatError: `yes` with images of different sizes.
    """
    if single_camera == "no":
        return [[im] for im in images]
    if single_camera == "yes":
        first = images[0]
        for im in images:
            if (im.width, im.height) != (first.width, first.height):
                raise VoxsplatError(
                    f"{im.source}: image is {im.width}x{im.height} but {first.source.name} is "
                    f"{first.width}x{first.height}; single_camera=yes needs one image size, "
                    f"use single_camera=auto")
        return [list(images)]
    groups: dict[tuple, list[InputImage]] = {}
    for im in images:
        groups.setdefault(im.camera_key, []).append(im)
    return list(groups.values())


def choose_matcher(config: SfmConfig, n_images: int, from_video: bool) -> str:
    """`exhaustive`, `sequential` or `retrieval` for `config.matcher` (see `SfmConfig.matcher`)."""
    if config.matcher != "auto":
        return config.matcher
    if from_video:
        return "sequential"
    return "retrieval" if n_images > config.exhaustive_max_images else "exhaustive"


def use_guided_matching(config: SfmConfig, n_images: int, first_pass_short: bool) -> bool:
    """Whether `n_images` images are matched with guidance (see `SfmConfig.guided_matching`):
    from the start (`first_pass_short` False) or in a second pass after an unguided one that
    left some unregistered (`first_pass_short` True)."""
    if config.guided_matching != "auto":
        return config.guided_matching == "yes" and not first_pass_short
    return first_pass_short and n_images <= config.guided_max_images


def _exif_without_rotation(source: Path) -> Optional[bytes]:
    """The source's EXIF with orientation reset to 1 (so the focal prior survives)."""
    try:
        with Image.open(source) as img:
            exif = img.getexif()
            if not exif:
                return None
            exif[_ORIENTATION] = 1
            return exif.tobytes()
    except Exception:
        return None


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link the file `source` names (a symlink's target: linking a relative symlink
    itself would point nowhere from `target`'s folder), else copy it."""
    source = Path(os.path.realpath(source))
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def stage_masks(images: Sequence[InputImage], image_dir: Path, mask_dir: Path) -> bool:
    """Write each photo's mask, upright as SfM reads the photo, as `mask_dir/NAME.png`
    (COLMAP's layout, NAME the staged name): from a `masks/` folder inside the photos' folder
    (or beside an `images/` folder, see `data.readers.common.mask_folder`), else from the
    photos' alpha.
    Returns False, writing nothing, when the photos have neither.

    Raises:
        VoxsplatError: the masks folder lacks a photo's mask, or a mask's shape cannot match.
    """
    if mask_folder(image_dir) is not None:
        masks = folder_masks([im.source for im in images], image_dir,
                             [(im.width, im.height) for im in images],
                             orientations=[im.orientation for im in images])
    else:
        # only photos with an alpha channel are decoded (not those that are only rotated)
        alphas = [read_image(im.source)[1] if im.has_alpha else None for im in images]
        masks = alpha_masks(alphas, [im.source for im in images],
                            [(im.height, im.width) for im in images])
        if masks is None:
            return False
    check_masks(masks, mask_folder(image_dir) or image_dir)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for im, mask in zip(images, masks):
        array = np.asarray(mask, dtype=np.uint8) * 255
        Image.fromarray(array).save(mask_dir / f"{im.name}.png")
    return True


def stage_images(images: Sequence[InputImage], stage_dir: Path) -> None:
    """Fill `stage_dir` with the photos as COLMAP should read them (see the module doc)."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    # Photos staged as they are get decoded in full here: COLMAP reads a truncated JPEG or
    # PNG without a word (grey or black rows), and it would pose and train as such.
    check_readable([im for im in images if not im.needs_copy])
    for im in images:
        target = stage_dir / im.name
        if not im.needs_copy:
            _link_or_copy(im.source, target)
            continue
        rgb, alpha = read_image(im.source)
        array = np.ascontiguousarray(composite(rgb, alpha).numpy())
        exif = _exif_without_rotation(im.source)
        kwargs = {"exif": exif} if exif else {}
        if target.suffix == ".png":
            Image.fromarray(array).save(target, format="PNG", **kwargs)
        else:
            Image.fromarray(array).save(target, format="JPEG", quality=95, **kwargs)
