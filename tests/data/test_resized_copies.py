"""A downscaled load of an LLFF or COLMAP scene reads the resized copies of its photos
(`images_4/` beside `images/`) where one fits, with the cameras of the full-size load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_testkit import look_at, save_rgb, write_blender, write_llff
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import load_scene, resized_input


def _llff(root):
    """Full-size 48x36 photos in images/, copies at 24x18 (images_2) and 12x9 (images_4), each
    folder's pixels its own (seeded) noise, so that the images say which folder was read."""
    poses = [look_at([0.2 * i - 0.5, -5.0, 0.1 * i], [0.0, 0.0, 0.0]) for i in range(3)]
    write_llff(root, poses, width=48, height=36, scale_to_full=4.0, folder="images")
    write_llff(root, poses, width=24, height=18, scale_to_full=8.0, folder="images_2")
    write_llff(root, poses, width=12, height=9, scale_to_full=16.0, folder="images_4")
    return root


@pytest.mark.parametrize("factor, folder", [(0.5, "images_2"), (0.4, "images_2"), (0.2, "images_4"),
                                            (0.26, "images_4"), (0.6, None), (1.0, None)])
def test_llff_downscaled_load_reads_the_smallest_copy_that_is_large_enough(tmp_path, factor, folder):
    root = _llff(tmp_path)
    assert resized_input(root, factor) == folder
    full = load_scene(root, downscale=factor)  # every photo at full size, then resized
    scene = load_scene(root, downscale=factor, image_folder=folder)
    assert [scene.cameras.size(i) for i in range(3)] == [full.cameras.size(i) for i in range(3)]
    torch.testing.assert_close(scene.cameras.Ks, full.cameras.Ks, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(scene.cameras.cam_from_world, full.cameras.cam_from_world)
    if folder is not None and scene.cameras.size(0) == Image.open(root / folder / "img000.png").size:
        copy = np.asarray(Image.open(root / folder / "img000.png").convert("RGB"))
        np.testing.assert_array_equal(scene.images[0].numpy(), copy)  # the copy, as it is
    elif folder is not None:  # resized further from the copy, not from the full-size photo
        assert not torch.equal(scene.images[0], full.images[0])
    else:  # no copy fits: the full-size photos (`scene` and `full` are the same load here)
        assert scene.cameras.size(0) == (round(48 * factor), round(36 * factor))
        if factor == 1.0:
            photo = np.asarray(Image.open(root / "images" / "img000.png").convert("RGB"))
            np.testing.assert_array_equal(scene.images[0].numpy(), photo)


def test_copies_that_do_not_match_the_photos_are_passed_over(tmp_path):
    root = _llff(tmp_path)
    for i in range(3):  # another aspect ratio
        save_rgb(root / "images_4" / f"img{i:03d}.png", 12, 12, seed=i)
    (root / "images_2" / "img002.png").unlink()  # a photo short
    assert resized_input(root, 0.25) is None
    assert resized_input(root, 0.5) is None


def _colmap(root):
    model = root / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("1 PINHOLE 40 30 50 52 20 15\n")
    (model / "images.txt").write_text("1 1 0 0 0 0 0 1 1 a.png\n\n"
                                      "2 0.9238795 0 0.3826834 0 -0.5 0 1 1 b.png\n\n")
    (model / "points3D.txt").write_text("1 0.5 0.25 3 255 0 10 0.5 1 0 2 0\n")
    for folder, (w, h) in (("images", (40, 30)), ("images_2", (20, 15)), ("images_4", (10, 8))):
        for i, name in enumerate(("a.png", "b.png")):
            save_rgb(root / folder / name, w, h, seed=i + len(folder))
    return root


def test_colmap_downscaled_load_reads_a_copy_of_the_same_names(tmp_path):
    root = _colmap(tmp_path)
    assert resized_input(root, 0.5) == "images_2"
    assert resized_input(root / "sparse" / "0", 0.25) == "images_4"  # the model folder too
    scene = load_scene(root, downscale=0.5, image_folder="images_2")
    full = load_scene(root, downscale=0.5)
    assert scene.cameras.size(1) == full.cameras.size(1) == (20, 15)
    torch.testing.assert_close(scene.cameras.Ks, full.cameras.Ks)
    np.testing.assert_array_equal(scene.images[1].numpy(),
                                  np.asarray(Image.open(root / "images_2" / "b.png")))
    (root / "images_2" / "b.png").rename(root / "images_2" / "b2.png")  # names must match
    assert resized_input(root, 0.5) is None and resized_input(root, 0.25) == "images_4"
    with pytest.raises(VoxsplatError, match=r"images_2/ no longer holds a resized copy"):
        load_scene(root, downscale=0.5, image_folder="images_2")  # a workspace's reload


def test_reconstruct_records_the_copy_and_its_reloads_read_it(tmp_path, capsys):
    from voxsplat.recon.app import load_workspace_scene, run_eval, run_reconstruct
    root, ws = _llff(tmp_path / "llff"), tmp_path / "ws"
    run_reconstruct(root, ws, "fast", "cpu", steps=3, downscale=0.5, progress=True)
    said = capsys.readouterr().out
    assert "--downscale 0.5: reading the resized copies of the photos in images_2/" in said
    assert json.loads((ws / "scene.json").read_text())["input"]["image_folder"] == "images_2"
    scene, _ = load_workspace_scene(ws)  # eval, render and the exports reload the same views
    copy = np.asarray(Image.open(root / "images_2" / "img001.png").convert("RGB"))
    np.testing.assert_array_equal(scene.images[1].numpy(), copy)
    assert run_eval(ws, device="cpu")["n_test_views"] == 1
    run_reconstruct(root, ws, resume=True, progress=False)  # a resumed run reads it too


def test_reconstruct_without_downscale_reads_a_copy_of_photos_too_large_to_train(
        tmp_path, capsys, monkeypatch):
    from voxsplat.recon import app, sizing
    monkeypatch.setattr(sizing, "MAX_IMAGE_SIDE", {"cuda": 24, "cpu": 24})  # the photos: 48 px
    root, ws = _llff(tmp_path / "llff"), tmp_path / "ws"
    app.run_reconstruct(root, ws, "fast", "cpu", steps=3, progress=True)
    said = capsys.readouterr().out
    assert ("images up to 48 px: training at 24 px (--downscale 0.5; --downscale 1 keeps the "
            "full size), from the resized copies in images_2/") in said
    record = json.loads((ws / "scene.json").read_text())
    assert record["input"]["image_folder"] == "images_2" and record["input"]["downscale"] == 0.5
    monkeypatch.setattr(sizing, "MAX_IMAGE_SIDE", {"cuda": 40, "cpu": 40})  # no copy fits: as before
    app.run_reconstruct(root, ws, "fast", "cpu", steps=3, progress=True)
    said = capsys.readouterr().out  # (each photo resized as it is decoded)
    assert "images up to 48 px: training at 40 px (--downscale 1 keeps the full size)" in said
    record = json.loads((ws / "scene.json").read_text())["input"]
    assert record["image_folder"] is None and record["max_side"] == 40
    scene, _ = app.load_workspace_scene(ws)
    assert scene.cameras.size(0) == (40, 30)


def test_photos_of_mixed_sizes_are_each_capped_on_their_own(tmp_path, capsys, monkeypatch):
    """One large photo among small ones shrank every photo by its factor (a 4000 px photo
    among 480 px ones trained those at 120 px); each is now capped on its own."""
    from voxsplat.data.transforms import cap_size
    from voxsplat.recon import app, sizing
    root = tmp_path / "colmap"
    model = root / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("1 PINHOLE 40 30 50 52 20 15\n2 PINHOLE 20 15 25 26 10 7.5\n")
    (model / "images.txt").write_text("".join(
        f"{i + 1} {q} 0 0 {0.4 * i} {cam} {name}\n\n" for i, (q, cam, name) in enumerate(
            [("1 0 0 0", 1, "a.png"), ("0.9988 0 0.0499 0", 2, "b.png"),
             ("0.9950 0 0.0998 0", 2, "c.png")])))
    (model / "points3D.txt").write_text("1 0.5 0.25 3 255 0 10 0.5 1 0 2 0\n")
    for name, (w, h) in (("a.png", (40, 30)), ("b.png", (20, 15)), ("c.png", (20, 15))):
        save_rgb(root / "images" / name, w, h, seed=len(name) + w)
    scene = load_scene(root)
    capped = cap_size(scene, 24)
    assert [capped.cameras.size(i) for i in range(3)] == [(24, 18), (20, 15), (20, 15)]
    torch.testing.assert_close(capped.cameras.Ks[0], scene.cameras.scaled(0.6).Ks[0])
    torch.testing.assert_close(capped.cameras.Ks[1:], scene.cameras.Ks[1:])
    assert capped.images[0].shape == (18, 24, 3) and torch.equal(capped.images[1], scene.images[1])
    assert cap_size(scene, 40) is scene

    monkeypatch.setattr(sizing, "MAX_IMAGE_SIDE", {"cuda": 24, "cpu": 24})
    ws = tmp_path / "ws"
    app.run_reconstruct(root, ws, "fast", "cpu", steps=3, progress=True)
    assert ("images up to 40 px: training at 24 px: the 1 of 3 longer than 24 px, the others "
            "at their size") in capsys.readouterr().out
    record = json.loads((ws / "scene.json").read_text())
    assert record["input"]["max_side"] == 24 and record["input"]["downscale"] == 1.0
    reloaded, _ = app.load_workspace_scene(ws)
    assert [reloaded.cameras.size(i) for i in range(3)] == [(24, 18), (20, 15), (20, 15)]


def test_images_capped_as_decoded_match_those_resized_after(tmp_path):
    """`decode_max_side`: COLMAP's (and LLFF's) images are resized as each is decoded (a JPEG
    at a power-of-two fraction of its size, Pillow's draft mode), with the cameras and nearly
    the pixels of a full-size load resized after (`cap_size`)."""
    from voxsplat.data.readers.common import decode_max_side
    from voxsplat.data.transforms import cap_size
    model = tmp_path / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("1 PINHOLE 400 300 350 360 200 150\n")
    (model / "images.txt").write_text("1 1 0 0 0 0 0 4 1 a.jpg\n\n2 1 0 0 0 0.3 0 4 1 b.jpg\n\n")
    (model / "points3D.txt").write_text("1 0 0 0 255 0 0 0.5 1 0\n")
    (tmp_path / "images").mkdir()
    y, x = np.mgrid[0:300, 0:400] / 40.0
    for k, name in enumerate(("a.jpg", "b.jpg")):
        pattern = np.stack([np.sin(x + k), np.cos(y), np.sin(x * 0.5 + y)], 2) * 100 + 128
        Image.fromarray(pattern.astype(np.uint8)).save(tmp_path / "images" / name, quality=95)
    after = cap_size(load_scene(tmp_path), 100)
    with decode_max_side(100) as resized:
        capped = load_scene(tmp_path)
    assert resized == [(400, 300), (400, 300)]
    assert [capped.cameras.size(i) for i in range(2)] == [(100, 75), (100, 75)]
    torch.testing.assert_close(capped.cameras.Ks, after.cameras.Ks)
    for a, b in zip(capped.images, after.images):
        assert (a.float() - b.float()).abs().mean() < 2.0  # (in 0-255)
    with decode_max_side(None):  # off: full size, as before
        assert load_scene(tmp_path).cameras.size(0) == (400, 300)


@pytest.mark.parametrize("reader", ["colmap", "llff", "blender"])
def test_downscale_resizes_as_decoded_as_a_full_size_load_resized_after(tmp_path, monkeypatch, reader):
    """`--downscale` loaded every photo at full size and then resized the scene: a hundred
    48 MP photos at once. COLMAP's, LLFF's and transforms.json's images (photos posed by SfM
    too) are now resized as each is decoded (`decode_downscale`), with the images, masks and
    cameras the full-size load resized after gives (PNGs: no JPEG draft decoding, so the
    pixels are equal). Images with alpha are composited before they are resized: the random
    colours under their transparent pixels bled into the edges."""
    from voxsplat.data.readers import common
    from voxsplat.data.transforms import downscale
    from voxsplat.recon.app import load_input
    if reader == "colmap":
        root = tmp_path / "scene"
        (root / "images").mkdir(parents=True)
        _colmap(root)
        names, size = ("a.png", "b.png"), (40, 30)
    else:
        poses = [look_at([0.2 * i - 0.5, -5.0, 0.1 * i], [0.0, 0.0, 0.0]) for i in range(3)]
        root = tmp_path / "scene"
        if reader == "llff":
            write_llff(root, poses, width=48, height=36, scale_to_full=1.0, folder="images")
        else:
            root = write_blender(root, poses, width=48, height=36)
        names, size = tuple(f"img{i:03d}.png" if reader == "llff" else f"r_{i}.png"
                            for i in range(3)), (48, 36)
    images = root / "images" if reader != "blender" else root.parent / "images"
    if reader != "blender":
        (images / "masks").mkdir()
    y, x = np.mgrid[0:size[1], 0:size[0]]
    for k, name in enumerate(names):
        rgb = save_rgb(images / name, *size, seed=k)
        disc = (x - size[0] / 2 - k) ** 2 + (y - size[1] / 2) ** 2 < (size[1] / 3) ** 2
        if reader == "blender":  # the object's mask as its alpha, random colours around it
            Image.fromarray(np.dstack([rgb, disc.astype(np.uint8) * 255])).save(images / name)
        else:
            Image.fromarray(disc.astype(np.uint8) * 255).save(images / "masks" / name)
    asked = []
    read_image = common.read_image
    monkeypatch.setattr(common, "read_image",
                        lambda path, **kw: asked.append(kw.get("at_least")) or read_image(path, **kw))
    after = downscale(load_input(root, tmp_path / "ws", 1.0, progress=False), 0.37)
    assert asked == [None] * len(names)  # (full size)
    asked.clear()
    decoded = load_input(root, tmp_path / "ws", 0.37, progress=False)
    assert asked == [(round(size[0] * 0.37), round(size[1] * 0.37))] * len(names)
    for i in range(len(names)):
        assert decoded.cameras.size(i) == after.cameras.size(i)
        assert torch.equal(decoded.images[i], after.images[i])
        assert torch.equal(decoded.masks[i], after.masks[i]) and after.masks[i].any()
    torch.testing.assert_close(decoded.cameras.Ks, after.cameras.Ks, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(decoded.cameras.cam_from_world, after.cameras.cam_from_world)
