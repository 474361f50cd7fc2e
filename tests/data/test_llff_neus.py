"""poses_bounds.npy (LLFF) and cameras_sphere.npz (NeuS/DTU) readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_testkit import (FLIP_YZ, look_at, project_opengl, project_scene, ring_poses, save_rgb,
                          write_llff, write_neus)
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import load_scene
from voxsplat.data.readers.neus import DTU_TEST_IDS, decompose_projection, image_scale

POINTS = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 0.5], [-0.4, 0.1, -0.3]])


def _forward_poses(n: int):
    return [look_at([0.2 * i - 0.5, -5.0, 0.1 * i], [0.0, 0.0, 0.0]) for i in range(n)]


# --- LLFF ------------------------------------------------------------------------------------

def test_llff_poses_and_focal_scaled_to_image_size(tmp_path):
    poses = _forward_poses(9)
    write_llff(tmp_path, poses, width=24, height=18, scale_to_full=8.0, focal=160.0)
    scene = load_scene(tmp_path)
    assert len(scene) == 9 and scene.cameras.size(0) == (24, 18)
    f = 160.0 / 8.0
    np.testing.assert_allclose(scene.cameras.Ks[0].numpy(),
                               [[f, 0, 12], [0, f, 9], [0, 0, 1]], rtol=1e-6)
    for i, pose in enumerate(poses):
        for X in POINTS:  # NeRF's LLFF loader: columns [right, up, back] are OpenGL axes
            expected = project_opengl(pose @ FLIP_YZ, f, f, 12.0, 9.0, X)
            np.testing.assert_allclose(project_scene(scene, i, X), expected, atol=1e-3)
    assert scene.splits == {"test": (0, 8), "train": (1, 2, 3, 4, 5, 6, 7)}


def test_llff_prefers_full_resolution_folder(tmp_path):
    poses = _forward_poses(2)
    write_llff(tmp_path, poses, width=24, height=18, folder="images_8")
    write_llff(tmp_path, poses, width=48, height=36, scale_to_full=4.0, folder="images_4")
    scene = load_scene(tmp_path / "poses_bounds.npy")
    assert scene.cameras.size(0) == (48, 36)
    # a stray photo in the larger folder: the smaller copy trains, as before, but says so
    save_rgb(tmp_path / "images_4" / "zz_stray.png", 48, 36)
    with pytest.warns(UserWarning, match=r"the images come from images_8/; images_4/ \(3\) has "
                                         r"another count"):
        assert load_scene(tmp_path).cameras.size(0) == (24, 18)


def test_llff_reads_a_masks_folder_beside_the_images(tmp_path):
    write_llff(tmp_path, _forward_poses(2), width=24, height=18)
    assert load_scene(tmp_path).masks is None
    for i in range(2):
        m = np.zeros((18, 24), np.uint8)
        m[3:12, 4 + i:20] = 255
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(m).save(tmp_path / "masks" / f"img{i:03d}.png")
    scene = load_scene(tmp_path)
    assert scene.masks is not None and int(scene.masks[1].sum()) == 9 * 15


def test_llff_bad_inputs(tmp_path):
    poses = _forward_poses(3)
    rows = write_llff(tmp_path, poses)
    np.save(tmp_path / "poses_bounds.npy", rows[:, :15])
    with pytest.raises(VoxsplatError, match=r"poses_bounds.npy: expected an \[N,17\] array"):
        load_scene(tmp_path)
    bad = rows.copy()
    bad[1, 3] = np.nan
    np.save(tmp_path / "poses_bounds.npy", bad)
    with pytest.raises(VoxsplatError, match=r"poses_bounds.npy: pose 1 \(img001.png\) has NaN"):
        load_scene(tmp_path)
    np.save(tmp_path / "poses_bounds.npy", np.concatenate([rows, rows[:1]]))
    with pytest.raises(VoxsplatError, match="poses_bounds.npy: 4 poses but images_8/ has 3"):
        load_scene(tmp_path)
    np.save(tmp_path / "poses_bounds.npy", rows)
    save_rgb(tmp_path / "images_8" / "img002.png", 30, 18)
    with pytest.raises(VoxsplatError, match=r"img002.png: image is 30x18 but .*img000.png is "
                                            r"24x18; LLFF"):
        load_scene(tmp_path)
    (tmp_path / "poses_bounds.npy").write_bytes(b"junk")
    with pytest.raises(VoxsplatError, match="poses_bounds.npy: cannot read"):
        load_scene(tmp_path)


# --- NeuS / DTU ------------------------------------------------------------------------------

def _scale_mat() -> np.ndarray:
    c, s = np.cos(0.4), np.sin(0.4)
    m = np.eye(4)
    m[:3, :3] = 150.0 * np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    m[:3, 3] = [20.0, -10.0, 600.0]
    return m


K_FULL = np.array([[200.0, 0.5, 82.0], [0.0, 190.0, 58.0], [0.0, 0.0, 1.0]])  # for 160x120


def test_decompose_projection_recovers_K_R_center():
    R = look_at([1.0, -3.0, 2.0], [0.0, 0.0, 0.0])[:3, :3].T
    center = np.array([1.0, -3.0, 2.0])
    for sign in (1.0, -7.0):
        P = sign * K_FULL @ np.concatenate([R, (-R @ center)[:, None]], axis=1)
        K, R_out, c_out = decompose_projection(P)
        np.testing.assert_allclose(K, K_FULL, atol=1e-9)
        np.testing.assert_allclose(R_out, R, atol=1e-9)
        np.testing.assert_allclose(c_out, center, atol=1e-9)


def test_image_scale_snaps_to_integer_factor():
    assert image_scale(K_FULL, (40, 30)) == 0.25
    assert image_scale(K_FULL, (160, 120)) == 1.0
    assert image_scale(K_FULL, (107, 80)) == pytest.approx(2 / (164 / 107 + 116 / 80))  # no snap


@pytest.mark.parametrize("at", [(0.3, 0.4), (0.15, 0.2), (0.5, 0.25), (0.45, 0.45)])
def test_image_scale_keeps_an_off_centre_principal_point_at_full_size(at):
    """A crop's principal point (here at 30% and 40% of a 160x120 image) is K's own, not the
    centre of an image 0.7 times the size."""
    K = np.array([[130.0, 0, at[0] * 160], [0, 130.0, at[1] * 120], [0, 0, 1]])
    assert image_scale(K, (160, 120)) == 1.0
    K_half = K.copy()
    K_half[:2, 2] = [0.48 * 320, 0.5 * 240]  # a slightly off-centre one, read at half size
    assert image_scale(K_half, (160, 120)) == 0.5


def test_neus_projection_in_normalized_frame(tmp_path):
    poses = ring_poses(4, radius=3.0)
    scale_mat = _scale_mat()
    mats = write_neus(tmp_path, poses, K_full=K_FULL, scale_mat=scale_mat, width=40, height=30)
    scene = load_scene(tmp_path)
    assert len(scene) == 4 and scene.cameras.size(0) == (40, 30)
    np.testing.assert_allclose(scene.cameras.Ks[0].numpy(), K_FULL * [[0.25], [0.25], [1]],
                               atol=1e-4)
    for i in range(4):
        P = (mats[f"world_mat_{i}"] @ scale_mat)[:3]
        for X in POINTS:
            uvw = P @ np.append(X, 1.0)
            np.testing.assert_allclose(project_scene(scene, i, X), 0.25 * uvw[:2] / uvw[2],
                                       atol=1e-3)
    X_input = scale_mat @ np.array([0.3, -0.2, 0.5, 1.0])
    X_scene = scene.world_from_input.double().numpy() @ X_input
    np.testing.assert_allclose(X_scene[:3], [0.3, -0.2, 0.5], atol=1e-4)
    assert scene.masks[0][:15].all() and not scene.masks[0][15:].any()
    assert scene.names[0] == "000000"


def test_neus_dtu_protocol_for_49_images(tmp_path):
    write_neus(tmp_path, ring_poses(49), K_full=K_FULL, scale_mat=_scale_mat(), width=8,
               height=6, masks=False)
    scene = load_scene(tmp_path)
    assert scene.masks is None
    assert scene.splits == {"train": (25, 22, 28), "test": DTU_TEST_IDS}


def test_neus_bad_inputs(tmp_path):
    mats = write_neus(tmp_path, ring_poses(3), K_full=K_FULL, scale_mat=_scale_mat())
    npz = tmp_path / "cameras_sphere.npz"
    np.savez(npz, **{k: v for k, v in mats.items() if k != "world_mat_2"})
    with pytest.raises(VoxsplatError, match=r"cameras_sphere.npz: no 'world_mat_2' for image 2 "
                                            r"\(000002.png\)"):
        load_scene(tmp_path)
    bad = dict(mats, world_mat_1=mats["world_mat_1"] * np.nan)
    np.savez(npz, **bad)
    with pytest.raises(VoxsplatError, match=r"cameras_sphere.npz: image 1 \(000001.png\) has NaN"):
        load_scene(tmp_path)
    np.savez(npz, **dict(mats, scale_mat_1=np.eye(4)))
    with pytest.raises(VoxsplatError, match="scale_mat_1 differs from scale_mat_0"):
        load_scene(tmp_path)
    np.savez(npz, **mats)
    half = np.zeros((15, 20), np.uint8)
    half[5:10, 5:15] = 255
    Image.fromarray(half).save(tmp_path / "mask" / "001.png")  # a resized copy: resized
    assert int(load_scene(tmp_path).masks[1].sum()) == 10 * 20
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "mask" / "001.png")
    with pytest.raises(VoxsplatError, match=r"001.png: mask is 10x10 but its image is 40x30"):
        load_scene(tmp_path)
    (tmp_path / "mask" / "001.png").unlink()
    with pytest.raises(VoxsplatError, match=r"mask: 2 masks for 3 images"):
        load_scene(tmp_path)


def test_neus_without_images_names_the_folder(tmp_path):
    write_neus(tmp_path, ring_poses(2), K_full=K_FULL, scale_mat=_scale_mat(), masks=False)
    for p in (tmp_path / "image").iterdir():
        p.unlink()
    with pytest.raises(VoxsplatError, match="no images in image/"):
        load_scene(tmp_path)


def test_loaded_cameras_are_rigid(tmp_path):
    write_neus(tmp_path, ring_poses(2), K_full=K_FULL, scale_mat=_scale_mat(), masks=False)
    R = load_scene(tmp_path).cameras.cam_from_world[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5,
                               rtol=0)
    assert torch.allclose(torch.linalg.det(R), torch.ones(2), atol=1e-5)


def test_llff_images_4_find_masks_named_after_the_full_size_photos(tmp_path):
    """LLFF's images_4/ holds PNG copies of images/IMG.JPG; masks/IMG.JPG.png (COLMAP's names
    for the full-size photos) are theirs, with or without images/ at hand. An empty mask warns."""
    write_llff(tmp_path, _forward_poses(2), width=24, height=18, folder="images_4")
    (tmp_path / "masks").mkdir()
    for i in range(2):
        m = np.zeros((72, 96), np.uint8)
        m[12:48, 16 + 4 * i:80] = 255 * i  # the first mask is empty
        Image.fromarray(m).save(tmp_path / "masks" / f"img{i:03d}.JPG.png")
    with pytest.warns(UserWarning, match=r"1 mask\(s\) have no white .*img000.JPG.png"):
        scene = load_scene(tmp_path)
    assert int(scene.masks[1].sum()) == 9 * 15 and not scene.masks[0].any()


def test_llff_images_of_another_aspect_than_hwf_are_refused(tmp_path):
    """A cropped (or EXIF-rotated) copy would get a focal length stretched on one axis."""
    rows = write_llff(tmp_path, _forward_poses(2), width=24, height=18)
    rows[:, 4], rows[:, 9] = 192.0, 144.0  # hwf: portrait photos of 144x192 (EXIF-rotated)
    np.save(tmp_path / "poses_bounds.npy", rows)
    with pytest.raises(VoxsplatError, match=r"img000.png: image is 24x18 but poses_bounds.npy says "
                                            r"the photos were 144x192"):
        load_scene(tmp_path)


def test_neus_images_take_the_camera_of_their_number(tmp_path):
    """A view deleted from image/ (a blurry 000001.png) gave every later image the camera
    before its own (5.5 px off, silently); the number in each name picks its world_mat now.
    Names that are no numbers pair by position only where the counts agree."""
    write_neus(tmp_path, ring_poses(4), K_full=K_FULL, scale_mat=_scale_mat(), masks=False)
    full = load_scene(tmp_path)
    (tmp_path / "image" / "000001.png").unlink()
    scene = load_scene(tmp_path)
    assert scene.names == ("000000", "000002", "000003")
    torch.testing.assert_close(scene.cameras.cam_from_world, full.cameras.cam_from_world[[0, 2, 3]])
    for k, name in enumerate(("a", "b", "c")):
        src = tmp_path / "image" / f"{(0, 2, 3)[k]:06d}.png"
        src.rename(src.with_name(f"{name}.png"))
    with pytest.raises(VoxsplatError, match=r"4 cameras for 3 images, whose names are not"):
        load_scene(tmp_path)
