"""Video output (H.264 mp4 through imageio-ffmpeg) and a turbo-like depth colormap."""

from __future__ import annotations

import os
from typing import Iterable, Optional, Union

import numpy as np
import torch
from torch import Tensor

from ..data.atomic import atomic_path
from ..data.errors import VoxsplatError

Frame = Union[np.ndarray, Tensor]


def _ffmpeg():
    """imageio-ffmpeg, imported on first use; a clear error when it is missing."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VoxsplatError("writing mp4 needs imageio-ffmpeg: pip install imageio-ffmpeg") from None
    return imageio_ffmpeg


def _to_uint8(frame: Frame) -> np.ndarray:
    """uint8 [H,W,3] from a uint8 array/tensor or a float array/tensor in [0,1]."""
    if isinstance(frame, Tensor):
        frame = frame.detach().cpu()
        frame = frame.numpy() if frame.dtype == torch.uint8 else frame.float().numpy()
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"write_video: frames must be [H,W,3], got shape {frame.shape}")
    if frame.dtype != np.uint8:
        frame = np.round(np.clip(np.nan_to_num(frame.astype(np.float32)), 0.0, 1.0) * 255.0)
    return frame.astype(np.uint8)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row/column so that width and height are even (yuv420p needs it)."""
    H, W = frame.shape[:2]
    if H % 2 == 0 and W % 2 == 0:
        return frame
    return np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def write_frames(folder: str | os.PathLike, frames: Iterable[Frame]) -> int:
    """Write frames as ``folder/frame_00000.png`` ..., replacing `folder` only when all are done.

    Needs no ffmpeg (for machines without it, or for editing the frames elsewhere).

    Returns:
        The number of frames written.
    """
    from pathlib import Path
    from PIL import Image
    from ..data.atomic import check_replaceable, mark_output, replace_folder, temp_folder_beside
    folder = Path(folder)
    check_replaceable(folder)
    tmp = temp_folder_beside(folder)
    try:
        n = 0
        for n, frame in enumerate(frames, 1):
            Image.fromarray(_to_uint8(frame)).save(tmp / f"frame_{n - 1:05d}.png")
        mark_output(tmp, "video frames")
    except BaseException:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_folder(tmp, folder)
    return n


def colour_params(height: int) -> list[str]:
    """ffmpeg output options that convert RGB frames to YUV by the matrix players assume for a
    video of `height` rows when it carries no tag (BT.709 from 720 rows, BT.601 below), and
    tag it so (BT.709 primaries and the sRGB curve: the frames are sRGB). ffmpeg's default
    converts by BT.601 and tags nothing: a 720p render shown by BT.709, as browsers and
    players show HD, had its saturated colours off by up to 27 levels of 255."""
    matrix, tag = ("bt709", "bt709") if height >= 720 else ("bt601", "smpte170m")
    return ["-vf", f"scale=out_color_matrix={matrix}:out_range=tv,setparams=colorspace={tag}:"
                   f"color_primaries=bt709:color_trc=iec61966-2-1:range=tv"]


def write_video(path: str | os.PathLike, frames: Iterable[Frame], fps: float = 30.0,
                quality: float = 8.0) -> int:
    """Encode frames as an H.264 (libx264, yuv420p) mp4, atomically, its colours tagged
    (`colour_params`).

    The file appears at ``path`` only once encoding has finished; an exception while
    producing frames (or in ffmpeg) leaves no file, and any previous file untouched.

    Args:
        path: output file, usually ``.mp4``.
        frames: uint8 [H,W,3] arrays/tensors, or float ones in [0,1]; all the same size.
            Odd widths/heights are padded by one repeated row/column.
        fps: frames per second.
        quality: imageio-ffmpeg quality in [1,10] (10 is best; 8 is crf ~10).

    Returns:
        The number of frames written.
    """
    n_frames, size, writer = 0, None, None
    with atomic_path(path) as tmp:
        try:
            for frame in frames:
                image = _pad_even(_to_uint8(frame))
                if writer is None:
                    size = image.shape[:2]
                    writer = _ffmpeg().write_frames(
                        str(tmp), (image.shape[1], image.shape[0]), fps=float(fps),
                        codec="libx264", pix_fmt_out="yuv420p", quality=quality,
                        macro_block_size=1, ffmpeg_log_level="error",
                        output_params=colour_params(image.shape[0]))
                    writer.send(None)
                elif image.shape[:2] != size:
                    raise ValueError(f"write_video: frame {n_frames} is {image.shape[1]}x"
                                     f"{image.shape[0]} but the first was {size[1]}x{size[0]}")
                writer.send(np.ascontiguousarray(image))
                n_frames += 1
        finally:
            if writer is not None:
                writer.close()
        if n_frames == 0:
            raise VoxsplatError(f"{path}: no frames to write; the camera path is empty")
        if os.path.getsize(tmp) == 0:
            raise VoxsplatError(f"{path}: ffmpeg wrote nothing; check that imageio-ffmpeg's "
                                "ffmpeg binary runs and supports libx264")
    return n_frames


# Polynomial fit of Google's Turbo colormap (Anton Mikhailov, 2019), coefficients for t^0..t^5.
_TURBO_COEFFS = np.array([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
])


def turbo(t: np.ndarray) -> np.ndarray:
    """Turbo-like colours [...,3] in [0,1] for values t [...] in [0,1] (0 blue, 1 red)."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)[..., None]
    powers = t ** np.arange(6)
    return np.clip(powers @ _TURBO_COEFFS.T, 0.0, 1.0)


def depth_to_rgb(depth: Frame, near: Optional[float] = None,
                 far: Optional[float] = None) -> np.ndarray:
    """Colour-map a depth image; near is blue, far is red, invalid depth is black.

    Args:
        depth: [H,W] camera z; 0, negative or non-finite values are invalid.
        near, far: depth range mapped to the colormap's ends; None uses the 1st/99th
            percentile of the valid depths.

    Returns:
        uint8 [H,W,3].
    """
    if isinstance(depth, Tensor):
        depth = depth.detach().cpu().float().numpy()
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(f"depth_to_rgb: expected [H,W] depth, got shape {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return np.zeros((*depth.shape, 3), dtype=np.uint8)
    lo = float(np.percentile(depth[valid], 1)) if near is None else float(near)
    hi = float(np.percentile(depth[valid], 99)) if far is None else float(far)
    t = (np.where(valid, depth, lo) - lo) / max(hi - lo, 1e-12)
    rgb = np.round(turbo(t) * 255.0).astype(np.uint8)
    rgb[~valid] = 0
    return rgb
