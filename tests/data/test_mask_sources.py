"""Where masks come from (alpha, a `masks/` folder, `mask_path`, DTU's `mask/`), which one
wins, and the masks that say nothing (all white) or everything (all empty). Mask file values:
`test_mask_values.py`."""

from __future__ import annotations

import json
import warnings
import numpy as np
import pytest
from data_testkit import ring_poses, write_blender
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import load_scene


def _transparent_pixel(path, opaque_rest: bool = True) -> None:
    """Re-save `path` as RGBA with pixel (0,0) transparent (a PNG export among photos)."""
    rgba = np.asarray(Image.open(path).convert("RGBA")).copy()
    if not opaque_rest:
        rgba[:, :, 3] = 0
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba).save(path)


def test_alpha_in_a_few_images_is_no_mask(tmp_path):
    """One image of four with a transparent pixel put every view into masked training
    (all-white masks for the others): now its alpha is composited and named."""
    path = write_blender(tmp_path, ring_poses(4), mode="RGB")
    _transparent_pixel(tmp_path / "images" / "r_2.png")
    with pytest.warns(UserWarning, match=r"only 1 of 4 images have transparent pixels \(r_2.png\)"):
        scene = load_scene(path)
    assert scene.masks is None
    # most images with alpha: a background remover's output; the others' masks are all white
    for i in (0, 1):
        _transparent_pixel(tmp_path / "images" / f"r_{i}.png")
    with pytest.warns(UserWarning, match=r"1 of 4 images have no transparent pixel \(r_3.png\)"):
        scene = load_scene(path)
    assert [int((~m).sum()) for m in scene.masks] == [1, 1, 1, 0]


def test_a_masks_folder_wins_over_alpha_in_transforms_json(tmp_path):
    """transforms.json dropped its `masks/` folder when any image had alpha; like the other
    readers, the folder wins now, with a warning that the alpha is no mask."""
    path = write_blender(tmp_path, ring_poses(2), mode="RGBA")
    (tmp_path / "masks").mkdir()
    truth = []
    for i in range(2):
        m = np.zeros((12, 16), np.uint8)
        m[2:10, 3 + i:12] = 255
        Image.fromarray(m).save(tmp_path / "masks" / f"r_{i}.png.png")
        truth.append(m > 0)
    with pytest.warns(UserWarning, match="the masks come from this folder"):
        scene = load_scene(path)
    for mask, expected in zip(scene.masks, truth):
        np.testing.assert_array_equal(mask.numpy(), expected)


def test_mask_path_masks_at_half_size_are_resized(tmp_path):
    """nerfstudio's `mask_path` took only full-size masks; a resized copy is resized now,
    like a `masks/` folder's, and a mask of another aspect is still refused."""
    path = write_blender(tmp_path, ring_poses(2), mode="RGB", width=16, height=12)
    meta = json.loads(path.read_text())
    (tmp_path / "m").mkdir()
    for i, frame in enumerate(meta["frames"]):
        half = np.zeros((6, 8), np.uint8)
        half[1:5, 2:6] = 255
        Image.fromarray(half).save(tmp_path / "m" / f"{i}.png")
        frame["mask_path"] = f"m/{i}.png"
    path.write_text(json.dumps(meta))
    scene = load_scene(path)
    expected = np.zeros((12, 16), bool)
    expected[2:10, 4:12] = True
    np.testing.assert_array_equal(scene.masks[0].numpy(), expected)
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "m" / "1.png")
    with pytest.raises(VoxsplatError, match=r"1.png: mask is 12x12 but its image is 16x12"):
        load_scene(path)


def test_empty_masks_warn_and_all_empty_masks_are_refused(tmp_path):
    """An all-black `mask_path` mask warned nowhere; all masks empty trained on nothing."""
    path = write_blender(tmp_path, ring_poses(2), mode="RGB")
    meta = json.loads(path.read_text())
    (tmp_path / "m").mkdir()
    for i, frame in enumerate(meta["frames"]):
        mask = np.zeros((12, 16), np.uint8)
        mask[3:6, 3:6] = 255 * (i == 0)
        Image.fromarray(mask).save(tmp_path / "m" / f"{i}.png")
        frame["mask_path"] = f"m/{i}.png"
    path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"1 mask\(s\) have no white \(object\) pixel: 1.png"):
        assert load_scene(path).masks[0].sum() == 9
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(tmp_path / "m" / "0.png")
    with pytest.warns(UserWarning), pytest.raises(VoxsplatError, match="every mask is empty"):
        load_scene(path)
    # alpha transparent everywhere says so too
    path = write_blender(tmp_path / "alpha", ring_poses(3), mode="RGB")
    for i in range(3):
        _transparent_pixel(tmp_path / "alpha" / "images" / f"r_{i}.png", opaque_rest=i > 0)
    with pytest.warns(UserWarning, match=r"1 image\(s\) are transparent everywhere: r_0.png"):
        load_scene(path)


def test_two_masks_folders_name_the_one_left_out(tmp_path):
    """`images/masks/` and a scene's `masks/` both present: the first is read, as before, and
    the one left out is named (it was silent)."""
    path = write_blender(tmp_path, ring_poses(2), mode="RGB")
    for folder, value in ((tmp_path / "images" / "masks", 255), (tmp_path / "masks", 0)):
        folder.mkdir()
        for i in range(2):
            mask = np.zeros((12, 16), np.uint8)
            mask[:6] = value
            mask[6:] = 255 - value
            Image.fromarray(mask).save(folder / f"r_{i}.png.png")
    with pytest.warns(UserWarning, match=r"images/masks: the masks come from this folder; "
                                         r".*/masks left out"):
        scene = load_scene(path)
    assert bool(scene.masks[0][:6].all()) and not scene.masks[0][6:].any()


def test_inverted_masks_warn(tmp_path):
    """Masks white around a dark object (inverted: the background marked as the object)
    trained the background; they warn now. Masks of an object that touches the border, as a
    close-up's, do not."""
    path = write_blender(tmp_path, ring_poses(3), mode="RGB")
    (tmp_path / "masks").mkdir()

    def save(value_inside, rows):
        for i in range(3):
            mask = np.full((12, 16), 255 - value_inside, np.uint8)
            mask[rows, 4:12] = value_inside
            Image.fromarray(mask).save(tmp_path / "masks" / f"r_{i}.png.png")

    save(0, slice(3, 9))  # white all around a dark centre
    with pytest.warns(UserWarning, match=r"3 of 3 masks are white all around their border.*"
                                         r"look inverted"):
        load_scene(path)
    save(255, slice(3, 12))  # the object, touching the bottom edge
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_scene(path).masks[0].sum() == 9 * 8


def test_only_a_scenes_image_folder_takes_the_masks_beside_it(tmp_path):
    """`images/`, `images_4/`, `image/`, `rgb/` take `masks/` from the scene folder; any other
    photo folder (`imagery/`, `rgb_shots/` took them by their names' start) only its own."""
    from voxsplat.data.readers.common import mask_folder
    (tmp_path / "masks").mkdir()
    for name, takes in (("images", True), ("images_4", True), ("image", True), ("rgb", True),
                        ("imagery", False), ("rgb_shots", False), ("photos", False)):
        (tmp_path / name).mkdir()
        assert (mask_folder(tmp_path / name) == tmp_path / "masks") == takes, name
    (tmp_path / "masks_4").mkdir()  # nerfstudio's downscaled masks, for its images_4/
    assert mask_folder(tmp_path / "images_4") == tmp_path / "masks_4"
    assert mask_folder(tmp_path / "images") == tmp_path / "masks"
