"""The size `reconstruct` trains at: `--downscale`, else the device's cap on the longest side
(each image on its own where sizes are mixed), and the resized copies (`images_4/`) a posed
scene may have beside its photos."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..data.errors import VoxsplatError
from ..data.load import needs_poses, resized_input, stored_longest_side
from ..data.transforms import cap_size
from . import distributed


MAX_IMAGE_SIDE = {"cuda": 1600, "cpu": 1000}
"""Without --downscale, each image longer than this (pixels, by device type) is resized so
that its longest side is this, by a factor of its own: 3DGS and nerfstudio train at most
1.6k px, and a CPU renders every pixel in PyTorch. `--downscale 1` keeps full size."""


def longest_side(cameras) -> int:
    """The longest image side of `cameras`, in pixels."""
    return max(max(cameras.size(i)) for i in range(len(cameras)))


def device_cap(device_type: str) -> int:
    return MAX_IMAGE_SIDE["cuda" if device_type == "cuda" else "cpu"]


def capped_to_device(scene, device_type: str, say: bool):
    """The scene's images, each resized to at most MAX_IMAGE_SIDE on its own (`cap_size`;
    photos of mixed sizes keep their detail): the cap (None where none was over it) and the
    scene."""
    cap = device_cap(device_type)
    over = sum(max(scene.cameras.size(i)) > cap for i in range(len(scene)))
    if not over:
        return None, scene
    if say:
        say_capped(longest_side(scene.cameras), over, len(scene), cap)
    return cap, cap_size(scene, cap)


def say_capped(longest: int, over: int, total: int, cap: int) -> None:
    others = "" if over == total else (f": the {over} of {total} longer than {cap} px, the "
                                       f"others at their size")
    print(f"images up to {longest} px: training at {cap} px{others} (--downscale 1 keeps the "
          f"full size)")


def resized_copy(input_path: Path, downscale: Optional[float], device_type: str,
                  progress: bool) -> tuple[Optional[str], Optional[float]]:
    """The resized copy of a posed scene's photos to read (`data.load.resized_input`; None for
    photos, videos, and scenes without one that fits) and the downscale: the one given, or,
    where it is left out and a copy fits, the device's cap over the longest side (said here,
    as the photos are not decoded at full size)."""
    if needs_poses(input_path) or (downscale or 0.0) >= 1.0:
        return None, downscale
    factor, longest = downscale, None
    try:  # (advice only: the load itself names what is wrong with the input)
        if factor is None:  # (from the images' headers: one size, so one factor)
            longest, cap = stored_longest_side(input_path), MAX_IMAGE_SIDE[
                "cuda" if device_type == "cuda" else "cpu"]
            if longest is None or longest <= cap:
                return None, None
            factor = cap / longest
        folder = resized_input(input_path, factor)
    except VoxsplatError:
        return None, downscale
    if folder is None:
        return None, downscale
    if progress and distributed.is_main():
        print(f"images up to {longest} px: training at {round(longest * factor)} px (--downscale "
              f"{factor:.4g}; --downscale 1 keeps the full size), from the resized copies in "
              f"{folder}/" if longest else
              f"--downscale {factor:g}: reading the resized copies of the photos in {folder}/")
    return folder, factor
