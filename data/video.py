"""Frames from a video for structure-from-motion: evenly spread, sharp, written as JPEGs.

The video is cut into `target_count` equal windows of time (of frames, where the container's
packets do not tell each frame's time); each window keeps its sharpest frame by the variance of
the Laplacian (a standard blur measure), unless that shows the view of the frame kept before it
(the camera stood still). A window whose best frame is still much blurrier than the others
(below `min_sharpness_ratio` times the median) is dropped. Frames are decoded once, through
imageio-ffmpeg, keeping one frame in memory; the frames' times and count come from the
container's packets, read without decoding.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from .atomic import replace_folder, temp_folder_beside
from .errors import VoxsplatError, shortened_list

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")
"""What imageio's ffmpeg reader opens (not `.mts`, `.ts` or `.3gp`: convert those to .mp4)."""


def _turned_size_note(record: logging.LogRecord) -> bool:
    """imageio-ffmpeg logs that a rotated clip's frames come out in the turned size, which is
    the point (a phone's portrait video, upright)."""
    return "The frame size for reading" not in record.getMessage()


logging.getLogger("imageio_ffmpeg").addFilter(_turned_size_note)

_SHARPNESS_WIDTH = 640
"""Frames are area-downscaled to about this width before measuring sharpness."""

_THUMBNAIL_WIDTH = 64
STILL_DIFFERENCE = 0.5
"""Mean absolute difference (grey levels of `thumbnail`s) below which a window's frame shows
the view of the frame kept before it, and is left out. A smooth texture at 1280 px panned by
a quarter of a pixel differs by 0.75; sensor noise of 2 grey levels alone by 0.08, and as
H.264 encodes it, over 2 s of a still view, by up to 0.4."""

FrameProgress = Callable[[int, int], None]
"""Called as progress(frames decoded, estimated total)."""


def is_video_file(path: str | os.PathLike) -> bool:
    """True when `path` has a known video extension (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of a frame's grey levels (higher is sharper).

    Args:
        rgb: [H,W,3] uint8 frame. It is area-downscaled to ~640 px wide first, so frames of
            one video compare fairly and large frames stay cheap.

    Returns:
        The variance of the 4-neighbour Laplacian, in grey-level units squared.
    """
    # grey and area-reduced by Pillow before any float: a 4K frame in ~45 ms (~440 in numpy)
    img = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3])).convert("L")
    s = max(1, img.width // _SHARPNESS_WIDTH)
    grey = np.asarray(img.reduce(s) if s > 1 else img, np.float32)
    if min(grey.shape) < 3:
        return 0.0
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
           - 4.0 * grey[1:-1, 1:-1])
    return float(lap.var())


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """[h,w] float32 grey levels of a frame area-reduced to about `_THUMBNAIL_WIDTH` px wide:
    what two frames are compared by to tell a still camera (see `STILL_DIFFERENCE`)."""
    img = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3])).convert("L").convert("F")
    s = max(1, img.width // _THUMBNAIL_WIDTH)
    return np.asarray(img.reduce(s) if s > 1 else img, np.float32)


def _cannot_decode(path: Path, reason: str) -> VoxsplatError:
    return VoxsplatError(f"{path}: cannot decode the video ({reason}); check the file plays, "
                         f"or convert it with `ffmpeg -i INPUT out.mp4`")


def _no_video_stream(path: Path) -> VoxsplatError:
    return VoxsplatError(f"{path}: the file holds no video stream (only sound?); give a video "
                         f"of the scene")


def _passthrough() -> list[str]:
    """ffmpeg output options that pass each decoded frame once: by default ffmpeg repeats
    frames to a constant rate, so a phone's variable-rate clip came out as runs of copies
    (59 frames decoded as 204). `-fps_mode` since ffmpeg 5.1, `-vsync` (gone in 9) before."""
    import re
    import imageio_ffmpeg
    found = re.search(r"(\d+)\.(\d+)", imageio_ffmpeg.get_ffmpeg_version() or "")
    old = found is not None and (int(found.group(1)), int(found.group(2))) < (5, 1)
    return ["-vsync", "0"] if old else ["-fps_mode", "passthrough"]


def _stream_frames(path: Path) -> Optional[int]:
    """The first video stream's frame count (ffmpeg decodes it once to count; an audio track
    longer than the video does not count, as it did in the container's duration), or None.

    Raises:
        VoxsplatError: the file has no video stream (a sound file).
    """
    try:
        import imageio_ffmpeg
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except Exception as e:  # ffmpeg could not tell: the estimate from the metadata
        if "matches no streams" in str(e):
            raise _no_video_stream(path) from None
        return None
    return count if count > 0 else None


def _packet_times(path: Path) -> Optional[list[int]]:
    """The presentation times of the first video stream's frames, in its time base and in
    order, and last the time the last frame ends (its packet's duration; else a typical
    step), from the container's packets (ffmpeg's framecrc listing, without decoding); None
    where ffmpeg cannot list them or a packet has no time. Packets that the demuxer marks
    for discarding (before an edit list's start) are no frame.

    Raises:
        VoxsplatError: the file has no video stream (a sound file).
    """
    import subprocess
    import imageio_ffmpeg
    try:
        run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                              "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
                             capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    if run.returncode != 0:
        if "matches no streams" in run.stderr:
            raise _no_video_stream(path)
        return None
    frames = []  # (time, duration)
    for line in run.stdout.splitlines():  # "stream, dts, pts, duration, size, crc[, F=0x..]"
        fields = [field.strip() for field in line.split(",")]
        if line.startswith("#") or len(fields) < 6:
            continue
        flags = next((int(f[2:], 16) for f in fields[6:] if f.startswith("F=")), 0)
        if flags & _DISCARD:
            continue
        try:
            frames.append((int(fields[2]), int(fields[3])))
        except ValueError:  # (no time)
            return None
    frames.sort()
    times = [t for t, _ in frames]
    if len(frames) < 2 or len(set(times)) != len(times):
        return None
    steps = sorted(b - a for a, b in zip(times, times[1:]))
    last = frames[-1][1] if frames[-1][1] > 0 else steps[len(steps) // 2]
    return times + [times[-1] + last]


_DISCARD = 0x4
"""ffmpeg's AV_PKT_FLAG_DISCARD: a packet decoded for its references only, shown as no frame."""


def _window_of(times: Optional[list[int]], total: int, target_count: int) -> Callable[[int], int]:
    """Frame index -> its window (0 to `target_count` - 1): equal spans of the time the
    frames show (`_packet_times`: their start times, then the end of the last), else equal
    runs of the `total` frames. A constant frame rate gives the same windows either way."""
    if times is None:
        return lambda index: min(index * target_count // max(total, 1), target_count - 1)
    span = times[-1] - times[0]

    def window(index: int) -> int:
        if index >= len(times) - 1:  # (more frames decoded than listed)
            return target_count - 1
        return min((times[index] - times[0]) * target_count // span, target_count - 1)
    return window


_SQUARE_PIXELS = "scale='if(gt(sar,0)*not(eq(sar,1)),round(iw*sar/2)*2,iw)':ih,setsar=1"
"""ffmpeg filter that stretches anamorphic video (sample aspect ratio other than 1: HDV's
1440x1080 shown as 1920x1080) to square pixels, as players show it; others pass as they are."""


_HDR_CURVES = ("arib-std-b67", "smpte2084")
"""Transfer curves of HDR video: HLG (an iPhone's default since the 12) and PQ (HDR10, Dolby
Vision's base layer)."""
_HDR_TO_SDR = ("zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt709,"
               "zscale=t=iec61966-2-1:m=bt709:r=full,format=gbrp")
"""ffmpeg filters (zimg's zscale) from HDR (BT.2020, HLG or PQ) to sRGB: the reference white of
203 nits (ITU-R BT.2408's) becomes sRGB's white, brighter highlights clip. Decoded as they
were, HDR frames came out flat and dull (an sRGB pattern stored as HLG: up to 85 levels of 255
off; through this, 2)."""


@functools.lru_cache(maxsize=1)
def _can_convert_hdr() -> bool:
    """Whether imageio-ffmpeg's ffmpeg has zimg's zscale filter (its static builds do)."""
    import subprocess
    import imageio_ffmpeg
    try:
        listed = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-filters"],
                                capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return re.search(r"\szscale\s", listed) is not None


_AS_HD = "setparams=colorspace=bt709"
"""ffmpeg filter that has an untagged HD video's colours decoded as BT.709 (`_untagged_hd`)."""
_MATRICES = {"gbr", "bt709", "unknown", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco",
             "bt2020nc", "bt2020c", "smpte2085", "chroma-derived-nc", "chroma-derived-c",
             "ictcp", "ipt-c2", "ycgco-re", "ycgco-ro"}
"""ffmpeg's names of the colour matrices, as its stream header shows them."""


def _untagged_hd(pix_fmt: str, size: tuple[int, int]) -> bool:
    """Whether a video (its header's pixel format, e.g. "yuv420p(tv, bt709, progressive)", and
    its frames' size) is YUV at an HD size without a colour matrix tag. Players take such as
    BT.709, as HD is (mpv: 1280 wide or over 576 high); ffmpeg took SD's BT.601, which turned
    a green 22 levels of 255 too bright. Full-range yuvj (JPEG's: BT.601 by definition) and
    SD sizes keep BT.601."""
    if not pix_fmt.startswith(("yuv", "nv")) or pix_fmt.startswith("yuvj"):
        return False
    inside = re.search(r"\((.*)\)", pix_fmt)
    for token in inside.group(1).split(",") if inside else []:
        matrix = token.strip().split("/")[0]  # (matrix/primaries/transfer, or one name for all)
        if matrix in _MATRICES and matrix != "unknown":
            return False
    return max(size) >= 1280 or min(size) > 576


class _Reader:
    """Frames of a video's first video stream, each decoded frame once, upright (ffmpeg applies
    the rotation a phone records), with square pixels, and in sRGB (`colour`: the filter that
    converts HDR, `_HDR_TO_SDR`, or that decodes an untagged HD video as such, `_AS_HD`)."""

    def __init__(self, path: Path, colour: str = ""):
        import imageio_ffmpeg
        filters = f"{colour},{_SQUARE_PIXELS}" if colour else _SQUARE_PIXELS
        self._gen = imageio_ffmpeg.read_frames(
            str(path), output_params=[*_passthrough(), "-map", "0:v:0", "-vf", filters])
        self.meta = next(self._gen)
        self.size = tuple(self.meta["size"])  # (W, H) of the frames as they come out
        self.colour = colour

    def __iter__(self):
        W, H = self.size
        for data in self._gen:
            yield np.frombuffer(data, np.uint8).reshape(H, W, 3)

    def close(self) -> None:
        self._gen.close()


def _open_reader(path: Path) -> tuple[_Reader, int, Optional[list[int]]]:
    """A reader of the video's frames, its frame count and the frames' times (`_packet_times`,
    None where they are not known: the frames are then spread by count)."""
    try:
        reader = _Reader(path)
    except Exception as e:  # ffmpeg raises OSError, RuntimeError, StopIteration, ...
        _stream_frames(path)  # names a file without a video stream
        raise _cannot_decode(path, str(e).strip().splitlines()[-1] if str(e).strip()
                             else type(e).__name__) from None
    pix_fmt = str(reader.meta.get("pix_fmt", ""))
    if _untagged_hd(pix_fmt, reader.size):
        reader.close()
        reader = _Reader(path, _AS_HD)
    elif any(curve in pix_fmt for curve in _HDR_CURVES):
        if _can_convert_hdr():
            reader.close()
            reader = _Reader(path, _HDR_TO_SDR)
        else:
            warnings.warn(f"{path}: an HDR video (HLG or PQ), which this ffmpeg cannot convert "
                          f"to SDR (it lacks zimg's zscale filter): its frames come out flat "
                          f"and dull; record with HDR video off, or convert it with an ffmpeg "
                          f"that has zscale: -vf {_HDR_TO_SDR},format=yuv420p")
    times = _packet_times(path)
    listed = float(reader.meta.get("fps") or 0.0) * float(reader.meta.get("duration") or 0.0)
    if times is not None and abs(len(times) - 1 - listed) <= 0.1 * listed + 2:
        return reader, len(times) - 1, times  # (what the header says: not a field per packet)
    count = _stream_frames(path)  # ffmpeg decodes the stream to count its frames
    if count is None:
        count = listed
    if not math.isfinite(count) or count < 1:  # no count in the container: decode once to count
        colour = reader.colour
        count = sum(1 for _ in _frames(reader, path))
        reader = _Reader(path, colour)
    return reader, int(round(count)), None


def _frames(reader: _Reader, path: Path):
    """Yield (index, frame [H,W,3] uint8); a decoding error after 2 frames ends the stream."""
    index = -1
    try:
        for index, frame in enumerate(reader):
            yield index, frame
    except Exception as e:
        if index < 1:
            raise _cannot_decode(path, str(e).strip().splitlines()[-1] if str(e).strip()
                                 else type(e).__name__) from None
        warnings.warn(f"{path}: decoding stopped after frame {index} ({type(e).__name__}); "
                      f"using the frames read so far")
    finally:
        reader.close()


def _save_frame(frame: np.ndarray, path: Path, max_size: int, quality: int) -> None:
    """Write a frame as JPEG, area-downscaled so its longest side is at most `max_size`."""
    img = Image.fromarray(frame)
    if max_size > 0 and max(img.size) > max_size:
        scale = max_size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.BOX)
    img.save(path, format="JPEG", quality=quality)


def _select(path: Path, folder: Path, target_count: int, max_size: int,
            progress: Optional[FrameProgress]) -> dict[Path, float]:
    """Decode the video once, saving each window's sharpest frame into `folder`.

    Returns:
        Written frame file -> its sharpness.
    """
    reader, total, times = _open_reader(path)
    window_of = _window_of(times, total, target_count)
    kept: dict[Path, float] = {}
    best: Optional[tuple[int, float, np.ndarray]] = None  # (frame index, sharpness, frame)
    window = -1
    last: list = [None]  # the thumbnail of the last frame kept
    still: list[int] = []  # frame indices left out as the view of the frame before

    def flush() -> None:
        """Save the finished window's sharpest frame, unless it shows the view of the last
        one kept (the camera stood still: a copy would train and be held out as a new view)."""
        if best is None:
            return
        small = thumbnail(best[2])
        if last[0] is not None and float(np.abs(small - last[0]).mean()) < STILL_DIFFERENCE:
            still.append(best[0])
            return
        last[0] = small
        file = folder / f"frame_{best[0]:06d}.jpg"
        _save_frame(best[2], file, max_size, 95)
        kept[file] = best[1]

    for index, frame in _frames(reader, path):
        w = window_of(index)
        if w != window:
            flush()
            window, best = w, None
        score = sharpness(frame)
        if best is None or score > best[1]:
            best = (index, score, frame)
        if progress is not None:
            progress(index + 1, max(total, index + 1))
    flush()
    if not kept:
        raise _cannot_decode(path, "no frames")
    if still:
        warnings.warn(f"{path}: the camera stands still in parts of the video; {len(still)} "
                      f"frame(s) that showed the view of the one before are left out "
                      f"(frames {shortened_list(still, 6)})")
    return kept


def extract_frames(video: str | os.PathLike, out_dir: str | os.PathLike, target_count: int = 150,
                   *, min_sharpness_ratio: float = 0.35, max_size: int = 1920,
                   progress: Optional[FrameProgress] = None) -> list[Path]:
    """Sample sharp frames from a video into `out_dir` as JPEGs (`frame_<index>.jpg`).

    Args:
        video: the video file (anything ffmpeg decodes: mp4, mov, mkv, ...).
        out_dir: folder for the frames; written to a temporary folder and renamed, so an
            interrupted run leaves no partial folder (an older `out_dir` is replaced).
        target_count: how many frames to keep at most (one per equal window of the video).
        min_sharpness_ratio: drop a window's frame whose sharpness is below this fraction of
            the median over the kept frames (0 keeps them all).
        max_size: longest side of the written frames in pixels (0 keeps the video's size).
        progress: optional callback(frames decoded, estimated total).

    Returns:
        The written frames, in video order.

    Raises:
        VoxsplatError: the file is missing or cannot be decoded, or yields fewer than 2 frames.
    """
    video, out_dir = Path(video), Path(out_dir)
    if not video.is_file():
        raise VoxsplatError(f"{video}: no such video file; check the path")
    if target_count < 2:
        raise VoxsplatError(f"target_count={target_count}: need at least 2 frames for SfM")
    tmp = temp_folder_beside(out_dir)
    try:
        kept = _select(video, tmp, target_count, max_size, progress)
        threshold = min_sharpness_ratio * float(np.median(list(kept.values())))
        for file, score in kept.items():
            if score < threshold:
                file.unlink()
        frames = sorted(f.name for f, score in kept.items() if score >= threshold)
        if len(frames) < 2:
            raise VoxsplatError(f"{video}: only {len(frames)} usable frame(s); SfM needs a "
                                f"longer video in which the camera moves around the scene")
        replace_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out_dir / name for name in frames]
