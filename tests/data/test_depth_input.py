"""Depth maps that come with the input: nerfstudio's per-frame `depth_file_path` (16-bit PNG in
millimetres, or .npy) with `depth_unit_scale_factor`, carried through the scene transforms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from data_testkit import ring_poses, write_blender

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.images import read_depth, resize_depth
from voxsplat.data.load import load_scene
from voxsplat.data.scene import Scene
from voxsplat.data.transforms import downscale, normalize


def _with_depths(tmp_path, n=3, scale=None, size=(16, 12), kind="png"):
    """A transforms.json scene (16x12 photos) whose frames carry depth maps of `size`: frame i
    holds depth (i + 1) * 1000 units at every pixel but the first row (0: unknown)."""
    path = write_blender(tmp_path, ring_poses(n), mode="RGB")
    meta = json.loads(path.read_text())
    (tmp_path / "depth").mkdir()
    for i, frame in enumerate(meta["frames"]):
        w, h = size
        raw = np.full((h, w), (i + 1) * 1000, np.uint16)
        raw[0] = 0
        if kind == "png":
            Image.fromarray(raw).save(tmp_path / "depth" / f"{i}.png")
        else:
            np.save(tmp_path / "depth" / f"{i}.npy", raw.astype(np.float32))
        frame["depth_file_path"] = f"depth/{i}.{kind}"
    if scale is not None:
        meta["depth_unit_scale_factor"] = scale
    path.write_text(json.dumps(meta))
    return path


def test_png_depth_in_millimetres_by_default_and_resized_to_the_photos(tmp_path):
    """nerfstudio's default unit scale (1e-3) turns 16-bit millimetres into metres; coarser
    maps (as depth cameras give) are resized to their photos, nearest sample."""
    scene = load_scene(_with_depths(tmp_path, size=(8, 6)))
    assert scene.depths is not None and len(scene.depths) == 3
    for i, d in enumerate(scene.depths):
        assert d.shape == (12, 16) and d.dtype == torch.float32
        assert torch.all(d[:2] == 0) and torch.allclose(d[2:], torch.tensor((i + 1) * 1.0))


@pytest.mark.parametrize("size", [(12, 16), (12, 12)])
def test_a_depth_map_of_another_aspect_is_refused(tmp_path, size):
    """A rotated (phone sensor) or cropped map stretched onto its photo would put every
    point in the wrong place."""
    with pytest.raises(VoxsplatError, match=rf"depth map is {size[0]}x{size[1]} but its image "
                                            r"is 16x12"):
        load_scene(_with_depths(tmp_path, size=size))


def test_npy_depth_with_the_files_unit_scale(tmp_path):
    scene = load_scene(_with_depths(tmp_path, scale=0.5, kind="npy"))
    assert torch.allclose(scene.depths[1][1:], torch.tensor(1000.0))


def test_depth_follows_downscale_normalize_and_subsets(tmp_path):
    scene = load_scene(_with_depths(tmp_path, scale=1e-3))
    half = downscale(scene, 0.5)
    assert half.depths[0].shape == (6, 8) and float(half.depths[0].max()) == pytest.approx(1.0)
    moved = normalize(scene)
    s = float(moved.world_from_input[:3, :3].det()) ** (1 / 3)
    assert s != pytest.approx(1.0)
    assert torch.allclose(moved.depths[2], scene.depths[2] * s)  # camera z scales with the frame
    sub = scene.subset([2, 0])
    assert torch.equal(sub.depths[0], scene.depths[2])
    with pytest.raises(ValueError, match="one depth map per image"):
        Scene(images=scene.images[:1], names=scene.names[:1], cameras=scene.cameras[[0]],
              depths=(torch.zeros(3, 3),))


def test_frames_without_depth_get_unknown_depth(tmp_path):
    path = _with_depths(tmp_path)
    meta = json.loads(path.read_text())
    del meta["frames"][1]["depth_file_path"]
    path.write_text(json.dumps(meta))
    scene = load_scene(path)
    assert float(scene.depths[1].abs().max()) == 0 and float(scene.depths[2].max()) > 0


@pytest.mark.parametrize("change, message", [
    (lambda m: m["frames"][1].update(depth_file_path="depth/none.png"),
     r"frame 1 .*depth map 'depth/none.png' not found"),
    (lambda m: m.update(depth_unit_scale_factor=-1), "'depth_unit_scale_factor' must be a positive"),
])
def test_bad_depth_entries_name_the_file_and_the_fix(tmp_path, change, message):
    path = _with_depths(tmp_path)
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(VoxsplatError, match=message):
        load_scene(path)


def test_read_depth_refuses_colour_images_and_drops_invalid_values(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(VoxsplatError, match="RGB image is not a depth map"):
        read_depth(tmp_path / "rgb.png")
    np.save(tmp_path / "d.npy", np.array([[1.0, np.nan], [-2.0, np.inf]], np.float32))
    assert torch.equal(read_depth(tmp_path / "d.npy", 2.0), torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    np.save(tmp_path / "rgb.npy", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(VoxsplatError, match=r"expected one value per pixel"):
        read_depth(tmp_path / "rgb.npy")
    d = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert torch.equal(resize_depth(d, (4, 4))[::2, ::2], d)  # nearest: no blended depths
