"""`voxsplat export --format depth` (`recon/export/rgbd.py`): per-view depth maps with their
cameras and photos, as a nerfstudio-style RGB-D dataset in the input's frame.

The workspace's input frame is the synthetic scene scaled by 7, turned and shifted (as SfM's
arbitrary frame is); its Gaussians sit on the scene's surface points. The checks: the maps
match the ground-truth depth (times 7), the maps back-projected through the written cameras
land on the scene's points in the input frame, and the folder reads back as a scene.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.readers.blender import read_blender
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.transforms import normalize
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon import workspace as wsp
from voxsplat.recon.export.rgbd import GENERATOR, file_stem
from voxsplat.scripts.cli import main
from testkit import rotation, similarity, untrained_workspace

SCALE = 7.0


def _similarity() -> torch.Tensor:
    return similarity(SCALE, rotation([0.3, 0.4, 1.0], 120.0), [10.0, -4.0, 2.5])


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """(workspace, synthetic scene, its points in the input frame)."""
    root = tmp_path_factory.mktemp("rgbd_ws")
    synth = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=6, n_test=2,
                                                 n_points=4000, supersample=1))
    scene = synth.scene
    T = _similarity().float()
    scene_in = replace(scene, cameras=scene.cameras.transformed(T),
                       points=scene.points @ T[:3, :3].T + T[:3, 3])
    data = write_blender_dataset(scene, root / "input")  # the photos and masks the record names
    untrained_workspace(root / "ws", normalize(scene_in), data)
    return root / "ws", synth, scene_in.points.double()


def _backprojected(frame: dict, depth: np.ndarray) -> torch.Tensor:
    """World points [N,3] of a map's valid pixels through a transforms.json frame (OpenGL)."""
    v, u = np.nonzero(depth)
    z = torch.from_numpy(depth[v, u]).double()
    x = (torch.from_numpy(u + 0.5) - frame["cx"]) / frame["fl_x"] * z
    y = (torch.from_numpy(v + 0.5) - frame["cy"]) / frame["fl_y"] * z
    cam = torch.stack([x, -y, -z], -1)  # OpenCV -> OpenGL camera axes
    c2w = torch.tensor(frame["transform_matrix"], dtype=torch.float64)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA")])])
def test_depth_maps_match_the_scene_in_the_input_frame(moved, tmp_path, device):
    ws, synth, points_in = moved
    out = tmp_path / "rgbd"
    assert main(["export", str(ws), "--format", "depth", "--out", str(out), "--device", device,
                 "--quiet"]) == 0
    meta = json.loads((out / "transforms.json").read_text())
    scene = synth.scene
    assert meta["generator"] == GENERATOR and len(meta["frames"]) == len(scene)
    extent = float((points_in.max(0).values - points_in.min(0).values).norm())
    errors, covered = [], []
    for i, frame in enumerate(meta["frames"]):
        name = scene.names[i]
        depth = np.load(out / frame["depth_file_path"])
        W, H = scene.cameras.size(i)
        assert depth.shape == (H, W) and depth.dtype == np.float32 and (frame["w"], frame["h"]) == (W, H)
        truth = synth.depths[i].numpy() * SCALE  # ground truth, in the input's units
        both = (depth > 0) & (truth > 0)
        assert not ((depth > 0) & ~scene.masks[i].numpy()).any()  # nothing outside the mask
        covered.append(both.sum() / (truth > 0).sum())
        errors.append(np.median(np.abs(depth[both] - truth[both]) / truth[both]))
        points = _backprojected(frame, depth)
        assert float(torch.cdist(points[::5], points_in).min(1).values.median()) < 0.05 * extent  # spacing ~0.3
        photo = np.asarray(Image.open(out / frame["file_path"]))
        assert np.array_equal(photo, scene.images[i].numpy()), name
        mask = np.asarray(Image.open(out / frame["mask_path"])) > 127
        assert np.array_equal(mask, scene.masks[i].numpy())
    assert min(covered) > 0.8, covered
    # 1.5-4.5% (these round, untrained Gaussians' fronts are nearer than the surface); a depth
    # in the scene frame's units would be off by its scale (more than 2x)
    assert max(errors) < 0.06, errors
    assert meta["train_filenames"] == [meta["frames"][i]["file_path"] for i in scene.splits["train"]]
    assert meta["test_filenames"] == [meta["frames"][i]["file_path"] for i in scene.splits["test"]]


def test_the_export_reads_back_as_the_scene_in_the_input_frame(moved, tmp_path):
    """transforms.json, photos, masks and depth maps load as a scene (our reader, as
    nerfstudio's): the same images, masks and splits, the cameras moved into the input frame."""
    ws, synth, _ = moved
    out = tmp_path / "rgbd"
    assert main(["export", str(ws), "--format", "depth", "--out", str(out), "--quiet"]) == 0
    back = read_blender(out / "transforms.json")
    scene = synth.scene
    assert back.splits == {k: tuple(v) for k, v in scene.splits.items()}
    assert all(torch.equal(a, b) for a, b in zip(back.images, scene.images))
    assert all(torch.equal(a, b) for a, b in zip(back.masks, scene.masks))
    expected = scene.cameras.transformed(_similarity().float())
    assert torch.allclose(back.cameras.cam_from_world, expected.cam_from_world, atol=1e-4 * SCALE)
    assert torch.allclose(back.cameras.Ks, scene.cameras.Ks, atol=1e-4)
    for i, name in enumerate(scene.names):  # the depth maps come back, in the input's units
        assert torch.equal(back.depths[i], torch.from_numpy(np.load(out / "depth" / f"{name}.npy")))


def test_scene_frame_depth_is_the_input_frame_depth_over_its_scale(moved, tmp_path):
    ws, _, _ = moved
    a, b = tmp_path / "input", tmp_path / "scene"
    assert main(["export", str(ws), "--format", "depth", "--out", str(a), "--quiet"]) == 0
    assert main(["export", str(ws), "--format", "depth", "--out", str(b), "--frame", "scene",
                 "--quiet"]) == 0
    rec = wsp.read_json(ws / wsp.SCENE_JSON)
    scale = float(torch.tensor(rec["world_from_input"], dtype=torch.float64)[:3, :3].det()) ** (-1 / 3)
    assert scale > 2  # normalized to cameras within radius 1: a real change of units
    for name in rec["images"]:
        da = np.load(a / "depth" / f"{name['name']}.npy")
        db = np.load(b / "depth" / f"{name['name']}.npy")
        assert np.allclose(da, db * scale, rtol=1e-4, atol=1e-6)


def test_output_folder_is_never_a_workspace_and_an_earlier_export_is_replaced(moved, tmp_path, capsys):
    ws, _, _ = moved
    assert main(["export", str(ws), "--format", "depth", "--out", str(ws), "--quiet"]) == 2
    assert "not an earlier depth export" in capsys.readouterr().err
    assert (ws / wsp.SCENE_JSON).is_file() and (ws / wsp.SPLATS_PLY).is_file()
    out = tmp_path / "rgbd"
    assert main(["export", str(ws), "--format", "depth", "--out", str(out), "--quiet"]) == 0
    (out / "depth" / "stale.npy").write_bytes(b"")
    assert main(["export", str(ws), "--format", "depth", "--out", str(out), "--quiet"]) == 0
    assert not (out / "depth" / "stale.npy").exists()  # replaced whole, once finished
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    assert main(["export", str(ws), "--format", "depth", "--out", str(out), "--sky",
                 "--quiet"]) == 2
    assert "not to depth maps" in capsys.readouterr().err


def test_without_the_input_depth_and_cameras_are_still_written(moved, tmp_path, capsys):
    ws, synth, _ = moved
    copy = tmp_path / "ws"
    copy.mkdir()
    for name in (wsp.SCENE_JSON, wsp.SPLATS_PLY):
        (copy / name).write_bytes((ws / name).read_bytes())
    rec = wsp.read_json(copy / wsp.SCENE_JSON)
    rec["input"]["path"] = str(tmp_path / "gone")
    wsp.write_json(copy / wsp.SCENE_JSON, rec)
    out = tmp_path / "rgbd"
    assert main(["export", str(copy), "--format", "depth", "--out", str(out), "--quiet"]) == 0
    assert "depth maps and cameras only" in capsys.readouterr().err
    meta = json.loads((out / "transforms.json").read_text())
    assert all("file_path" not in f and (out / f["depth_file_path"]).is_file() for f in meta["frames"])
    assert not (out / "images").exists()


def test_view_names_stay_inside_the_folder():
    assert file_stem("train/r_0") == "train/r_0"
    assert file_stem("../../etc/x") == "etc/x"
    assert file_stem("a\\b") == "a/b"
