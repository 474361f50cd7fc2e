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
    return similarity(SCALE, rotation([0.3, 0.4, 1.0], 120.0), [300.0, -120.0, 75.0])


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
    data = write_blender_dataset(scene_in, root / "input")  # the photos and masks the record names
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


def _plane(z: float, half_x: tuple[float, float], half_y: float, spacing: float) -> dict:
    """Flat, opaque Gaussians (sigma = `spacing`, 1/20 of it thick) on a grid at depth z."""
    xs = torch.arange(half_x[0], half_x[1] + 1e-6, spacing)
    ys = torch.arange(-half_y, half_y + 1e-6, spacing)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    N = len(grid)
    return {"means": torch.cat([grid, torch.full((N, 1), z)], 1),
            "quats": torch.tensor([[1.0, 0, 0, 0]]).repeat(N, 1),
            "scales": torch.log(torch.tensor([spacing, spacing, spacing / 20])).repeat(N, 1),
            "opacities": torch.full((N,), 3.0), "sh0": torch.zeros(N, 1, 3),
            "shN": torch.zeros(N, 0, 3)}


def _two_planes():
    """(splats, a 64x48 camera at the origin looking down +z) of a plane at depth 2 covering
    the left half of the view, in front of one at depth 4 filling it."""
    from voxsplat.data.cameras import Cameras
    front, back = _plane(2.0, (-1.2, 0.0), 1.0, 0.03), _plane(4.0, (-2.4, 2.4), 1.8, 0.06)
    K = torch.tensor([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]])
    return ({k: torch.cat([front[k], back[k]]) for k in front},
            Cameras(torch.eye(4)[None], K[None], torch.tensor([64]), torch.tensor([48])))


def test_pixels_blending_a_near_and_a_far_surface_are_left_out():
    """Along the edge of a plane at depth 2 in front of one at depth 4, the blended depth of
    the pixels that see both lies between them: points in mid-air ('flying pixels') when the
    maps are back-projected. `blend_offset` finds how far each pixel's depth lies from the
    surface most of its blend sits at (exactly, for two surfaces), and the pixels more than 2%
    off are left out (`MeshConfig.max_blend_offset`): those in mid-air, and no others."""
    from voxsplat.recon.export.mesh import MeshConfig, blend_offset, sharpened
    from voxsplat.recon.export.rgbd import depth_map
    splats, camera = _two_planes()
    cfg = MeshConfig()
    splats = sharpened(splats, cfg.opacity_power)
    every = depth_map(splats, camera, None, cfg=replace(cfg, max_blend_offset=0.0), backend="torch")
    kept = depth_map(splats, camera, None, cfg=cfg, backend="torch")
    assert (every > 0).all()
    nearest = torch.minimum((every - 2).abs(), (every - 4).abs())  # off the nearer plane
    torch.testing.assert_close(blend_offset(splats, camera, "torch"), nearest, atol=2e-3, rtol=0)
    flying = nearest > 0.02 * every
    assert flying.sum() >= 48, int(flying.sum())  # a column of them, or more
    assert torch.equal(kept == 0, flying)  # each left out, and only those
    # a pixel that a faint far surface pulls off by 0.15% is kept (its depths spread by 4%)
    assert ((every - 2).abs().gt(0.002) & (every < 2.02) & (kept > 0)).any()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_blend_offset_through_gsplat_matches_the_reference():
    """The depth's three moments rendered as colours by gsplat's kernels, as by the reference."""
    from voxsplat.recon.export.mesh import blend_offset
    splats, camera = _two_planes()
    ref = blend_offset(splats, camera, "torch")
    fast = blend_offset({k: v.cuda() for k, v in splats.items()}, camera.to("cuda"), "gsplat").cpu()
    assert float(ref.max()) > 0.3  # up to half the planes' gap, mid-edge
    torch.testing.assert_close(fast, ref, atol=2e-3, rtol=0)


def test_keep_blended_keeps_every_opaque_pixel(moved, tmp_path, capsys):
    """`--keep-blended` writes the pixels between two surfaces too (as before the filter)."""
    ws, _, _ = moved
    a, b = tmp_path / "filtered", tmp_path / "all"
    assert main(["export", str(ws), "--format", "depth", "--out", str(a), "--quiet"]) == 0
    assert main(["export", str(ws), "--format", "depth", "--out", str(b), "--keep-blended",
                 "--quiet"]) == 0
    names = sorted(p.name for p in (a / "depth").iterdir())
    filtered = [np.load(a / "depth" / n) for n in names]
    every = [np.load(b / "depth" / n) for n in names]
    assert all(np.array_equal(f[f > 0], e[f > 0]) for f, e in zip(filtered, every))
    left_out = sum(int(((f == 0) & (e > 0)).sum()) for f, e in zip(filtered, every))
    assert 0 < left_out < 0.1 * sum(int((e > 0).sum()) for e in every), left_out
    assert main(["export", str(ws), "--format", "ply", "--out", str(tmp_path / "x.ply"),
                 "--keep-blended"]) == 2
    assert "--keep-blended is for --format mesh or points or depth, not ply" in capsys.readouterr().err
