"""transforms.json reader: conventions, intrinsics, splits and every bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from data_testkit import FLIP_YZ, project_opengl, project_scene, ring_poses, save_rgb, write_blender
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import load_scene

POINTS = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 0.5], [-0.4, 0.1, -0.3]])


def test_opengl_poses_project_like_blender(tmp_path):
    poses = ring_poses(3)
    write_blender(tmp_path, poses, width=16, height=12, angle_x=0.8)
    scene = load_scene(tmp_path, background=(0.0, 0.0, 0.0))
    fx = 0.5 * 16 / math.tan(0.4)
    np.testing.assert_allclose(scene.cameras.Ks[0].numpy(),
                               [[fx, 0, 8], [0, fx, 6], [0, 0, 1]], rtol=1e-6)
    for i, pose in enumerate(poses):
        c2w_gl = pose @ FLIP_YZ
        for X in POINTS:
            expected = project_opengl(c2w_gl, fx, fx, 8.0, 6.0, X)
            np.testing.assert_allclose(project_scene(scene, i, X), expected, atol=1e-3)
        np.testing.assert_allclose(project_scene(scene, i, [0, 0, 0]), [8, 6], atol=1e-3)


def test_rgba_composited_and_alpha_kept_as_mask(tmp_path):
    write_blender(tmp_path, ring_poses(2), mode="RGBA")
    scene = load_scene(tmp_path, background=(0.0, 1.0, 0.0))
    raw = save_rgb(tmp_path / "again.png", 16, 12, seed=0, mode="RGBA")  # same pixels as r_0
    a = raw[:, :, 3:4] / 255.0
    expected = raw[:, :, :3] * a + np.array([0, 255, 0]) * (1 - a)
    assert np.abs(scene.images[0].numpy() - expected).max() <= 1
    np.testing.assert_array_equal(scene.masks[0].numpy(), raw[:, :, 3] > 127)
    assert scene.background == (0.0, 1.0, 0.0)


def test_single_file_every_eighth_is_test_and_no_extension(tmp_path):
    write_blender(tmp_path, ring_poses(10), extension=None, mode="RGB")
    scene = load_scene(tmp_path / "transforms.json")
    assert scene.masks is None
    order = sorted(range(10), key=lambda i: scene.names[i])  # r_0, r_1, r_2, ... r_9
    assert [scene.names[i] for i in scene.splits["test"]] == [scene.names[order[0]],
                                                              scene.names[order[8]]]
    assert len(scene.splits["train"]) == 8


def test_nerfstudio_filename_lists_give_the_splits(tmp_path):
    """nerfstudio's `train_filenames` / `val_filenames` (as `test`, the views measured): the
    entries match frames' file paths with or without './' or the extension; an entry that no
    frame has is named."""
    path = write_blender(tmp_path, ring_poses(5), mode="RGB", meta_extra={
        "train_filenames": ["images/r_0.png", "./images/r_2.png", "images/r_3"],
        "val_filenames": ["images/r_4.png"]})
    scene = load_scene(path)
    assert scene.splits == {"train": (0, 2, 3), "test": (4,)}  # r_1 in neither
    _edit(path, lambda m: m["val_filenames"].append("images/r_9.png"))
    with pytest.raises(VoxsplatError, match=r"'val_filenames' lists 'images/r_9.png'"):
        load_scene(path)


def test_per_split_files_and_unique_names(tmp_path):
    write_blender(tmp_path, ring_poses(3), split="train")
    write_blender(tmp_path, ring_poses(2), split="test")
    scene = load_scene(tmp_path)
    assert scene.splits == {"train": (0, 1, 2), "test": (3, 4)}
    assert scene.names == ("train/r_0", "train/r_1", "train/r_2", "test/r_0", "test/r_1")
    only_train = load_scene(tmp_path / "transforms_train.json")
    assert len(only_train) == 3 and only_train.splits == {"train": (0, 1, 2)}


def test_val_file_is_the_test_split_when_there_is_no_test_file(tmp_path):
    """Held-out metrics come from transforms_val.json then, not from the training views."""
    write_blender(tmp_path, ring_poses(3), split="train")
    write_blender(tmp_path, ring_poses(2), split="val")
    assert load_scene(tmp_path).splits == {"train": (0, 1, 2), "test": (3, 4)}
    write_blender(tmp_path, ring_poses(1), split="test")
    assert load_scene(tmp_path).splits == {"train": (0, 1, 2), "val": (3, 4), "test": (5,)}


def test_a_masks_folder_beside_the_images_is_read(tmp_path):
    """A capture's transforms.json + images/ + masks/ (COLMAP's names), without `mask_path`."""
    path = write_blender(tmp_path, ring_poses(2), mode="RGB")
    assert load_scene(path).masks is None
    (tmp_path / "masks").mkdir()
    for i in range(2):
        m = np.zeros((12, 16), np.uint8)
        m[2:10, 3 + i:12] = 255
        Image.fromarray(m).save(tmp_path / "masks" / f"r_{i}.png.png")
    scene = load_scene(path)
    assert [int(m.sum()) for m in scene.masks] == [8 * 9, 8 * 8]


def test_split_without_images_is_skipped_with_warning(tmp_path):
    write_blender(tmp_path, ring_poses(3), split="train")
    write_blender(tmp_path, ring_poses(2), split="val")
    for p in (tmp_path / "val").iterdir():
        p.unlink()
    with pytest.warns(UserWarning, match="transforms_val.json"):
        scene = load_scene(tmp_path)
    assert scene.splits == {"train": (0, 1, 2)}


def test_pixel_intrinsics_scaled_to_actual_size(tmp_path):
    poses = ring_poses(2)
    path = write_blender(tmp_path, poses, width=16, height=12, mode="RGB",
                         meta_extra={"fl_x": 40.0, "fl_y": 44.0, "cx": 15.0, "cy": 13.0,
                                     "w": 32, "h": 24})
    meta = json.loads(path.read_text())
    del meta["camera_angle_x"]
    meta["frames"][1]["fl_x"] = 60.0  # per-frame override
    path.write_text(json.dumps(meta))
    scene = load_scene(tmp_path)
    np.testing.assert_allclose(scene.cameras.Ks[0].numpy(),
                               [[20, 0, 7.5], [0, 22, 6.5], [0, 0, 1]], rtol=1e-6)
    assert scene.cameras.Ks[1, 0, 0].item() == pytest.approx(30.0)


@pytest.mark.parametrize("given", ["w", "h"])
def test_one_of_w_h_scales_both_axes(tmp_path, given):
    """A file that gives only `w` (or `h`) of its images, read on half-size copies: both axes
    are scaled by the one ratio, not fx by 1/2 and fy by 1."""
    path = write_blender(tmp_path, ring_poses(1), width=16, height=12, mode="RGB",
                         meta_extra={"fl_x": 40.0, "fl_y": 44.0, "cx": 15.0, "cy": 13.0,
                                     given: {"w": 32, "h": 24}[given]})
    _edit(path, lambda m: m.pop("camera_angle_x"))
    np.testing.assert_allclose(load_scene(tmp_path).cameras.Ks[0].numpy(),
                               [[20, 0, 7.5], [0, 22, 6.5], [0, 0, 1]], rtol=1e-6)


def _edit(path, change):
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("change, message", [
    (lambda m: m["frames"][1].pop("transform_matrix"), r"frame 1 \(\./images/r_1\.png\) has no "
                                                      r"'transform_matrix'"),
    (lambda m: m["frames"][1].pop("file_path"), "frame 1 has no 'file_path'"),
    (lambda m: m.pop("camera_angle_x"), r"frame 0 .* has no 'camera_angle_x' or 'fl_x'"),
    (lambda m: m.pop("frames"), "no 'frames' field"),
    (lambda m: m.update(frames=[]), "empty or invalid 'frames'"),
    (lambda m: m["frames"][2]["transform_matrix"][0].__setitem__(3, float("nan")),
     r"frame 2 \(\./images/r_2\.png\) has NaN or inf in its pose"),
    (lambda m: m["frames"][0]["transform_matrix"][1].__setitem__(1, float("inf")),
     "frame 0 .* has NaN or inf"),
    (lambda m: m["frames"][0].update(transform_matrix=[[1, 0], [0, 1]]), "must be a 4x4"),
    (lambda m: m["frames"][1].update(file_path="./images/missing"),
     r"frame 1 .*image '\./images/missing' not found"),
])
def test_bad_json_fields_name_file_and_frame(tmp_path, change, message):
    path = write_blender(tmp_path, ring_poses(3))
    _edit(path, change)
    with pytest.raises(VoxsplatError, match=message) as info:
        load_scene(tmp_path)
    assert "transforms.json" in str(info.value) and "\n" not in str(info.value)


def test_invalid_json_names_the_file(tmp_path):
    (tmp_path / "transforms.json").write_text('{"frames": [1, 2,')
    with pytest.raises(VoxsplatError, match=r"transforms.json: not valid JSON .*line 1"):
        load_scene(tmp_path)


def test_image_of_another_aspect_than_w_h_is_refused(tmp_path):
    path = write_blender(tmp_path, ring_poses(2), width=16, height=12, mode="RGB",
                         meta_extra={"fl_x": 40.0, "w": 32, "h": 20})
    with pytest.raises(VoxsplatError, match=r"frame 0 \(.*r_0.png\)'s image is 16x12 but its "
                                            r"'w'/'h' say 32x20"):
        load_scene(path)


def test_exif_orientation_is_ignored_as_nerfstudio_and_colmap_do(tmp_path):
    """The poses and intrinsics describe the pixels as stored: a phone photo's rotation tag
    must not turn it against its camera."""
    path = write_blender(tmp_path, ring_poses(2), width=16, height=12, mode="RGB",
                         meta_extra={"fl_x": 20.0, "w": 16, "h": 12})
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = np.asarray(Image.open(tmp_path / "images" / "r_0.png"))
    Image.fromarray(stored).save(tmp_path / "images" / "r_0.png", exif=exif.tobytes())
    scene = load_scene(path)
    np.testing.assert_array_equal(scene.images[0].numpy(), stored)
    assert scene.cameras.Ks[0, 0, 0] == scene.cameras.Ks[0, 1, 1] == 20.0


def test_different_sizes_with_global_pixel_focal_names_both_files(tmp_path):
    path = write_blender(tmp_path, ring_poses(3), width=16, height=12, mode="RGB")
    save_rgb(tmp_path / "images" / "r_2.png", 20, 12)
    _edit(path, lambda m: (m.pop("camera_angle_x"), m.update(fl_x=20.0)))
    with pytest.raises(VoxsplatError, match=r"r_2\.png: image is 20x12 but .*r_0\.png is 16x12"):
        load_scene(tmp_path)


def test_different_sizes_allowed_with_field_of_view(tmp_path):
    write_blender(tmp_path, ring_poses(2), width=16, height=12, mode="RGB")
    save_rgb(tmp_path / "images" / "r_1.png", 8, 6)
    scene = load_scene(tmp_path)
    assert scene.cameras.size(0) == (16, 12) and scene.cameras.size(1) == (8, 6)
    assert scene.cameras.Ks[1, 0, 0] == pytest.approx(scene.cameras.Ks[0, 0, 0] / 2)


def test_corrupt_image_names_the_image(tmp_path):
    write_blender(tmp_path, ring_poses(2))
    (tmp_path / "images" / "r_1.png").write_bytes(b"garbage")
    with pytest.raises(VoxsplatError, match=r"r_1\.png: cannot read image"):
        load_scene(tmp_path)


def test_cameras_are_float32_rigid(tmp_path):
    write_blender(tmp_path, ring_poses(2))
    cams = load_scene(tmp_path).cameras
    assert cams.cam_from_world.dtype == torch.float32 and cams.Ks.dtype == torch.float32
    R = cams.cam_from_world[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5,
                               rtol=0)


def test_a_scaled_camera_object_loses_its_scale(tmp_path):
    """A Blender camera object scaled by 0.5 writes the scale into `transform_matrix`: its
    rotation block was taken as it was (R R^T = 0.25 I, camera centres off by the square of
    the scale). The scale goes, with a warning; a skewed block is refused."""
    poses = ring_poses(3)
    path = write_blender(tmp_path, poses, mode="RGB")
    truth = load_scene(path)
    meta = json.loads(path.read_text())
    for frame in meta["frames"]:
        m = np.array(frame["transform_matrix"])
        m[:3, :3] *= 0.5
        frame["transform_matrix"] = m.tolist()
    path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="a scale in their rotation"):
        scene = load_scene(path)
    torch.testing.assert_close(scene.cameras.cam_from_world, truth.cameras.cam_from_world)
    m = np.array(meta["frames"][1]["transform_matrix"])
    m[0, 1] += 0.3
    meta["frames"][1]["transform_matrix"] = m.tolist()
    path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning), pytest.raises(VoxsplatError, match=r"frame 1.*is skewed"):
        load_scene(path)


def test_windows_separators_in_file_paths_are_read(tmp_path):
    """A transforms.json written on Windows (`images\\r_0.png`) was "not found"."""
    path = write_blender(tmp_path, ring_poses(2), mode="RGB")
    meta = json.loads(path.read_text())
    for frame in meta["frames"]:
        frame["file_path"] = frame["file_path"].replace("./", "").replace("/", "\\")
    path.write_text(json.dumps(meta))
    assert load_scene(path).names == ("r_0", "r_1")
