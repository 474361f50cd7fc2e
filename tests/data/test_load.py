"""load_scene dispatch and its one-line errors for paths that are not scenes."""

from __future__ import annotations

import numpy as np
import pytest
from data_testkit import ring_poses, save_rgb, write_blender, write_llff, write_neus

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import find_reader, folder_video, folder_videos, load_scene
from voxsplat.data.readers import read_blender, read_llff, read_neus


def test_dispatch_on_folder_and_file(tmp_path):
    write_blender(tmp_path / "nerf", ring_poses(2))
    write_llff(tmp_path / "llff", ring_poses(2))
    write_neus(tmp_path / "neus", ring_poses(2), K_full=np.diag([100.0, 100.0, 1.0]) +
               np.array([[0, 0, 40], [0, 0, 30], [0, 0, 0]]), scale_mat=np.eye(4), masks=False)
    assert find_reader(tmp_path / "nerf")[0] is read_blender
    assert find_reader(tmp_path / "nerf" / "transforms.json")[0] is read_blender
    assert find_reader(tmp_path / "llff")[0] is read_llff
    assert find_reader(tmp_path / "llff" / "poses_bounds.npy") == (read_llff, tmp_path / "llff")
    assert find_reader(tmp_path / "neus")[0] is read_neus
    assert find_reader(tmp_path / "neus" / "cameras_sphere.npz")[0] is read_neus
    assert load_scene(tmp_path / "neus").source == str(tmp_path / "neus")


def test_a_folder_holding_only_a_video_gives_that_video(tmp_path):
    """A phone's capture folder with one video and no photos stands for the video; photos,
    a scene layout or no video at all keep the folder; several videos are ambiguous."""
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "IMG_0001.MOV").write_bytes(b"video")
    (capture / "notes.txt").write_text("kitchen, evening")
    (capture / ".hidden.mp4").write_bytes(b"")
    assert folder_video(capture) == capture / "IMG_0001.MOV"
    assert folder_video(capture / "IMG_0001.MOV") is None  # a file is given as it is
    (capture / "IMG_0002.mp4").write_bytes(b"video")
    with pytest.raises(VoxsplatError, match=r"holds 2 videos \(IMG_0001.MOV, IMG_0002.mp4\) "
                                            r"and no photos; give one video file"):
        folder_video(capture)
    save_rgb(capture / "photo.png", 8, 8)
    assert folder_video(capture) is None  # photos are posed, not the videos beside them
    assert folder_videos(capture) == [capture / "IMG_0001.MOV", capture / "IMG_0002.mp4"]
    assert folder_videos(capture / "photo.png") == []
    write_llff(tmp_path / "llff", ring_poses(2))
    (tmp_path / "llff" / "walk.mp4").write_bytes(b"video")
    assert folder_video(tmp_path / "llff") is None and folder_video(tmp_path / "nope") is None
    (tmp_path / "empty").mkdir()
    assert folder_video(tmp_path / "empty") is None


def _message(path, **kwargs) -> str:
    with pytest.raises(VoxsplatError) as info:
        load_scene(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path):
    message = _message(tmp_path / "nowhere")
    assert message.startswith(str(tmp_path / "nowhere")) and "no such file or folder" in message


def test_empty_folder(tmp_path):
    (tmp_path / ".hidden").write_text("")
    message = _message(tmp_path)
    assert message.startswith(str(tmp_path)) and "empty folder" in message


@pytest.mark.parametrize("sub", ["", "images"])
def test_images_without_poses_mention_sfm(tmp_path, sub):
    save_rgb(tmp_path / sub / "a.jpg", 8, 8)
    message = _message(tmp_path)
    assert message.startswith(str(tmp_path))
    assert "a folder of images without poses; run `voxsplat poses`" in message
    assert "transforms.json, poses_bounds.npy or cameras_sphere.npz" in message


def test_unknown_layout_and_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert "unknown scene layout" in _message(tmp_path)
    assert "notes.txt: not a known scene file" in _message(tmp_path / "notes.txt")
    save_rgb(tmp_path / "one.png", 4, 4)
    assert "one.png: a single image, not a scene" in _message(tmp_path / "one.png")


def test_bad_options(tmp_path):
    write_blender(tmp_path, ring_poses(2))
    assert "downscale=2: must be in (0, 1]" in _message(tmp_path, downscale=2)
    assert "downscale=0: must be in (0, 1]" in _message(tmp_path, downscale=0)
    assert "background=(1, 2, 3)" in _message(tmp_path, background=(1, 2, 3))


def test_downscale_option(tmp_path):
    write_blender(tmp_path, ring_poses(2), width=16, height=12)
    full = load_scene(tmp_path)
    half = load_scene(tmp_path, downscale=0.5)
    assert half.cameras.size(0) == (8, 6) and half.images[0].shape == (6, 8, 3)
    assert half.masks[0].shape == (6, 8)
    np.testing.assert_allclose(half.cameras.Ks[0, :2].numpy(), full.cameras.Ks[0, :2].numpy() / 2,
                               rtol=1e-6)


def test_photos_only_in_sub_folders_are_named(tmp_path):
    for sub in ("day1", "day2"):
        for i in range(2):
            save_rgb(tmp_path / sub / f"p{i}.jpg", 8, 6, seed=i)
    save_rgb(tmp_path / "masks" / "p0.png", 8, 6)  # mask folders are not photos
    with pytest.raises(VoxsplatError, match=r"only in its sub-folders day1/ \(2\), day2/ \(2\); "
                                            r"put the photos of one scene together"):
        find_reader(tmp_path)


def test_reading_images_in_threads_leaves_the_warning_filters_alone(tmp_path):
    """Images load in threads; a `catch_warnings` around each read raced there and left
    'ignore' in front of the process's filters, which hid every later warning (an empty mask,
    a partial SfM registration)."""
    import warnings
    write_blender(tmp_path, ring_poses(8), width=8, height=6)
    before = list(warnings.filters)
    for _ in range(5):
        load_scene(tmp_path)
    assert warnings.filters == before
