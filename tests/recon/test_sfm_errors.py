"""Structure-from-motion's failures and warnings: each names the photos and what to retake or
pass (the rendered corner scene of `sfm_scene.py`, unrelated textures, and the messages'
own logic). Poses and inputs that work: `test_sfm.py`."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from voxsplat.recon.sfm import (PartialRegistrationWarning, check_registration, load_or_run_sfm,
                                run_sfm)
from voxsplat.recon.sfm import run as sfm_run
from sfm_scene import FAST, H, W, _look_at, _render, _save_unrelated, _texture, render_corner
from testkit import error_message as _message

pytest.importorskip("pycolmap")


def test_partial_registration_warns_then_fails_below_the_fraction(tmp_path):
    images = tmp_path / "images"
    render_corner(images, 8)
    for k in range(3):
        _save_unrelated(images / f"zz_unrelated{k}.png", k)
    with pytest.warns(PartialRegistrationWarning, match=r"registered only 8 of 11 images \(73%; "
                      r"not registered: zz_unrelated0.png, zz_unrelated1.png, zz_unrelated2.png\)"):
        scene = run_sfm(images, tmp_path / "ws", FAST, progress=False)
    assert len(scene) == 8 and "zz_unrelated0" not in scene.names
    strict = replace(FAST, min_registered_fraction=0.9)
    message = _message(run_sfm, images, tmp_path / "strict", strict, progress=False)
    assert message.startswith(f"{images}: SfM registered only 8 of 11 images")
    assert "take more photos overlapping them" in message and "at least 90% needed" in message
    assert "--set sfm.min_registered_fraction=0.72 accepts as few" in message
    assert not (tmp_path / "strict").exists()  # nothing half-written
    # a photo whose header reads but whose pixels are cut off is named as such
    whole = (images / "zz_unrelated0.png").read_bytes()
    (images / "zz_unrelated0.png").write_bytes(whole[:len(whole) // 2])
    message = _message(run_sfm, images, tmp_path / "cut", FAST, progress=False)
    assert message.startswith(f"{images / 'zz_unrelated0.png'}: cannot read image"), message
    assert "replace it with a readable copy or remove it from the folder" in message


def test_registration_messages_suggest_the_other_matcher(tmp_path):
    names = [f"{k}.jpg" for k in range(10)]
    assert check_registration(tmp_path, names, names, "exhaustive", FAST) is None
    warning = check_registration(tmp_path, names, names[:7], "sequential", FAST)
    assert "registered only 7 of 10 images (70%; not registered: 7.jpg, 8.jpg, 9.jpg)" in warning
    assert "try --matcher exhaustive" in warning
    many = [f"{k:02d}.jpg" for k in range(20)]
    message = _message(check_registration, tmp_path, many, many[:5], "exhaustive", FAST)
    assert "not registered: 05.jpg, 06.jpg, 07.jpg, 08.jpg, 09.jpg and 10 more" in message
    files = {"7.jpg": "7.webp", "8.jpg": "sub/8.heic"}  # re-encoded for COLMAP: the user's names
    warning = check_registration(tmp_path, names, names[:7], "exhaustive", FAST, files=files)
    assert "not registered: 7.webp, 9.jpg, sub/8.heic" in warning


def test_images_that_do_not_overlap(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for k in range(4):
        _save_unrelated(images / f"{k}.png", k)
    message = _message(run_sfm, images, tmp_path / "ws", FAST, progress=False)
    assert message.startswith(f"{images}: SfM could not build a model from the 4 images")
    assert "the photos do not overlap enough" in message
    assert "(0 of the 6 image pairs matched" in message
    assert not (tmp_path / "ws").exists()
    # sequential matching tries neighbours by name only, not all 45 pairs
    sequential = str(sfm_run._no_model_error(images, [40, 30], 10, "sequential"))
    assert "(2 image pairs matched in a consistent geometry" in sequential


def test_photos_from_one_spot_match_but_cannot_start_a_model(tmp_path):
    """Two photos turned about one camera centre overlap well but have no parallax: the
    message must say so instead of blaming the overlap."""
    rng = np.random.default_rng(0)
    textures = [_texture(rng) for _ in range(3)]
    K = np.array([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1]])
    images = tmp_path / "images"
    images.mkdir()
    eye = np.array([3.0, 3.0, 2.5])
    for k, target in enumerate(([-0.5, -0.5, 0.5], [-0.5, -0.2, 0.6])):
        Image.fromarray(_render(_look_at(eye, np.array(target)), K, textures)).save(images / f"{k}.png")
    message = _message(run_sfm, images, tmp_path / "ws", FAST, progress=False)
    assert "(1 of the 1 image pairs matched in a consistent geometry, up to " in message
    assert "none could start a model: too little parallax" in message
    assert "take the photos from further apart" in message
    assert "do not overlap" not in message and not (tmp_path / "ws").exists()


def test_no_model_messages_tell_overlap_matches_and_parallax_apart(tmp_path):
    """Which retake the message asks for follows the verified pairs' match counts: none
    matched (overlap), a pair with an initial pair's support (parallax), or fewer (matches)."""
    def why(inliers):
        return str(sfm_run._no_model_error(tmp_path, inliers, 3, "exhaustive"))

    assert "the photos do not overlap enough" in why([])
    few = why([18, 43])
    assert "(2 of the 3 image pairs matched" in few and "at most 43 matches a pair, too few" in few
    assert "add photos taken between and around these" in few and "parallax" not in few
    plenty = why([sfm_run.PARALLAX_MATCHES, 20])
    assert f"up to {sfm_run.PARALLAX_MATCHES} matches a pair" in plenty
    assert "too little parallax" in plenty and "add photos" not in plenty
    sequential = sfm_run._no_model_error(tmp_path, [], 3, "sequential")
    assert "; or use --matcher exhaustive" in str(sequential)


def test_too_few_images(tmp_path):
    assert "no images (.jpg, .png, ...) in the folder" in _message(run_sfm, tmp_path, tmp_path / "ws")
    _save_unrelated(tmp_path / "only.png", 0)
    message = _message(run_sfm, tmp_path, tmp_path / "ws")
    assert "only 1 image (only.png); structure-from-motion needs at least 2" in message
    assert "no such folder" in _message(run_sfm, tmp_path / "missing", tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_missing_pycolmap_says_what_to_install(tmp_path, monkeypatch):
    for k in range(2):
        _save_unrelated(tmp_path / f"{k}.png", k)
    monkeypatch.setitem(__import__("sys").modules, "pycolmap", None)
    message = _message(run_sfm, tmp_path, tmp_path / "ws")
    assert "structure-from-motion needs pycolmap" in message and "pip install pycolmap" in message


def test_bad_inputs_to_load_or_run(tmp_path):
    assert "no such file or folder" in _message(load_or_run_sfm, tmp_path / "nope", tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    message = _message(load_or_run_sfm, tmp_path / "notes.txt", tmp_path / "ws")
    assert "not a folder of photos, a video or a COLMAP model" in message
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    assert "broken.mp4: cannot decode the video" in _message(load_or_run_sfm, tmp_path / "broken.mp4",
                                                             tmp_path / "ws")


def test_photos_in_sub_folders_are_named_as_left_out(tmp_path):
    from voxsplat.recon.sfm.inputs import scan_images
    for k in range(2):
        _save_unrelated(tmp_path / f"{k}.png", k)
        (tmp_path / "day2").mkdir(exist_ok=True)
        _save_unrelated(tmp_path / "day2" / f"{k}.png", k)
    with pytest.warns(UserWarning, match=r"sub-folders day2/ \(2\) are left out"):
        assert [im.name for im in scan_images(tmp_path)] == ["0.png", "1.png"]


def test_copies_of_a_photo_are_left_out_and_named(tmp_path):
    import shutil
    from voxsplat.recon.sfm.inputs import scan_images
    for k in range(2):
        _save_unrelated(tmp_path / f"{k}.png", k)
    shutil.copy(tmp_path / "0.png", tmp_path / "0 (1).png")
    with pytest.warns(UserWarning, match=r"1 photo\(s\) are byte-for-byte copies .*: 0 \(1\).png \(= 0.png\)"):
        assert [im.name for im in scan_images(tmp_path)] == ["0.png", "1.png"]
    (tmp_path / "1.png").unlink()
    message = _message(scan_images, tmp_path)
    assert "the photos are copies of one photo (0 (1).png (= 0.png))" in message


def test_a_video_that_cannot_be_posed_leaves_nothing_and_is_named(tmp_path):
    """A still camera leaves one usable frame; frames that share no view fail SfM. Either
    error names the video (not the workspace's frames folder), says the camera must move,
    and the new workspace goes with its sampled frames."""
    from voxsplat.render.video import write_video
    still = _texture(np.random.default_rng(3))[:H, :W].astype(np.uint8)
    write_video(tmp_path / "still.mp4", [still] * 12, fps=10)
    ws = tmp_path / "ws"
    with pytest.warns(UserWarning, match="the camera stands still"):
        message = _message(load_or_run_sfm, tmp_path / "still.mp4", ws, FAST, progress=False)
    assert message.startswith(f"{tmp_path / 'still.mp4'}: only 1 usable frame(s)"), message
    assert "in which the camera moves around the scene" in message
    assert not ws.exists()
    unrelated = [_texture(np.random.default_rng(10 + k))[:H, :W].astype(np.uint8)
                 for k in range(12)]
    write_video(tmp_path / "cuts.mp4", unrelated, fps=10)
    message = _message(load_or_run_sfm, tmp_path / "cuts.mp4", ws, FAST, progress=False)
    assert message.startswith(f"{tmp_path / 'cuts.mp4'} (its frames): "), message
    assert "in a video the camera must move around the scene" in message
    assert not ws.exists()


def test_huge_photos_and_names_of_another_encoding_are_named_in_one_line(tmp_path, monkeypatch):
    """A 200 MP phone photo passed Pillow's 179 MP guard as a traceback, and so did a file
    name in another system's encoding (not UTF-8: a zip made on Windows)."""
    import os
    from voxsplat.data.images import MAX_PIXELS
    from voxsplat.recon.sfm.inputs import describe_image, scan_images
    assert 2 * Image.MAX_IMAGE_PIXELS >= MAX_PIXELS > 16320 * 12240  # read: a Galaxy Ultra's 200 MP
    for k in range(2):
        _save_unrelated(tmp_path / f"{k}.png", k)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # past twice this, Pillow refuses
    assert "0.png: more than 1000 megapixels, more than voxsplat reads; resize it" in _message(
        describe_image, tmp_path / "0.png")
    monkeypatch.undo()
    os.rename(tmp_path / "1.png", os.path.join(os.fsencode(tmp_path), b"caf\xe9.png"))
    message = _message(scan_images, tmp_path)
    assert "the file name caf\\udce9.png is not UTF-8 text" in message and "rename it" in message


def test_photos_of_another_format_than_their_name_says_are_staged_as_copies(tmp_path):
    """A WebP or GIF saved as .jpg/.png (browser downloads) went to COLMAP as it was, which
    could not read it: the photo was dropped, and the user told to take overlapping photos."""
    from voxsplat.recon.sfm.inputs import describe_image, stage_images
    _save_unrelated(tmp_path / "real.jpg", 0)
    assert not describe_image(tmp_path / "real.jpg").needs_copy
    Image.open(tmp_path / "real.jpg").save(tmp_path / "web.jpg", format="WEBP", lossless=True)
    Image.open(tmp_path / "real.jpg").convert("P").save(tmp_path / "anim.png", format="GIF")
    images = [describe_image(tmp_path / name) for name in ("web.jpg", "anim.png")]
    assert [(im.name, im.needs_copy) for im in images] == [("web.jpg", True), ("anim.png", True)]
    stage_images(images, tmp_path / "staged")
    assert [Image.open(tmp_path / "staged" / n).format for n in ("web.jpg", "anim.png")] == [
        "JPEG", "PNG"]
    pytest.importorskip("pillow_heif").register_heif_opener()  # (to write one)
    Image.open(tmp_path / "real.jpg").save(tmp_path / "phone.jpg", format="HEIF")  # named .jpg
    assert describe_image(tmp_path / "phone.jpg").needs_copy


def test_photos_in_formats_not_read_are_named(tmp_path):
    """.jfif (Windows' JPEGs from the web) and .avif photos were left out without a word, RAW
    and GIF files too, and a folder of RAW files alone was an 'unknown scene layout'."""
    from voxsplat.data.load import find_reader
    from voxsplat.recon.sfm.inputs import scan_images
    for name in ("IMG_1.CR2", "IMG_2.CR2", "IMG_3.nef"):
        (tmp_path / name).write_bytes(b"raw")
    message = _message(find_reader, tmp_path)
    assert "no photos voxsplat reads, only 3 file(s) in a format that is not read (IMG_1.CR2, " \
           "IMG_2.CR2, IMG_3.nef: camera RAW); export them as JPEG" in message
    _save_unrelated(tmp_path / "IMG_1.jpg", 0)  # the camera's JPEG of IMG_1.CR2
    Image.open(tmp_path / "IMG_1.jpg").save(tmp_path / "web.jfif", format="JPEG")
    _save_unrelated(tmp_path / "anim.gif", 2)
    with pytest.warns(UserWarning, match=r"3 file\(s\) in a format that is not read \(IMG_2.CR2, "
                                         r"IMG_3.nef, anim.gif: GIF and camera RAW\)"):
        images = scan_images(tmp_path)
    assert [im.name for im in images] == ["IMG_1.jpg", "web.jpg"]  # (a .jfif staged as .jpg)


def test_bad_photos_are_named_together_and_a_lone_photo_points_at_its_sub_folder(tmp_path):
    """Unreadable photos came up one per run, two empty files as copies of each other; one
    photo beside an images/ folder of them said 'only 1 image'; thumbnails failed SfM with
    advice about overlap."""
    from voxsplat.recon.sfm.inputs import check_readable, scan_images
    (tmp_path / "images").mkdir()
    for k in range(3):
        _save_unrelated(tmp_path / "images" / f"{k}.png", k)
    _save_unrelated(tmp_path / "cover.png", 9)
    message = _message(scan_images, tmp_path)
    assert "only 1 image (cover.png)" in message
    assert f"its sub-folder images/ holds 3: give {tmp_path / 'images'}" in message
    folder = tmp_path / "images"
    for name in ("e1.jpg", "e2.jpg"):
        (folder / name).write_bytes(b"")
    (folder / "cut.png").write_bytes((folder / "0.png").read_bytes()[:60])
    message = _message(scan_images, folder)
    assert f"{folder}: 2 photos cannot be read (e1.jpg, e2.jpg); replace them" in message
    assert "byte-for-byte" not in message and "unknown or corrupt format" in message
    (folder / "e1.jpg").unlink()
    (folder / "e2.jpg").unlink()
    (folder / "cut2.png").write_bytes((folder / "0.png").read_bytes()[:80])
    message = _message(check_readable, scan_images(folder))  # truncated: found when decoded
    assert f"{folder}: 2 photos cannot be read (cut.png, cut2.png); replace them" in message
    for name in ("cut.png", "cut2.png"):
        (folder / name).unlink()
    Image.open(folder / "0.png").resize((32, 24)).save(folder / "0.png")
    with pytest.warns(UserWarning, match=r"1 photo\(s\) under 200 px \(0.png \(32x24\)\): thumbnails"):
        scan_images(folder)


def test_one_shot_in_two_files_of_one_name(tmp_path):
    """IMG_5.JPG and its byte copy IMG_5.jpg were refused as a name clash (the copy check ran
    after it); two formats of one shot are told apart from two photos of one name."""
    import shutil
    from voxsplat.recon.sfm.inputs import scan_images
    for k in range(2):
        _save_unrelated(tmp_path / f"IMG_{k}.JPG", k)
    shutil.copy(tmp_path / "IMG_1.JPG", tmp_path / "IMG_1.jpg")
    with pytest.warns(UserWarning, match="byte-for-byte copies"):
        assert [im.name for im in scan_images(tmp_path)] == ["IMG_0.JPG", "IMG_1.JPG"]
    Image.open(tmp_path / "IMG_1.JPG").save(tmp_path / "IMG_1.png")
    (tmp_path / "IMG_1.jpg").unlink()
    message = _message(scan_images, tmp_path)
    assert "IMG_1.JPG and IMG_1.png share the name IMG_1" in message
    assert "if they are one photo (a phone's HEIC and JPEG of a shot), remove one" in message


def test_a_grayscale_photo_among_colour_ones_is_named(tmp_path):
    from voxsplat.recon.sfm.inputs import scan_images
    for k in range(3):
        _save_unrelated(tmp_path / f"{k}.png", k)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # colour photos alone: nothing said
        scan_images(tmp_path)
    Image.open(tmp_path / "1.png").convert("L").save(tmp_path / "1.png")
    with pytest.warns(UserWarning, match=r"1 grayscale photo\(s\) among colour ones \(1.png\)"):
        assert len(scan_images(tmp_path)) == 3
