"""Video frame sampling: even spread, blurry frames rejected, atomic output, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from voxsplat.data.video import extract_frames, is_video_file, sharpness
from voxsplat.render.video import write_video
from testkit import error_message as _message

BLURRED = {1, 5, 9, 13, 17, 21, 25, 29, 33, 37}  # every 4th frame, starting at 1


def _frames(n: int = 40) -> list[np.ndarray]:
    """A textured pan; the frames in BLURRED are strongly blurred."""
    rng = np.random.default_rng(0)
    small = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((320, 240), Image.BICUBIC))
    frames = []
    for i in range(n):
        frame = np.roll(base, 2 * i, axis=1)
        if i in BLURRED:
            frame = np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(4)))
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "pan.mp4"
    write_video(path, _frames(), fps=10)
    return path


def _index(path: Path) -> int:
    return int(path.stem.split("_")[1])


def test_sharpness_ranks_blur():
    sharp = _frames(2)[0]
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(2)))
    assert sharpness(sharp) > 5 * sharpness(blurred)
    assert sharpness(np.full((50, 60, 3), 128, np.uint8)) == 0.0


def test_one_sharp_frame_per_window(video, tmp_path):
    calls = []
    frames = extract_frames(video, tmp_path / "frames", 10, progress=lambda d, t: calls.append((d, t)))
    indices = [_index(p) for p in frames]
    assert len(indices) == 10 and indices == sorted(indices)
    assert not set(indices) & BLURRED
    assert [i // 4 for i in indices] == list(range(10))  # one per window of 4 frames
    assert all(p.suffix == ".jpg" and p.parent == tmp_path / "frames" for p in frames)
    assert Image.open(frames[0]).size == (320, 240)
    assert calls[-1] == (40, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no temporary folders


def test_blurry_frames_are_dropped_when_every_frame_is_a_window(video, tmp_path):
    frames = extract_frames(video, tmp_path / "frames", 40)
    indices = {_index(p) for p in frames}
    assert indices == set(range(40)) - BLURRED
    kept_all = extract_frames(video, tmp_path / "all", 40, min_sharpness_ratio=0.0)
    assert len(kept_all) == 40


def test_resizes_and_replaces_an_older_folder(video, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "stale.jpg").write_bytes(b"old")
    frames = extract_frames(video, out, 4, max_size=160)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in frames)
    assert Image.open(frames[0]).size == (160, 120)


def test_undecodable_and_missing_videos(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    message = _message(extract_frames, bad, tmp_path / "frames")
    assert message.startswith(f"{bad}: cannot decode the video")
    assert "convert it with `ffmpeg" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]  # nothing half-written
    assert "no such video file" in _message(extract_frames, tmp_path / "none.mp4", tmp_path / "f")
    assert "need at least 2 frames" in _message(extract_frames, bad, tmp_path / "f", 1)


def test_video_extensions():
    assert is_video_file("a/B.MOV") and is_video_file("x.mp4") and not is_video_file("x.jpg")


def _ffmpeg(*args: str) -> None:
    import subprocess
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    *args], check=True)


def test_variable_frame_rate_spreads_the_frames_in_time_and_a_longer_sound_track_by_count(
        tmp_path, monkeypatch):
    """A phone's variable-rate clip decoded at a constant rate came out as runs of copies, and
    a sound track longer than the picture stretched the frame count: frames bunched at the
    start, or too few. Each decoded frame counts once; the windows are equal spans of time,
    from the container's packets (read without decoding the video to count its frames), so
    a stretch filmed at a higher rate gets no more frames; where the packets' count does not
    match the header's (the longer sound track), ffmpeg counts the decoded frames."""
    from fractions import Fraction
    from voxsplat.data import video as video_module
    stills = tmp_path / "stills"
    stills.mkdir()
    for i, frame in enumerate(_frames()):
        Image.fromarray(frame).save(stills / f"{i:03d}.png")
    vfr = tmp_path / "vfr.mp4"  # frames 0-19 at 25 fps (0.8 s), then 5 fps (4 s)
    _ffmpeg("-framerate", "25", "-i", str(stills / "%03d.png"), "-vf",
            "setpts='if(lt(N,20),N,20+(N-20)*5)/(25*TB)'", "-fps_mode", "vfr", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", str(vfr))
    decoded_to_count = []
    counting = video_module._stream_frames
    monkeypatch.setattr(video_module, "_stream_frames",
                        lambda path: decoded_to_count.append(path) or counting(path))
    indices = [_index(p) for p in extract_frames(vfr, tmp_path / "vfr", 10)]
    assert not decoded_to_count

    def window(i: int) -> int:  # of 10 equal spans of the 4.8 s that the 40 frames show
        t = Fraction(i, 25) if i < 20 else Fraction(4, 5) + Fraction(i - 20, 5)
        return int(t * 10 / Fraction(24, 5))
    assert [window(i) for i in indices] == list(range(10)), indices
    assert sum(i < 20 for i in indices) <= 2  # (by frame count: 5)
    long_sound = tmp_path / "long_sound.mp4"  # 4 s of picture, 12 s of sound
    _ffmpeg("-framerate", "10", "-i", str(stills / "%03d.png"), "-f", "lavfi", "-i",
            "sine=frequency=440:duration=12", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-c:a", "aac", str(long_sound))
    indices = [_index(p) for p in extract_frames(long_sound, tmp_path / "long_sound", 10)]
    assert [i // 4 for i in indices] == list(range(10)), indices
    assert not set(indices) & BLURRED and decoded_to_count == [long_sound]


def test_a_sound_file_is_named_as_such(tmp_path):
    sound = tmp_path / "sound.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(sound))
    assert "holds no video stream (only sound?)" in _message(extract_frames, sound, tmp_path / "f", 10)


@pytest.fixture(scope="module")
def stills(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stills")
    for i, frame in enumerate(_frames()):
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    return folder


def test_m4v_rotated_and_anamorphic_clips_come_out_as_players_show_them(stills, tmp_path, caplog):
    """A .m4v (listed as a video, yet imageio's reader refused it by name), a phone's portrait
    clip stored landscape with a rotation (upright, and no library note on the terminal) and
    an anamorphic one (pixels 4:3 wide: stretched to square pixels)."""
    import logging
    m4v, turned, wide = tmp_path / "clip.m4v", tmp_path / "turned.mp4", tmp_path / "wide.mkv"
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    _ffmpeg("-framerate", "10", "-i", str(stills / "%03d.png"), *encode, str(m4v))
    _ffmpeg("-display_rotation", "90", "-i", str(m4v), "-c", "copy", str(turned))
    _ffmpeg("-framerate", "10", "-i", str(stills / "%03d.png"), "-vf", "scale=240:240,setsar=4/3",
            *encode, str(wide))
    with caplog.at_level(logging.DEBUG):
        for clip, size in ((m4v, (320, 240)), (turned, (240, 320)), (wide, (320, 240))):
            frames = extract_frames(clip, tmp_path / clip.stem, 10)
            assert [_index(p) // 4 for p in frames] == list(range(10)), clip.name
            image = Image.open(frames[0])
            assert image.size == size, clip.name
            if clip is turned:  # turned a quarter (counterclockwise, as shown)
                kept = np.asarray(Image.open(stills / f"{_index(frames[0]):03d}.png"), np.float32)
                shown = np.asarray(image, np.float32)
                assert np.abs(shown - np.rot90(kept, 1)).mean() < 8
    assert not [r for r in caplog.records if "frame size" in r.getMessage()]


def test_a_still_camera_gives_one_frame_not_copies(stills, tmp_path):
    """Two seconds of the camera standing still (a phone held before the take; sensor noise
    only) took half the frames, all of one view, and put copies of training views among the
    held-out ones. One frame of the still part is kept, and a warning says so."""
    rng = np.random.default_rng(1)
    still = np.asarray(Image.open(stills / "000.png"), np.float32)
    folder = tmp_path / "take"
    folder.mkdir()
    for i in range(20):
        noisy = np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{i:03d}.png")
    for i in range(40):
        (folder / f"{20 + i:03d}.png").write_bytes((stills / f"{i:03d}.png").read_bytes())
    clip = tmp_path / "take.mp4"
    _ffmpeg("-framerate", "10", "-i", str(folder / "%03d.png"), "-c:v", "libx264", "-pix_fmt",
            "yuv420p", str(clip))
    with pytest.warns(UserWarning, match="the camera stands still in parts of the video; 4 "):
        frames = extract_frames(clip, tmp_path / "frames", 15, min_sharpness_ratio=0.0)
    indices = [_index(p) for p in frames]
    assert len([i for i in indices if i < 20]) == 1 and len(indices) == 11, indices


@pytest.mark.parametrize("curve", ["arib-std-b67", "smpte2084"], ids=["hlg", "pq"])
def test_hdr_video_frames_come_out_in_srgb(tmp_path, curve):
    """An iPhone records HDR (HLG, BT.2020) by default; its frames were decoded as if SDR,
    flat and dull (85-97 levels of 255 off). They are converted to sRGB now: a pattern stored
    as HLG or PQ (its white at the reference 203 nits) comes back as it was."""
    from voxsplat.data import video as video_module
    if not video_module._can_convert_hdr():
        pytest.skip("this ffmpeg has no zscale filter (zimg)")
    colours = np.array([[220, 30, 30], [30, 200, 60], [40, 60, 220], [200, 200, 40],
                        [128, 128, 128], [240, 240, 240]], np.uint8)
    stills = tmp_path / "stills"
    stills.mkdir()
    for i, frame in enumerate(_frames(12)):  # the pan's texture above, colour bands below
        frame = frame.copy()
        frame[120:] = np.repeat(colours, 320 // 6 + 1, axis=0)[:320][None]
        Image.fromarray(frame).save(stills / f"{i:03d}.png")
    clip = tmp_path / f"{curve}.mp4"
    try:
        _ffmpeg("-framerate", "10", "-i", str(stills / "%03d.png"), "-vf",
                f"zscale=tin=iec61966-2-1:pin=bt709:min=gbr:rin=full:t={curve}:p=bt2020:"
                f"m=bt2020nc:r=tv:npl=203,format=yuv420p10le", "-c:v", "libx265",
                "-x265-params", "log-level=error:lossless=1", "-color_primaries", "bt2020",
                "-color_trc", curve, "-colorspace", "bt2020nc", str(clip))
    except Exception:
        pytest.skip("this ffmpeg cannot encode HEVC (libx265)")
    frames = extract_frames(clip, tmp_path / "frames", 3)
    image = np.asarray(Image.open(frames[0]), np.int32)
    centres = image[200, 320 // 12::320 // 6][:6]
    assert np.abs(centres - colours).max() <= 6, centres.tolist()


def test_untagged_hd_video_is_decoded_as_bt709_and_untagged_sd_as_bt601(tmp_path):
    """A video that names no colour matrix is BT.709 at HD sizes, as players take it, and
    BT.601 at SD sizes; ffmpeg took BT.601 for both, which turned an untagged HD clip's green
    22 levels of 255 too bright. Clips encoded with each size's matrix, their tags removed,
    come back as the colour they were made of."""
    from voxsplat.data import video as video_module
    colour = np.array([32, 192, 64])
    for (W, H), matrix in (((1280, 720), "bt709"), ((640, 480), "smpte170m")):
        tagged, clip = tmp_path / f"tagged_{H}.mp4", tmp_path / f"untagged_{H}.mp4"
        _ffmpeg("-f", "lavfi", "-i", f"color=c=0x20C040:s={W}x{H}:d=0.5", "-vf",
                f"scale=out_color_matrix={matrix}:out_range=tv,format=yuv420p", "-c:v",
                "libx264", "-qp", "0", str(tagged))
        _ffmpeg("-i", str(tagged), "-c", "copy", "-bsf:v", "h264_metadata=colour_primaries=2:"
                "transfer_characteristics=2:matrix_coefficients=2", str(clip))
        reader, _, _ = video_module._open_reader(clip)
        assert "bt" not in str(reader.meta["pix_fmt"]) and "smpte" not in str(reader.meta["pix_fmt"])
        got = next(iter(reader))[H // 2, W // 2].astype(int)
        reader.close()
        assert np.abs(got - colour).max() <= 6, (H, got.tolist())
    as_sd = video_module._Reader(tmp_path / "untagged_720.mp4")  # (ffmpeg's own choice)
    assert np.abs(next(iter(as_sd))[360, 640].astype(int) - colour).max() > 15
    as_sd.close()
