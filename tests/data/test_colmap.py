"""COLMAP model reader: binary and text models (written by pycolmap and by hand), dispatch
through load_scene, and one-line errors for distorted cameras, missing images and bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.load import load_scene
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.readers.colmap import (DistortedCameraError, find_colmap_model,
                                          max_distortion_px, quaternion_to_matrix, read_colmap,
                                          read_colmap_model, ColmapCamera)
from testkit import error_message as _message

# A hand-written text model: 2 cameras, 3 images (one with an empty POINTS2D line), 2 points.
CAMERAS_TXT = """# Camera list with one line of data per camera:
1 PINHOLE 40 30 50 52 20 15
2 SIMPLE_RADIAL 40 30 45 20.5 15.5 0
"""
IMAGES_TXT = """# Image list with two lines of data per image:
1 1 0 0 0 0 0 1 1 a.png
10 10 5 -1
2 0.9238795 0 0.3826834 0 -0.5 0 1 1 b.png

3 1 0 0 0 1 2 3 2 c.png
1 2 -1 3 4 -1
"""
POINTS_TXT = """# 3D point list
1 0.5 0.25 3 255 0 10 0.5 1 0 2 0
2 -1 1 4 0 128 255 0.2 3 1
"""


def _save_image(path: Path, size: tuple[int, int], seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)


def _text_scene(root: Path, cameras: str = CAMERAS_TXT, with_images: bool = True) -> Path:
    model = root / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text(cameras)
    (model / "images.txt").write_text(IMAGES_TXT)
    (model / "points3D.txt").write_text(POINTS_TXT)
    if with_images:
        for i, name in enumerate(("a.png", "b.png", "c.png")):
            _save_image(root / "images" / name, (40, 30), seed=i)
    return root


def test_text_model_reads_poses_intrinsics_and_points(tmp_path):
    scene = read_colmap(_text_scene(tmp_path))
    assert scene.names == ("a", "b", "c")
    assert torch.allclose(scene.cameras.Ks[0], torch.tensor([[50.0, 0, 20], [0, 52, 15], [0, 0, 1]]))
    assert torch.allclose(scene.cameras.Ks[2], torch.tensor([[45.0, 0, 20.5], [0, 45, 15.5], [0, 0, 1]]))
    expected_b = np.eye(4)
    expected_b[:3, :3] = quaternion_to_matrix(np.array([0.9238795, 0, 0.3826834, 0]))
    expected_b[:3, 3] = (-0.5, 0, 1)
    assert np.allclose(scene.cameras.cam_from_world[1].numpy(), expected_b, atol=1e-6)
    assert np.allclose(scene.cameras.centers[2].numpy(), -np.array([1.0, 2, 3]), atol=1e-6)
    assert torch.allclose(scene.points, torch.tensor([[0.5, 0.25, 3], [-1, 1, 4]]))
    assert torch.allclose(scene.point_colors[1], torch.tensor([0, 128 / 255, 1.0]))
    assert scene.splits == {"train": (1, 2), "test": (0,)}


def test_quaternion_convention_matches_a_rotation_about_y():
    R = quaternion_to_matrix(np.array([np.cos(0.25), 0.0, np.sin(0.25), 0.0]))  # 0.5 rad about y
    assert np.allclose(R, [[np.cos(0.5), 0, np.sin(0.5)], [0, 1, 0], [-np.sin(0.5), 0, np.cos(0.5)]])


@pytest.mark.parametrize("binary", [True, False])
def test_pycolmap_written_model_roundtrips(tmp_path, binary):
    pycolmap = pytest.importorskip("pycolmap")
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_frames_per_rig, options.num_points3D = 1, 5, 60
    options.camera_model_id = pycolmap.CameraModelId.PINHOLE
    options.camera_params = [70.0, 72.0, 31.0, 23.5]
    options.camera_width, options.camera_height = 64, 48
    rec = pycolmap.synthesize_dataset(options)
    model_dir = tmp_path / "sparse" / "0"
    model_dir.mkdir(parents=True)
    (rec.write_binary if binary else rec.write_text)(str(model_dir))
    for i, image in enumerate(rec.images.values()):
        _save_image(tmp_path / "images" / image.name, (64, 48), seed=i)
    scene = load_scene(tmp_path)  # dispatch: a folder with sparse/0 and images/
    assert len(scene) == 5 and scene.points.shape == (60, 3)
    for i, name in enumerate(scene.names):
        image = rec.find_image_with_name(name + ".png")
        expected = image.cam_from_world().matrix()
        assert np.allclose(scene.cameras.cam_from_world[i, :3].double().numpy(), expected, atol=1e-5)
        assert np.allclose(scene.cameras.Ks[i].numpy(), rec.cameras[image.camera_id].calibration_matrix(),
                           atol=1e-4)
    xyz = np.stack([p.xyz for p in rec.points3D.values()])
    assert np.allclose(np.sort(scene.points.numpy(), 0), np.sort(xyz, 0), atol=1e-5)
    suffix = ".bin" if binary else ".txt"
    assert len(load_scene(model_dir / f"cameras{suffix}")) == 5  # a model file works too


def test_model_folder_layouts(tmp_path):
    root = _text_scene(tmp_path / "scene")
    assert find_colmap_model(root) == root / "sparse" / "0"
    assert len(read_colmap(root / "sparse" / "0")) == 3  # the model folder itself
    flat = tmp_path / "flat"  # undistorter layout: sparse/ directly holds the model
    (flat / "sparse").mkdir(parents=True)
    for f in (root / "sparse" / "0").iterdir():
        (flat / "sparse" / f.name).write_bytes(f.read_bytes())
    (flat / "images").symlink_to(root / "images")
    assert find_colmap_model(flat) == flat / "sparse" and len(load_scene(flat)) == 3
    assert find_colmap_model(tmp_path / "nothing") is None


def test_resized_image_folder_scales_intrinsics(tmp_path):
    root = _text_scene(tmp_path)
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _save_image(root / "images_2" / name, (20, 15), seed=i)
    scene = read_colmap(root, image_folder="images_2")
    assert scene.cameras.size(0) == (20, 15)
    assert torch.allclose(scene.cameras.Ks[0], torch.tensor([[25.0, 0, 10], [0, 26, 7.5], [0, 0, 1]]))


def test_odd_sized_camera_halved_with_rounding_is_accepted(tmp_path):
    """1555x1037 halved is 778x518 (rounded): uniform within a pixel of the resized image; a
    rotated image (518x778) is still refused."""
    cams = "".join(f"{i} PINHOLE 1555 1037 1200 1200 777.5 518.5\n" for i in (1, 2))
    root = _text_scene(tmp_path, cams, with_images=False)
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _save_image(root / "images" / name, (778, 518), seed=i)
    K = read_colmap(root).cameras.Ks[0]
    torch.testing.assert_close(K[0, 2], torch.tensor(777.5 * 778 / 1555))
    torch.testing.assert_close(K[1, 1], torch.tensor(1200.0 * 518 / 1037))
    _save_image(root / "images" / "b.png", (518, 778))
    assert "b.png: image is 518x778" in _message(lambda: read_colmap(root))


def test_distorted_camera_is_refused_with_the_fix(tmp_path):
    root = _text_scene(tmp_path, CAMERAS_TXT.replace("20.5 15.5 0", "20.5 15.5 -0.2"))
    message = _message(load_scene, root)
    assert "camera 2 (SIMPLE_RADIAL) has lens distortion" in message
    assert "undistort the images first" in message


def test_negligible_distortion_is_read_as_pinhole():
    cam = ColmapCamera(1, "OPENCV", 1000, 800, np.array([900, 900, 500, 400, 1e-7, 0, 1e-8, 0]))
    assert max_distortion_px(cam) < 0.01
    cam = ColmapCamera(1, "RADIAL", 1000, 800, np.array([900, 500, 400, 0.01, 0.0]))
    r = np.hypot(500, 400) / 900  # normalized corner radius
    assert max_distortion_px(cam) == pytest.approx(0.01 * r**3 * 900, rel=1e-6)


def test_unsupported_model_is_refused(tmp_path):
    root = _text_scene(tmp_path, CAMERAS_TXT.replace("SIMPLE_RADIAL 40 30 45 20.5 15.5 0",
                                                     "OPENCV_FISHEYE 40 30 45 45 20 15 0 0 0 0"))
    assert "camera 2 (OPENCV_FISHEYE) is not pinhole" in _message(read_colmap, root)
    with pytest.raises(DistortedCameraError):  # undistorted by `reconstruct` (tests/recon/test_sfm)
        read_colmap(root)
    panorama = _text_scene(tmp_path / "360", CAMERAS_TXT.replace(
        "SIMPLE_RADIAL 40 30 45 20.5 15.5 0", "EQUIRECTANGULAR 40 30 40 30"))
    with pytest.raises(VoxsplatError, match="360-degree panoramas are not supported") as info:
        read_colmap(panorama)
    assert not isinstance(info.value, DistortedCameraError)  # nothing could undistort it


@pytest.mark.parametrize("camera", ["FULL_OPENCV 40 30 50 52 20 15 0 0 0 0 0 0 0 0",
                                    "FOV 40 30 50 52 20 15 0", "EUCM 40 30 50 52 20 15 0 0",
                                    "DIVISION 40 30 50 52 20 15 0"])
def test_other_perspective_models_without_distortion_are_pinhole(tmp_path, camera):
    """Perspective models with all extra parameters 0 are exactly pinhole (COLMAP's undistorter
    would copy them unchanged, so they must be read as they are)."""
    scene = read_colmap(_text_scene(tmp_path, CAMERAS_TXT.replace("1 PINHOLE 40 30 50 52 20 15",
                                                                  f"1 {camera}")))
    np.testing.assert_allclose(scene.cameras.Ks[0].numpy(), [[50, 0, 20], [0, 52, 15], [0, 0, 1]])
    distorted = CAMERAS_TXT.replace("1 PINHOLE 40 30 50 52 20 15", f"1 {camera[:-1]}0.1")
    with pytest.raises(DistortedCameraError, match="is not pinhole"):
        read_colmap(_text_scene(tmp_path / "d", distorted))


def test_distortion_that_peaks_inside_the_image_is_not_negligible():
    """k1 = 0.1, k2 = -0.144: the displacement is ~0 at the corners but 1.3 px at the left
    edge's middle."""
    cam = ColmapCamera(1, "RADIAL", 160, 120, np.array([120.0, 80, 60, 0.1, -0.144]))
    v, u = np.mgrid[0:121, 0:161] / 1.0
    r = np.hypot(u - 80, v - 60) / 120  # every pixel corner, normalized
    shift = 120 * r * np.abs(0.1 * r**2 - 0.144 * r**4)
    assert shift[[0, 0, -1, -1], [0, -1, 0, -1]].max() < 0.01  # nothing at the corners
    assert shift.max() == pytest.approx(1.291, abs=0.01)
    assert max_distortion_px(cam) == pytest.approx(shift.max(), abs=0.01)


def test_missing_images_are_named(tmp_path):
    root = _text_scene(tmp_path)
    (root / "images" / "b.png").unlink()
    message = _message(load_scene, root)
    assert message.startswith(str(root / "sparse" / "0"))
    assert "1 of 3 registered images are missing from" in message and "(b.png)" in message
    no_folder = _text_scene(tmp_path / "bare", with_images=False)
    assert "no images folder" in _message(read_colmap, no_folder)


def test_incomplete_and_corrupt_models(tmp_path):
    root = _text_scene(tmp_path / "a")
    (root / "sparse" / "0" / "images.txt").unlink()
    assert "COLMAP model without images.bin or images.txt" in _message(load_scene, root)
    root = _text_scene(tmp_path / "b")
    (root / "sparse" / "0" / "cameras.txt").write_text("1 PINHOLE 40 thirty 50 52 20 15\n")
    assert "cameras.txt: line 1 is not a valid camera" in _message(load_scene, root)
    root = _text_scene(tmp_path / "c")
    (root / "sparse" / "0" / "cameras.txt").unlink()
    (root / "sparse" / "0" / "cameras.bin").write_bytes(b"\x01\x00\x00\x00\x00\x00\x00\x00\x01")
    assert "cameras.bin: file ends early (truncated?)" in _message(load_scene, root)


def test_binary_reader_handles_empty_model(tmp_path):
    model_dir = tmp_path / "sparse" / "0"
    model_dir.mkdir(parents=True)
    for stem in ("cameras", "images", "points3D"):
        (model_dir / f"{stem}.bin").write_bytes(np.uint64(0).tobytes())
    model = read_colmap_model(model_dir)
    assert model.cameras == {} and model.images == {} and model.points_xyz.shape == (0, 3)
    assert "the model has no registered images" in _message(read_colmap, tmp_path)


def _save_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def test_masks_folder_beside_the_images(tmp_path):
    """COLMAP's layout (`masks/a.png.png`) and plain names (`masks/b.png`); white = object.
    A resized image folder takes the full-size masks, resized; a missing mask is named."""
    root = _text_scene(tmp_path)
    masks = {}
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        m = np.zeros((30, 40), bool)
        m[5 + i:20, 10:30 - i] = True
        masks[name] = m
    _save_mask(root / "masks" / "a.png.png", masks["a.png"])
    _save_mask(root / "masks" / "b.png", masks["b.png"])
    _save_mask(root / "masks" / "c.png.png", masks["c.png"])
    scene = read_colmap(root)
    by_name = dict(zip(scene.names, scene.masks))
    for name, m in masks.items():
        assert torch.equal(by_name[name[:-4]], torch.from_numpy(m)), name
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _save_image(root / "images_2" / name, (20, 15), seed=i)
    half = dict(zip(*(lambda s: (s.names, s.masks))(read_colmap(root, image_folder="images_2"))))
    assert half["a"].shape == (15, 20)
    # shrunk by area and thresholded at half, as a downscaled load shrinks masks
    from voxsplat.data.images import resize_image
    assert torch.equal(half["a"], resize_image(torch.from_numpy(masks["a.png"]), (20, 15)))
    assert not torch.equal(half["a"], torch.from_numpy(masks["a.png"][::2, ::2]))  # (not nearest)
    (root / "masks" / "b.png").unlink()
    message = _message(read_colmap, root)
    assert "no mask for b.png" in message and "masks/" in message
    _save_mask(root / "masks" / "b.png", np.ones((10, 10), bool))
    assert "10x10" in _message(read_colmap, root)


def _write_colmap_array(path: Path, array: np.ndarray) -> None:
    """COLMAP's dense array layout (read_write_dense.py): 'W&H&C&', then column-major float32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = array[:, :, None] if array.ndim == 2 else array
    H, W, C = a.shape
    body = np.transpose(a, (1, 0, 2)).astype(np.float32).tobytes(order="F")
    path.write_bytes(f"{W}&{H}&{C}&".encode() + body)


def test_dense_workspace_depth_maps_come_with_the_scene(tmp_path):
    """`stereo/depth_maps/NAME.geometric.bin` (else `.photometric.bin`) beside `images/`: read
    in COLMAP's column-major layout, resized to the images, zeros where an image has none."""
    root = _text_scene(tmp_path)
    rng = np.random.default_rng(0)
    geometric = rng.uniform(1, 5, (30, 40)).astype(np.float32)
    geometric[0, 0] = np.nan
    maps = root / "stereo" / "depth_maps"
    _write_colmap_array(maps / "a.png.geometric.bin", geometric)
    _write_colmap_array(maps / "a.png.photometric.bin", geometric * 2)  # not the preferred one
    coarse = rng.uniform(1, 5, (15, 20)).astype(np.float32)  # max_image_size below the photo's
    _write_colmap_array(maps / "b.png.photometric.bin", coarse)
    scene = read_colmap(root)
    expected_a = np.where(np.isfinite(geometric), geometric, 0)
    assert np.array_equal(scene.depths[0].numpy(), expected_a)
    assert scene.depths[1].shape == (30, 40) and np.array_equal(scene.depths[1].numpy()[::2, ::2], coarse)
    assert float(scene.depths[2].abs().max()) == 0  # c has no depth map
    assert read_colmap(_text_scene(tmp_path / "plain")).depths is None
    (maps / "a.png.geometric.bin").write_bytes(b"40&30&")
    assert "not a COLMAP depth map" in _message(read_colmap, root)
    _write_colmap_array(maps / "a.png.geometric.bin", geometric.T.copy())  # 30x40: rotated
    assert "depth map is 30x40 but its image is 40x30" in _message(read_colmap, root)


def test_an_images_txt_without_its_points_lines_is_named(tmp_path):
    """images.txt written with one line per image (no 2D-points line): every second image
    was skipped as "points", silently (3 images gave 2)."""
    root = _text_scene(tmp_path)
    lines = [line for line in IMAGES_TXT.splitlines() if line.endswith(".png") or line.startswith("#")]
    (root / "sparse" / "0" / "images.txt").write_text("\n".join(lines) + "\n")
    assert "line 3 is the next image where image 1's 2D points belong" in _message(load_scene, root)


def test_the_other_models_colmap_made_are_named(tmp_path):
    """COLMAP splits photos that do not connect into sparse/0, sparse/1, ...: sparse/0 is
    read, as before, and the others are named (they were left out without a word)."""
    root = _text_scene(tmp_path)
    shutil.copytree(root / "sparse" / "0", root / "sparse" / "1")
    with pytest.warns(UserWarning, match=r"3 images from this model; sparse/1 \(models COLMAP "
                                         r"also made"):
        assert len(load_scene(root)) == 3
