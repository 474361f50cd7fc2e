"""Masks through structure from motion: photos' alpha or a masks/ folder staged for SfM (EXIF
rotations included), carried through undistortion into ws/sfm/masks/, and a turntable posed
through its masks (`--mask-features`). Poses and inputs: `test_sfm.py`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.recon.sfm import SfmConfig, load_or_run_sfm, run_sfm
from voxsplat.recon.sfm import run as sfm_run
from voxsplat.recon.sfm.evaluate import pose_errors
from voxsplat.recon.sfm.inputs import scan_images
from sfm_scene import FAST, H, W, _leftovers, _rectangle_mask, _texture, render_corner
from testkit import error_message as _message, need_pycolmap

need_pycolmap()


@pytest.fixture(scope="module")
def corner(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("corner") / "images"
    return folder, render_corner(folder, 8)


def _undistorted_mask(mask: np.ndarray, camera, K: np.ndarray, shape) -> np.ndarray:
    """[H,W] bool: the distorted-view mask seen through the pinhole camera K (both with pixel
    centres at half-integers, as COLMAP), by nearest lookup."""
    v, u = np.mgrid[:shape[0], :shape[1]] + 0.5
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    xy = np.floor(camera.img_from_cam(rays.reshape(-1, 3))).astype(int)
    inside = ((xy >= 0) & (xy < [mask.shape[1], mask.shape[0]])).all(1)
    out = np.zeros(len(xy), bool)
    out[inside] = mask[xy[inside, 1], xy[inside, 0]]
    return out.reshape(shape)


def test_photos_with_alpha_keep_their_masks_through_undistortion(corner, tmp_path):
    """Background-removed photos (RGBA): SfM runs on them composited on white, and each alpha
    follows its photo through undistortion into sfm/masks/ (COLMAP's layout), where the
    training reads it as the view's mask."""
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for k, src in enumerate(sorted(corner[0].iterdir())):
        rgb = np.asarray(Image.open(src).convert("RGB"))
        alpha = _rectangle_mask(k).astype(np.uint8) * 255
        Image.fromarray(np.dstack([rgb, alpha])).save(folder / src.name)
    scene = sfm_run.run_sfm(folder, tmp_path / "ws", FAST, progress=False)
    assert scene.masks is not None and len(scene.masks) == 8
    masks_dir = tmp_path / "ws" / "sfm" / "masks"
    assert sorted(p.name for p in masks_dir.iterdir()) == [f"{k:02d}.png.png" for k in range(8)]
    import pycolmap
    before = pycolmap.Reconstruction(str(tmp_path / "ws" / "sfm" / "distorted" / "sparse" / "0"))
    distorted = {im.name: before.cameras[im.camera_id] for im in before.images.values()}
    for i, (name, image, mask) in enumerate(zip(scene.names, scene.images, scene.masks)):
        # each mask sits on its undistorted photo: all white (the composited background)
        # outside it, up to a pixel at the border; the same mask moved by 12 pixels is not
        assert mask.shape == image.shape[:2]
        white = image.min(-1).values >= 245

        def white_outside(m):
            outer = torch.nn.functional.max_pool2d(m[None, None].float(), 5, 1, 2)[0, 0] == 0
            return float(white[outer].float().mean())

        assert white_outside(mask) > 0.99, name
        assert white_outside(torch.roll(mask, 12, 1)) < 0.98, name
        # and it is the input's alpha carried through the lens: each undistorted pixel's ray,
        # projected by the distorted camera COLMAP solved (its radial term varies from run to
        # run), lands inside the rectangle where the mask is set
        expected = _undistorted_mask(_rectangle_mask(int(name)), distorted[f"{name}.png"],
                                     scene.cameras.Ks[i].double().numpy(), mask.shape)
        agree = float((mask.numpy() == expected).mean())
        assert agree > 0.995, (name, agree)  # 1.0 measured; ignoring the lens gives 0.97-0.99
    assert "input_masks" not in _leftovers(tmp_path / "ws" / "sfm")


def test_stage_masks_from_alpha_or_a_masks_folder(tmp_path, monkeypatch):
    from voxsplat.data.images import read_image
    from voxsplat.recon.sfm import inputs
    from voxsplat.recon.sfm.inputs import stage_masks
    folder = tmp_path / "photos"
    folder.mkdir()
    rgb = np.zeros((H, W, 3), np.uint8)
    Image.fromarray(rgb).save(folder / "a.jpg")
    Image.fromarray(np.dstack([rgb, _rectangle_mask(0).astype(np.uint8) * 255])).save(folder / "b.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # upright after a quarter turn: re-encoded for SfM, but it has no alpha
    Image.fromarray(rgb).save(folder / "c.jpg", exif=exif)
    images = scan_images(folder)
    assert [(im.needs_copy, im.has_alpha) for im in images] == [(False, False), (True, True),
                                                                 (True, False)]
    # one photo of three with alpha (a PNG export among photos): its alpha is no mask
    with pytest.warns(UserWarning, match=r"only 1 of 3 images have transparent pixels \(b.png\)"):
        assert not stage_masks(images, folder, tmp_path / "m0")
    Image.fromarray(np.dstack([rgb, _rectangle_mask(2).astype(np.uint8) * 255])).save(folder / "d.png")
    images = scan_images(folder)
    decoded = []
    monkeypatch.setattr(inputs, "read_image", lambda p: decoded.append(p.name) or read_image(p))
    with pytest.warns(UserWarning, match=r"2 of 4 images have no transparent pixel \(a.jpg, c.jpg\)"):
        assert stage_masks(images, folder, tmp_path / "m1")  # half have alpha: a is all object
    assert decoded == ["b.png", "d.png"]  # only the photos with alpha are decoded for masks
    monkeypatch.undo()
    a = np.asarray(Image.open(tmp_path / "m1" / "a.jpg.png")) > 127
    b = np.asarray(Image.open(tmp_path / "m1" / "b.png.png")) > 127
    assert a.all() and np.array_equal(b, _rectangle_mask(0))
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.fromarray(rgb).save(plain / "a.jpg")
    Image.fromarray(rgb + 1).save(plain / "c.jpg")
    assert not stage_masks(scan_images(plain), plain, tmp_path / "m2")
    assert not (tmp_path / "m2").exists()
    (tmp_path / "masks").mkdir()  # next to a plain photo folder: not its masks
    Image.fromarray(_rectangle_mask(1).astype(np.uint8) * 255).save(tmp_path / "masks" / "a.jpg.png")
    assert not stage_masks(scan_images(plain), plain, tmp_path / "m3")
    (tmp_path / "masks").rename(plain / "masks")  # inside it, COLMAP's names: only a's
    assert "no mask for c.jpg" in _message(stage_masks, scan_images(plain), plain, tmp_path / "m4")


def test_masks_of_exif_rotated_photos_turn_with_them(tmp_path):
    """A photo stored landscape with EXIF orientation 6 is used upright. Its mask, as stored
    (COLMAP's convention: masks follow the stored pixels), was refused with a size message
    (or, square, used unturned); it is turned with the photo now. A mask already upright is
    taken as it is."""
    from voxsplat.recon.sfm.inputs import stage_masks
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = np.zeros((H, W), bool)
    stored[: H // 3, : W // 2] = True  # the top-left of the stored pixels
    upright = np.rot90(stored, -1)  # orientation 6: turned a quarter clockwise to show
    for name, size in (("wide", (W, H)), ("square", (H, H))):
        folder = tmp_path / name
        (folder / "masks").mkdir(parents=True)
        mask = stored[:, : size[0]]
        for k in range(2):
            Image.fromarray(np.zeros((H, size[0], 3), np.uint8) + k).save(folder / f"{k}.jpg",
                                                                          exif=exif)
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / "0.jpg.png")
        Image.fromarray(np.rot90(mask, -1).astype(np.uint8) * 255).save(
            folder / "masks" / "1.jpg.png")  # made from the upright photo
        images = scan_images(folder)
        assert [(im.width, im.height) for im in images] == [(H, size[0])] * 2
        assert stage_masks(images, folder, tmp_path / f"{name}_out")
        staged = np.asarray(Image.open(tmp_path / f"{name}_out" / "0.jpg.png")) > 127
        np.testing.assert_array_equal(staged, np.rot90(mask, -1))
        if name == "wide":  # a square mask cannot say which way it was made: as stored
            staged = np.asarray(Image.open(tmp_path / f"{name}_out" / "1.jpg.png")) > 127
            np.testing.assert_array_equal(staged, upright)


def test_a_turntable_poses_through_its_masks(corner, tmp_path, capsys):
    """An object turning in front of a still background (a turntable): half of every photo is
    the same still texture, which SfM alone matches as a camera that never moves. With
    --mask-features, features come only from inside the masks, and the poses are right."""
    from voxsplat.scripts.cli import main
    folder = tmp_path / "turntable"
    (folder / "masks").mkdir(parents=True)
    still = _texture(np.random.default_rng(7))[:H, :W].astype(np.uint8)
    for src in sorted(corner[0].iterdir()):
        rgb = np.asarray(Image.open(src).convert("RGB")).copy()
        rgb[:, :W // 2] = still[:, :W // 2]
        Image.fromarray(rgb).save(folder / src.name)
        mask = np.zeros((H, W), np.uint8)
        mask[:, W // 2:] = 255
        Image.fromarray(mask).save(folder / "masks" / src.name)
    plain = _message(run_sfm, folder, tmp_path / "plain", FAST, progress=False)
    assert "registered only" in plain and "--mask-features" in plain
    assert main(["poses", str(folder), "--out", str(tmp_path / "ws"), "--mask-features",
                 "--quiet"]) == 0
    assert "registered 8 images" in capsys.readouterr().out
    scene = load_or_run_sfm(folder, tmp_path / "ws", SfmConfig(mask_features=True),
                            progress=False)  # the run above, reused
    errors = pose_errors(scene.cameras.cam_from_world.double().numpy(), corner[1])
    assert errors["rot_err_deg"] < 0.5 and errors["center_err_frac"] < 0.01, errors
    assert scene.masks is not None and float(scene.masks[0][:, : W // 2 - 4].float().mean()) == 0
    bare = tmp_path / "bare"
    bare.mkdir()
    for src in sorted(corner[0].iterdir())[:2]:
        (bare / src.name).write_bytes(src.read_bytes())
    assert "--mask-features needs masks" in _message(
        run_sfm, bare, tmp_path / "ws2", SfmConfig(mask_features=True), progress=False)
