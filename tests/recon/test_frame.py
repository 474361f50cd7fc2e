"""Exports in the input's frame (`recon/export/frame.py`, `voxsplat export --frame`).

The check of a moved scene is its render: Gaussians carried by a similarity and cameras carried
by the same one must give the same image (colour seen along every direction, SH degree 3,
included), through the pure-PyTorch rasterizer.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import trimesh
from plyfile import PlyData

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.cameras import Cameras
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.transforms import normalize
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon import workspace as wsp
from voxsplat.recon.export import read_ply
from voxsplat.recon.export.frame import sh_transform, similarity_parts, transform_splats
from voxsplat.recon.gaussians import render_splats
from voxsplat.render.camera_paths import look_at
from voxsplat.scripts.cli import main
from testkit import rotation as _rotation, similarity as _similarity, untrained_workspace


def _gaussians(n=400, seed=0) -> dict:
    """A cloud of coloured, view-dependent (SH degree 3), anisotropic Gaussians near the origin."""
    g = torch.Generator().manual_seed(seed)
    return {"means": torch.randn(n, 3, generator=g) * 0.5,
            "scales": torch.randn(n, 3, generator=g) * 0.5 - 3.0,
            "quats": torch.randn(n, 4, generator=g),
            "opacities": torch.randn(n, generator=g) + 1.0,
            "sh0": torch.randn(n, 1, 3, generator=g),
            "shN": torch.randn(n, 15, 3, generator=g) * 0.4}


def _cameras(count=3) -> Cameras:
    poses = [look_at([3.0 * math.cos(a), 3.0 * math.sin(a), 1.0], [0, 0, 0], [0, 0, 1])
             for a in np.linspace(0.3, 2.0, count)]
    K = torch.tensor([[70.0, 0, 40], [0, 70.0, 30], [0, 0, 1]])
    return Cameras(torch.stack(poses), K.repeat(count, 1, 1), torch.full((count,), 80),
                   torch.full((count,), 60))


@pytest.mark.parametrize("reflect", [False, True])
def test_moved_gaussians_render_as_before_from_moved_cameras(reflect):
    """A similarity with a 2.5x scale, a turn and (optionally) a mirror: every view renders the
    same image, view-dependent colour included (the SH blocks turn with the directions)."""
    M = _rotation([1.0, -2.0, 0.5], 73.0)
    if reflect:
        M = M @ torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    T = _similarity(2.5, M, [0.3, -1.2, 4.0])
    splats, cams = _gaussians(), _cameras()
    before = render_splats(splats, cams, 3, torch.zeros(3), backend="torch").colors
    moved = transform_splats(splats, T)
    after = render_splats(moved, cams.transformed(T.float()), 3, torch.zeros(3), backend="torch").colors
    assert float(before.std()) > 0.1  # the views show something
    assert float((after - before).abs().max()) < 2e-3, float((after - before).abs().max())
    # without turning the SH, the colours differ (the check above can fail)
    unturned = dict(moved, shN=splats["shN"])
    wrong = render_splats(unturned, cams.transformed(T.float()), 3, torch.zeros(3), backend="torch").colors
    assert float((wrong - before).abs().max()) > 0.05
    back = transform_splats(moved, torch.linalg.inv(T))
    for key in ("means", "scales", "shN"):
        assert torch.allclose(back[key], splats[key], atol=1e-4), key


def test_sh_blocks_are_orthogonal_and_degree_one_turns_like_a_vector():
    M = _rotation([0.2, 1.0, -0.7], 40.0)
    B = sh_transform(M, 3)
    assert torch.allclose(B @ B.T, torch.eye(16, dtype=torch.float64), atol=1e-9)
    # gsplat's degree-1 basis is (-y, z, -x): its coefficients turn as (-c_y, c_z, -c_x) do
    P = torch.tensor([[0, -1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]], dtype=torch.float64)
    assert torch.allclose(B[1:4, 1:4], P @ M @ P.T, atol=1e-9)
    assert torch.allclose(sh_transform(torch.eye(3), 2), torch.eye(9, dtype=torch.float64), atol=1e-12)
    with pytest.raises(VoxsplatError, match="shears or stretches .*; export with --frame scene"):
        similarity_parts(torch.diag(torch.tensor([1.0, 2.0, 1.0, 1.0], dtype=torch.float64)))


@pytest.fixture(scope="module")
def moved_workspace(tmp_path_factory):
    """A workspace whose input frame is the synthetic scene scaled by 7, turned and shifted (as
    SfM's arbitrary frame is), normalized as photo folders are; its Gaussians sit on the
    scene's points. Returns (workspace, the points in the input's frame)."""
    root = tmp_path_factory.mktemp("frame_ws")
    synth = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=8, n_test=2,
                                                 n_points=3000, supersample=1))
    scene = synth.scene
    T = _similarity(7.0, _rotation([0.3, 0.4, 1.0], 120.0), [300.0, -120.0, 75.0]).float()
    scene_in = replace(scene, cameras=scene.cameras.transformed(T),
                       points=scene.points @ T[:3, :3].T + T[:3, 3])
    normalized = normalize(scene_in)
    assert not torch.allclose(normalized.world_from_input, torch.eye(4, dtype=torch.float64), atol=1e-3)
    data = write_blender_dataset(scene_in, root / "input")  # (the photos of the record)
    untrained_workspace(root / "ws", normalized, data)
    return root / "ws", scene_in.points.double()


def test_ply_export_lands_in_the_input_frame(moved_workspace, tmp_path):
    ws, points_in = moved_workspace
    out, same = tmp_path / "in.ply", tmp_path / "scene.ply"
    assert main(["export", str(ws), "--format", "ply", "--out", str(out), "--quiet"]) == 0
    assert main(["export", str(ws), "--format", "ply", "--frame", "scene", "--out", str(same),
                 "--quiet"]) == 0
    exported, stored = read_ply(out), read_ply(ws / wsp.SPLATS_PLY)
    assert torch.allclose(exported["means"].double(), points_in, atol=1e-3 * 7)
    assert torch.allclose(read_ply(same)["means"], stored["means"])  # --frame scene: as stored
    scale = float(exported["scales"].exp().mean() / stored["scales"].exp().mean())
    radius = float(torch.linalg.inv(torch.tensor(wsp.read_json(ws / wsp.SCENE_JSON)["world_from_input"]))[:3, :3].det()) ** (1 / 3)
    assert scale == pytest.approx(radius, rel=1e-4)  # sizes grow with the frame's scale


def _xyz(path) -> torch.Tensor:
    v = PlyData.read(str(path))["vertex"]
    return torch.from_numpy(np.stack([v["x"], v["y"], v["z"]], -1)).double()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
def test_points_and_mesh_exports_in_the_input_frame(moved_workspace, tmp_path, device):
    """Dense points and the TSDF mesh lie on the scene's points in the input frame (a wrong
    frame would put them ~10 units away), the points are the scene-frame export carried over,
    and `--voxel-size` counts in the input's units (7x the synthetic scene's)."""
    ws, points_in = moved_workspace
    extent = float((points_in.max(0).values - points_in.min(0).values).norm())  # ~18
    pts, pts_scene = tmp_path / "points.ply", tmp_path / "points_scene.ply"
    for out, frame in ((pts, "input"), (pts_scene, "scene")):
        assert main(["export", str(ws), "--format", "points", "--out", str(out), "--device",
                     device, "--frame", frame, "--quiet"]) == 0
    xyz = _xyz(pts)
    assert float(torch.cdist(xyz, points_in).min(1).values.median()) < 0.05 * extent  # 0.36
    world_from_input = torch.tensor(wsp.read_json(ws / wsp.SCENE_JSON)["world_from_input"],
                                    dtype=torch.float64)
    carried = _xyz(pts_scene) @ torch.linalg.inv(world_from_input)[:3, :3].T \
        + torch.linalg.inv(world_from_input)[:3, 3]
    assert torch.allclose(xyz, carried, atol=1e-4 * extent)
    normals = PlyData.read(str(pts))["vertex"]
    assert np.allclose(np.linalg.norm(np.stack([normals["nx"], normals["ny"], normals["nz"]], -1),
                                      axis=-1), 1.0, atol=1e-4)
    coarse = tmp_path / "coarse.ply"
    assert main(["export", str(ws), "--format", "points", "--out", str(coarse), "--device", device,
                 "--voxel-size", str(0.2 * 7), "--quiet"]) == 0
    assert len(_xyz(coarse)) < len(xyz) / 4
    mesh_path = tmp_path / "mesh.ply"
    assert main(["export", str(ws), "--format", "mesh", "--out", str(mesh_path), "--device", device,
                 "--quiet"]) == 0
    verts = torch.from_numpy(np.asarray(trimesh.load(mesh_path, process=False).vertices)).double()
    assert float(torch.cdist(verts[::7], points_in).min(1).values.median()) < 0.05 * extent  # 0.36


def _opengl_c2w(cam_from_world: torch.Tensor) -> np.ndarray:
    """[C,4,4] OpenGL camera-to-world (what transforms.json and nerfstudio store)."""
    return (torch.linalg.inv(cam_from_world.double()) @ torch.diag(
        torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))).numpy()


def _frames(folder) -> np.ndarray:
    from PIL import Image
    return np.stack([np.asarray(Image.open(p), np.float64) for p in sorted(folder.glob("*.png"))])


def test_render_follows_camera_path_files_in_the_input_frame(moved_workspace, tmp_path, capsys):
    """`render --path FILE.json`: the workspace's test cameras written in the input's frame, as
    transforms.json frames and as a nerfstudio viewer path (its normalized frame, with its
    dataparser_transforms.json), render the same images as those cameras in the workspace."""
    import json
    ws, _ = moved_workspace
    rec = wsp.read_json(ws / wsp.SCENE_JSON)
    cams = wsp.cameras_from_record(rec)[list(rec["splits"]["test"])]
    input_from_world = torch.linalg.inv(torch.tensor(rec["world_from_input"], dtype=torch.float64))
    cams_in = cams.transformed(input_from_world.float())
    W, H = cams.size(0)
    fx = float(cams.Ks[0, 0, 0])
    expected = render_splats(read_ply(ws / wsp.SPLATS_PLY), cams, 0, torch.ones(3), backend="torch")
    expected = (expected.colors.clamp(0, 1) * 255).round().double().numpy()
    c2w = _opengl_c2w(cams_in.cam_from_world)
    transforms = tmp_path / "path.json"
    transforms.write_text(json.dumps({"fl_x": fx, "w": W, "h": H, "frames": [
        {"transform_matrix": m.tolist()} for m in c2w]}))
    assert main(["render", str(ws), "--path", str(transforms), "--out", str(tmp_path / "a"),
                 "--device", "cpu", "--quiet"]) == 0
    got = _frames(tmp_path / "a")
    assert got.shape == expected.shape and np.ptp(expected) > 100
    assert np.abs(got - expected).mean() < 0.5, np.abs(got - expected).mean()
    # nerfstudio: ns = scale * (transform @ data); fov vertical in degrees; 2x the size
    A = np.eye(4)
    A[:3, :3] = _rotation([1.0, 0.0, 0.3], 35.0).numpy()
    A[:3, 3] = [0.5, -2.0, 1.0]
    scale = 0.13
    ns = A @ c2w
    ns[:, :3, 3] *= scale
    fov = math.degrees(2 * math.atan(0.5 * H / float(cams.Ks[0, 1, 1])))
    path = tmp_path / "camera_path.json"
    path.write_text(json.dumps({"camera_type": "perspective", "render_height": 2 * H,
                                "render_width": 2 * W, "fps": 12, "camera_path": [
        {"camera_to_world": m.reshape(-1).tolist(), "fov": fov, "aspect": W / H} for m in ns]}))
    dp = tmp_path / "dataparser_transforms.json"
    dp.write_text(json.dumps({"transform": A[:3].tolist(), "scale": scale}))
    assert main(["render", str(ws), "--path", str(path), "--dataparser-transforms", str(dp),
                 "--out", str(tmp_path / "b"), "--device", "cpu", "--quiet"]) == 0
    big = _frames(tmp_path / "b")
    assert big.shape == (len(expected), 2 * H, 2 * W, 3)
    halved = big.reshape(len(big), H, 2, W, 2, 3).mean((2, 4))
    assert np.abs(halved - expected).mean() < 4.0, np.abs(halved - expected).mean()
    capsys.readouterr()
    assert main(["render", str(ws), "--path", str(path), "--out", str(tmp_path / "c"),
                 "--device", "cpu", "--quiet"]) == 0  # without its transforms: a note says so
    assert "--dataparser-transforms" in capsys.readouterr().err
    assert not np.allclose(_frames(tmp_path / "c").reshape(big.shape), big)
    # --frames resamples a smooth path that passes through the file's cameras
    assert main(["render", str(ws), "--path", str(transforms), "--frames", "5", "--out",
                 str(tmp_path / "d"), "--device", "cpu", "--quiet"]) == 0
    smooth = _frames(tmp_path / "d")
    assert len(smooth) == 5 and np.abs(smooth[0] - expected[0]).mean() < 0.5
    assert np.abs(smooth[-1] - expected[-1]).mean() < 0.5


@pytest.mark.parametrize("content, words", [
    ("{", "not valid JSON"),
    ('{"cameras": []}', "'frames'"),
    ('{"frames": [{"transform_matrix": [[1, 0], [0, 1]]}]}', "4x4"),
    ('{"camera_path": [{"camera_to_world": [1, 2, 3], "fov": 50}]}', "16 numbers"),
    ('{"camera_type": "fisheye", "camera_path": [{}]}', "fisheye"),
    ('{"frames": {"transform_matrix": []}}', "not a list"),
    ('{"camera_path": [3], "render_height": 40}', "camera_path[0] is not an object"),
    ('{"fps": "abc", "frames": [{"transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}',
     "'fps'"),
    ('{"frames": [{"w": 80, "h": 60, "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]},'
     ' {"w": 40, "h": 60, "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}',
     "different sizes"),
    ('{"w": 80, "frames": [{"transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}',
     "only one of 'w' and 'h'"),
])
def test_bad_camera_path_files_name_the_file_and_the_fix(moved_workspace, tmp_path, capsys,
                                                         content, words):
    ws, _ = moved_workspace
    path = tmp_path / "bad.json"
    path.write_text(content)
    capsys.readouterr()
    assert main(["render", str(ws), "--path", str(path), "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voxsplat: error: ") and "bad.json" in err and words in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "o").exists()
    assert main(["render", str(ws), "--path", "helix", "--out", str(tmp_path / "o")]) == 2
    assert "auto, orbit, arc, spiral, interp or a camera path .json" in capsys.readouterr().err
    for frames, words in (("1", "--frames must be at least 2, got 1"),  # (1e8 ran out of memory)
                          ("100000000", "--frames 100000000: at most 108000")):
        assert main(["render", str(ws), "--frames", frames, "--out", str(tmp_path / "o")]) == 2
        assert words in capsys.readouterr().err


def test_a_saved_path_renders_the_same_frames_again(moved_workspace, tmp_path, capsys):
    """`render --path orbit --save-path FILE.json` writes the orbit's cameras in the input's
    frame (around the input frame's points); `--path FILE.json` renders the same frames."""
    import json
    ws, _ = moved_workspace
    saved = tmp_path / "orbit.json"
    assert main(["render", str(ws), "--path", "orbit", "--frames", "6", "--scale", "1.5",
                 "--out", str(tmp_path / "a"), "--save-path", str(saved), "--device", "cpu",
                 "--quiet"]) == 0
    meta = json.loads(saved.read_text())
    assert (meta["w"], meta["h"], len(meta["frames"])) == (96, 72, 6)
    centers = np.array([f["transform_matrix"] for f in meta["frames"]])[:, :3, 3]
    from voxsplat.recon.render_path import path_cameras
    rec = wsp.read_json(ws / wsp.SCENE_JSON)
    orbit = torch.linalg.inv(path_cameras(rec, "orbit", 6)[0].double())[:, :3, 3]  # scene frame
    input_from_world = torch.linalg.inv(torch.tensor(rec["world_from_input"], dtype=torch.float64))
    expected = (orbit @ input_from_world[:3, :3].T + input_from_world[:3, 3]).numpy()
    assert np.allclose(centers, expected, atol=1e-3) and not np.allclose(centers, orbit.numpy(), atol=1)
    assert main(["render", str(ws), "--path", str(saved), "--out", str(tmp_path / "b"),
                 "--device", "cpu", "--quiet"]) == 0
    first, again = _frames(tmp_path / "a"), _frames(tmp_path / "b")
    assert first.shape == again.shape and np.ptp(first) > 100
    diff = np.abs(first - again)  # the frame change's float32 rounding may tip an edge pixel
    assert (diff > 2).mean() < 1e-3 and diff.max() <= 16, ((diff > 2).sum(), diff.max())
    # a path it wrote is replaced; any other .json (a scene's transforms.json) is not, and
    # the refusal comes before any rendering
    assert main(["render", str(ws), "--path", "arc", "--frames", "3", "--out",
                 str(tmp_path / "c"), "--save-path", str(saved), "--device", "cpu", "--quiet"]) == 0
    assert len(json.loads(saved.read_text())["frames"]) == 3
    cameras = tmp_path / "transforms.json"
    cameras.write_text(json.dumps({"frames": []}))
    capsys.readouterr()
    assert main(["render", str(ws), "--path", "arc", "--frames", "3", "--out",
                 str(tmp_path / "d"), "--save-path", str(cameras), "--device", "cpu",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(cameras) in err and "give a new name, or remove it first" in err, err
    assert json.loads(cameras.read_text()) == {"frames": []} and not (tmp_path / "d").exists()


def test_path_files_of_another_aspect_keep_square_pixels(tmp_path):
    """A path file without intrinsics at another aspect than the training views took their
    camera scaled per axis (fx 200, fy 267: a stretched video); the focal length now scales
    alike on both axes, keeping the width's field of view (transforms.json's convention) or
    the height's (nerfstudio's `fov`)."""
    import json
    from voxsplat.data.readers.camera_path import read_camera_path
    K = torch.tensor([[100.0, 0, 80], [0, 100, 60], [0, 0, 1]], dtype=torch.float64)
    pose = np.eye(4).tolist()
    frames = tmp_path / "frames.json"
    frames.write_text(json.dumps({"w": 320, "h": 120, "frames": [{"transform_matrix": pose}]}))
    ns = tmp_path / "ns.json"
    ns.write_text(json.dumps({"render_width": 160, "render_height": 160,
                              "camera_path": [{"camera_to_world": sum(pose, [])}]}))
    wide = read_camera_path(frames, K, (160, 120)).Ks[0]
    tall = read_camera_path(ns, K, (160, 120)).Ks[0]
    assert wide.tolist() == [[200.0, 0, 160], [0, 200, 60], [0, 0, 1]]
    np.testing.assert_allclose(tall.numpy(), [[400 / 3, 0, 80], [0, 400 / 3, 80], [0, 0, 1]])


def test_output_folders_never_replace_a_workspace_or_data(moved_workspace, tmp_path, capsys):
    """PNG outputs (`render --out DIR`, `eval --renders DIR`) replace only folders of PNGs:
    pointed at the workspace itself they stop before writing, and it stays whole."""
    ws, _ = moved_workspace
    before = sorted(p.name for p in ws.iterdir())
    capsys.readouterr()
    assert main(["render", str(ws), "--out", str(ws), "--frames", "2", "--device", "cpu",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(ws) in err and "new or empty folder" in err, err
    assert main(["eval", str(ws), "--renders", str(ws), "--device", "cpu"]) == 2
    assert "new or empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in ws.iterdir()) == before
    photos = tmp_path / "photos"  # PNGs that we did not write: the user's photos or masks
    photos.mkdir()
    (photos / "IMG_0001.png").write_bytes(b"")
    for command in (["render", str(ws), "--out", str(photos), "--frames", "2"],
                    ["eval", str(ws), "--renders", str(photos)]):
        assert main(command + ["--device", "cpu"]) == 2
        assert "voxsplat did not write" in capsys.readouterr().err
    assert [p.name for p in photos.iterdir()] == ["IMG_0001.png"]
    earlier = tmp_path / "frames"  # an earlier PNG output is replaced, with usual permissions
    for frames in ("3", "2"):
        assert main(["render", str(ws), "--out", str(earlier), "--frames", frames, "--device",
                     "cpu", "--quiet"]) == 0
    assert sorted(p.name for p in earlier.iterdir()) == [".voxsplat-output", "frame_00000.png",
                                                         "frame_00001.png"]
    import os
    umask = os.umask(0)
    os.umask(umask)
    assert earlier.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700


def test_path_options_are_checked_in_cli_terms(moved_workspace, tmp_path, capsys):
    import json
    ws, _ = moved_workspace
    eye = np.eye(4).tolist()
    path = tmp_path / "three.json"
    path.write_text(json.dumps({"frames": [{"transform_matrix": eye, "w": 40, "h": 30,
                                            "fl_x": 35.0}] * 3}))
    capsys.readouterr()
    assert main(["render", str(ws), "--path", str(path), "--frames", "2", "--out",
                 str(tmp_path / "o.mp4"), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--frames 2" in err and "three.json" in err and "at least 3" in err, err
    assert main(["render", str(ws), "--fps", "0", "--out", str(tmp_path / "o.mp4"), "--quiet"]) == 2
    assert "--fps 0" in capsys.readouterr().err
    # per-frame w/h set the frames' size, fl_x the focal length at that size
    assert main(["render", str(ws), "--path", str(path), "--out", str(tmp_path / "f"),
                 "--device", "cpu", "--quiet"]) == 0
    assert _frames(tmp_path / "f").shape == (3, 30, 40, 3)


def test_auto_path_orbits_cameras_around_the_scene_and_stays_where_they_looked(moved_workspace,
                                                                               capsys):
    """`render`'s default path: an orbit where the training cameras surround the scene (the
    synthetic rig), a spiral where they all face one way (LLFF-like), an arc over the side
    they saw where they surround part of it (an orbit would show what no camera saw); the
    choice is printed."""
    from voxsplat.recon.render_path import path_cameras
    ws, _ = moved_workspace
    rec = wsp.read_json(ws / wsp.SCENE_JSON)
    capsys.readouterr()
    assert torch.equal(path_cameras(rec, "auto", 6)[0], path_cameras(rec, "orbit", 6)[0])
    assert "--path auto: orbit (the training cameras surround" in capsys.readouterr().err
    train = [im["name"] for im in rec["images"] if im["split"] == "train"]
    eyes = [(0.4 * math.cos(a), 0.3 * math.sin(a), -3.0)
            for a in np.linspace(0, 2 * math.pi, len(train), endpoint=False)]
    facing = wsp.with_refined_poses(rec, train, torch.stack(
        [look_at(eye, (0.0, 0.0, 0.0), (0.0, -1.0, 0.0)) for eye in eyes]))
    spiral = path_cameras(facing, "auto", 6)[0]
    assert torch.equal(spiral, path_cameras(facing, "spiral", 6)[0])
    err = capsys.readouterr().err
    assert "--path auto: spiral (the training cameras face one way" in err
    assert not torch.allclose(spiral, path_cameras(facing, "orbit", 6)[0], atol=0.1)
    # an orbit asked for by name still goes round, with a note (half its frames look away)
    assert "--path orbit: the training cameras all face one way" in capsys.readouterr().err
    path_cameras(rec, "orbit", 6)
    assert capsys.readouterr().err == ""
    assert float(spiral[:, 2, 2].min()) > 0.9  # every frame still looks along +z, at the scene
    # cameras over 130 degrees around the scene (an object shot from one side): an arc
    eyes = [(3 * math.cos(a), 3 * math.sin(a), 1.0)
            for a in np.radians(np.linspace(-65, 65, len(train)))]
    side = wsp.with_refined_poses(rec, train, torch.stack(
        [look_at(eye, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)) for eye in eyes]))
    arc = path_cameras(side, "auto", 6)[0]
    assert torch.equal(arc, path_cameras(side, "arc", 6)[0])
    assert "--path auto: arc (the training cameras cover 130 degrees" in capsys.readouterr().err
    centers = torch.linalg.inv(arc.double())[:, :3, 3]
    assert float(torch.rad2deg(torch.atan2(centers[:, 1], centers[:, 0])).abs().max()) < 65.5
