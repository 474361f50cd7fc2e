"""The SfM stage's inputs, before COLMAP runs: camera groups (image size, EXIF), the photos
staged upright for COLMAP (EXIF rotation, HEIC, symlinks, truncated files), the matcher's
choice and the settings' checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voxsplat.recon.sfm import SfmConfig
from voxsplat.recon.sfm.inputs import (camera_groups, choose_matcher, scan_images, stage_images,
                                       use_guided_matching)
from testkit import error_message as _message, need_pycolmap

need_pycolmap()


def test_camera_groups_follow_size_and_exif(tmp_path):
    def save(name, size, make=None, orientation=None):
        exif = Image.Exif()
        if make:
            exif[0x010F] = make
        if orientation:
            exif[0x0112] = orientation
        colour = (90, 120, ord(name[0]))  # not byte-for-byte copies, which scan_images drops
        Image.new("RGB", size, colour).save(tmp_path / name, exif=exif.tobytes())

    save("a.jpg", (40, 30), "Canon")
    save("b.jpg", (40, 30), "Canon")
    save("c.jpg", (40, 30), "Nikon")
    save("d.jpg", (30, 40))
    images = scan_images(tmp_path)
    groups = camera_groups(images, "auto")
    assert [[im.name for im in g] for g in groups] == [["a.jpg", "b.jpg"], ["c.jpg"], ["d.jpg"]]
    assert len(camera_groups(images, "no")) == 4
    assert "single_camera=yes needs one image size" in _message(camera_groups, images, "yes")
    save("e.jpg", (40, 30), "Canon", orientation=6)  # stored 40x30, shown 30x40
    e = scan_images(tmp_path)[-1]
    assert (e.width, e.height, e.needs_copy) == (30, 40, True)


@pytest.mark.parametrize("suffix", [".jpg", ".heic"])
def test_staging_makes_rotated_photos_upright(tmp_path, suffix):
    if suffix == ".heic":  # iPhone photos: staged as JPEG for COLMAP
        pytest.importorskip("pillow_heif").register_heif_opener()
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    exif.get_ifd(0x8769)[0xA405] = 28  # 35 mm equivalent focal length: COLMAP's prior
    Image.fromarray(pixels).save(tmp_path / f"r{suffix}", exif=exif.tobytes(), quality=95)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    stage = tmp_path / "stage"
    stage_images(scan_images(tmp_path), stage)
    upright = np.asarray(Image.open(stage / "r.jpg"))
    assert upright.shape == (40, 30, 3) and upright[:20].mean() > 200 and upright[20:].mean() < 50
    assert Image.open(stage / "r.jpg").getexif().get(0x0112, 1) == 1
    import pycolmap
    camera = pycolmap.infer_camera_from_image(stage / "r.jpg")  # the focal prior survived
    assert camera.has_prior_focal_length and (camera.width, camera.height) == (30, 40)
    assert (stage / "p.png").stat().st_ino == (tmp_path / "p.png").stat().st_ino  # linked


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_staging_follows_relative_symlinks_and_refuses_truncated_photos(tmp_path, suffix):
    """A photo that is a relative symlink stages as its target (a hard link of the link itself
    pointed nowhere from the staging folder: COLMAP read nothing); a truncated photo, which
    COLMAP reads without a word (grey or black rows), stops staging with its name."""
    rng = np.random.default_rng(0)
    photos, elsewhere = tmp_path / "photos", tmp_path / "originals"
    photos.mkdir(), elsewhere.mkdir()
    for name in ("a", "b"):
        Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).save(
            elsewhere / f"{name}{suffix}")
        (photos / f"{name}{suffix}").symlink_to(Path("..") / "originals" / f"{name}{suffix}")
    stage = tmp_path / "stage"
    stage_images(scan_images(photos), stage)
    assert np.array_equal(np.asarray(Image.open(stage / f"b{suffix}")),
                          np.asarray(Image.open(elsewhere / f"b{suffix}")))
    cut = elsewhere / f"b{suffix}"
    cut.write_bytes(cut.read_bytes()[:cut.stat().st_size // 2])
    message = _message(stage_images, scan_images(photos), tmp_path / "stage2")
    assert f"b{suffix}: cannot read image" in message and "replace it with a readable copy" in message


def test_matcher_choice_and_config_errors():
    assert choose_matcher(SfmConfig(), 20, from_video=False) == "exhaustive"
    assert choose_matcher(SfmConfig(), 20, from_video=True) == "sequential"
    assert choose_matcher(SfmConfig(), 500, from_video=False) == "retrieval"
    assert choose_matcher(SfmConfig(matcher="exhaustive"), 20, from_video=True) == "exhaustive"
    assert "sfm matcher='vocab': expected one of auto, exhaustive, sequential, retrieval" in _message(
        SfmConfig, matcher="vocab")
    assert "min_registered_fraction=0" in _message(SfmConfig, min_registered_fraction=0)
    auto, yes, no = (SfmConfig(guided_matching=g) for g in ("auto", "yes", "no"))
    assert not use_guided_matching(auto, 10, first_pass_short=False)  # a second pass, if any
    assert use_guided_matching(auto, 12, True) and not use_guided_matching(auto, 13, True)
    assert use_guided_matching(yes, 500, False) and not use_guided_matching(yes, 500, True)
    assert not use_guided_matching(no, 3, False) and not use_guided_matching(no, 3, True)
    assert "sfm guided_matching='on': expected one of auto, yes, no" in _message(
        SfmConfig, guided_matching="on")
    # values COLMAP refuses with a traceback, or takes to no use (1x1 images, no features)
    assert "sfm seed=-3: expected an integer in [0, 2^31 - 1]" in _message(SfmConfig, seed=-3)
    assert "seed=2147483648" in _message(SfmConfig, seed=2 ** 31)
    assert "num_threads=-7: expected -1" in _message(SfmConfig, num_threads=-7)
    assert "max_output_size=1: expected 0 (keep the size)" in _message(SfmConfig, max_output_size=1)
    assert "max_image_size=2: expected an integer >= 64" in _message(SfmConfig, max_image_size=2)
    assert "max_num_features=2: expected an integer >= 64" in _message(SfmConfig, max_num_features=2)
    assert "retrieval_neighbours=0: expected an integer >= 1" in _message(SfmConfig, retrieval_neighbours=0)
    SfmConfig(seed=2 ** 31 - 1, num_threads=0, max_output_size=64, video_max_size=0)
