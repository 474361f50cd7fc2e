"""Video writing (atomic H.264 mp4) and the depth colormap."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

pytest.importorskip("imageio_ffmpeg", reason="writing mp4 needs imageio-ffmpeg")

from voxsplat.data.errors import VoxsplatError
from voxsplat.render.video import depth_to_rgb, turbo, write_video


def _gradient(H: int, W: int, k: int) -> np.ndarray:
    """A smooth uint8 [H,W,3] test frame that changes with k."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), np.full_like(x, 20 * k)], -1)
    return rgb.astype(np.uint8)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".part" in p.name]


def test_written_video_decodes_to_the_frames(tmp_path: Path):
    frames = [_gradient(25, 33, k) for k in range(6)]  # odd size: padded to 34x26
    frames[3] = torch.from_numpy(frames[3]).float() / 255.0  # float tensors in [0,1] too
    path = tmp_path / "out.mp4"
    assert write_video(path, iter(frames), fps=12) == 6
    video = iio.imread(path)
    assert video.shape == (6, 26, 34, 3)
    meta = iio.immeta(path)
    assert meta["codec"] == "h264" and meta["fps"] == pytest.approx(12.0)
    for k in range(6):
        expected = _gradient(25, 33, k).astype(float)
        assert np.abs(video[k, :25, :33].astype(float) - expected).mean() < 4.0
    padded_row, last_row = video[0, 25].astype(float), video[0, 24].astype(float)
    assert np.abs(padded_row - last_row).mean() < 4.0  # edge padding, not black
    assert not _leftovers(tmp_path)


def test_exception_while_writing_leaves_no_file(tmp_path: Path):
    def frames():
        for k in range(3):
            yield _gradient(16, 16, k)
        raise RuntimeError("renderer crashed")

    path = tmp_path / "crash.mp4"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(path, frames())
    assert not path.exists() and not _leftovers(tmp_path)


def test_failed_write_keeps_the_previous_video(tmp_path: Path):
    path = tmp_path / "keep.mp4"
    write_video(path, [_gradient(16, 16, 0)] * 2)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="first was"):
        write_video(path, [_gradient(16, 16, 0), _gradient(18, 16, 1)])
    assert path.read_bytes() == before and not _leftovers(tmp_path)
    with pytest.raises(VoxsplatError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [])
    assert not (tmp_path / "empty.mp4").exists()


def test_depth_to_rgb_maps_near_blue_far_red_invalid_black():
    depth = torch.linspace(1.0, 5.0, 64).expand(8, 64).clone()
    depth[:, :4] = 0.0
    depth[0, 10] = float("nan")
    rgb = depth_to_rgb(depth, near=1.0, far=5.0)
    assert rgb.shape == (8, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :4] == 0).all() and (rgb[0, 10] == 0).all()
    near, far = rgb[1, 4].astype(int), rgb[1, -1].astype(int)
    assert near[2] > near[0] and far[0] > far[2]
    assert (rgb[1:, 4:].max(-1) > 0).all()  # valid depth is never black
    # near/far omitted: the valid depths' 1st-99th percentiles, so one stray far pixel does
    # not crush the rest into blue (min/max would put the middle column at t ~ 0.002)
    stray = depth.numpy().copy()
    stray[2, 20] = 1000.0
    auto = depth_to_rgb(stray)
    assert auto.shape == rgb.shape and (auto[:, :4] == 0).all()
    low, high = auto[1, 8].astype(int), auto[1, -1].astype(int)
    assert low[2] > low[0] and high[0] > high[2]
    middle = np.round(turbo(np.array(0.5)) * 255)  # depth 3.16 in ~1.29..5
    assert np.abs(auto[1, 34].astype(int) - middle).max() < 25, (auto[1, 34], middle)
    assert (depth_to_rgb(np.zeros((4, 5))) == 0).all()
    ramp = turbo(np.linspace(0, 1, 256))
    assert ramp.shape == (256, 3) and 0.0 <= ramp.min() and ramp.max() <= 1.0


@pytest.mark.parametrize("height", [720, 240])
def test_video_colours_are_tagged_and_right_as_players_decode_them(tmp_path: Path, height: int):
    """ffmpeg converted RGB to YUV by BT.601 and tagged nothing; players show untagged HD by
    BT.709, so a 720p render's saturated colours came out up to 27 levels off. Now HD is
    converted by BT.709 and SD by BT.601 (what players assume without a tag), and tagged so."""
    import subprocess
    import imageio_ffmpeg
    colours = np.array([[220, 30, 30], [30, 200, 60], [40, 60, 220], [200, 200, 40],
                        [128, 128, 128], [240, 240, 240]], np.uint8)
    W = 2 * height * 16 // 18
    frame = np.repeat(np.repeat(colours[None], height, 0), W // 6, 1)
    path = tmp_path / "colours.mp4"
    write_video(path, [frame] * 2, fps=10)
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    matrix = "bt709" if height >= 720 else "bt601"
    tags = subprocess.run([ff, "-i", str(path)], capture_output=True, text=True).stderr
    assert f"tv, {'bt709' if height >= 720 else 'smpte170m'}/bt709/iec61966-2-1" in tags
    decoded = subprocess.run([ff, "-v", "error", "-i", str(path), "-vf",
                              f"scale=in_color_matrix={matrix}:in_range=tv", "-frames:v", "1",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True).stdout
    image = np.frombuffer(decoded, np.uint8).reshape(height, frame.shape[1], 3)
    centres = image[height // 2, W // 12::W // 6][:6].astype(int)
    assert np.abs(centres - colours).max() <= 4, centres
