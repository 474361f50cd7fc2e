"""`voxsplat export --format mesh`: formats, options and errors on a tiny workspace.

The workspace is made without training: Gaussians sit on the synthetic scene's surface points
(opaque, sized by their neighbours), which renders a plausible surface in a fraction of a second.
"""

import sys

import numpy as np
import pytest
import torch
import trimesh

from voxsplat.data.load import load_scene
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon import workspace as wsp
from voxsplat.scripts.cli import main
from testkit import untrained_workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("mesh_ws")
    cfg = SyntheticConfig(width=64, height=48, n_train=8, n_test=2, n_points=3000, supersample=1)
    synth = make_synthetic_scene(cfg)
    data = write_blender_dataset(synth.scene, root / "input")
    untrained_workspace(root / "ws", load_scene(data), data)
    return root / "ws"


@pytest.fixture(scope="module")
def exported(workspace, tmp_path_factory):
    """The workspace meshed once through the CLI (TSDF, with open3d made unimportable)."""
    out = tmp_path_factory.mktemp("mesh_out") / "mesh.ply"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "open3d", None)  # the TSDF path must never import it
        assert main(["export", str(workspace), "--format", "mesh", "--out", str(out),
                     "--device", "cpu"]) == 0
    return trimesh.load(out, process=False)


def _run_err(capsys, argv) -> str:
    """The one error line of a failing command (run without progress bars)."""
    capsys.readouterr()
    code = main([*argv, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("voxsplat: error: ")
    return err


def _no_files(folder) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


def _median_distance_to_points(mesh, workspace) -> float:
    """Median distance from the mesh's vertices to the scene's surface points (the input's
    frame, where exports are written): ~0.05 for the TSDF and Poisson meshes of this ~2.6-wide
    scene, ~0.35 for the same mesh moved by 0.3."""
    points = load_scene(workspace.parent / "input").points.double()
    verts = torch.from_numpy(np.asarray(mesh.vertices)).double()
    return float(torch.cdist(verts, points).min(1).values.median())


def test_mesh_has_colours_and_surfaces(exported, workspace):
    assert len(exported.faces) > 500
    assert exported.visual.kind == "vertex"
    assert np.ptp(exported.visual.vertex_colors[:, :3]) > 50
    assert np.linalg.norm(exported.extents) < 4.0  # the scene is ~2.6 across
    assert _median_distance_to_points(exported, workspace) < 0.1


@pytest.mark.parametrize("suffix", [".obj", ".glb", ".ply"])
def test_formats_round_trip_with_colours(workspace, exported, tmp_path, suffix):
    from voxsplat.recon.export.mesh import write_mesh
    path = write_mesh(tmp_path / f"mesh{suffix}", exported)
    back = trimesh.load(path, process=False, force=None if suffix == ".glb" else "mesh")
    if suffix == ".glb":  # a scene (forcing a mesh would drop the colours beside a material)
        (back,) = back.geometry.values()
    assert back.faces.shape == exported.faces.shape
    np.testing.assert_allclose(back.vertices, exported.vertices, atol=1e-6)
    assert np.array_equal(back.faces, exported.faces)
    colors = exported.visual.vertex_colors
    if suffix == ".glb":  # glTF's COLOR_0 is linear (sRGB 128 is 55 there), beside a material
        srgb = colors[:, :3] / 255.0
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        colors = np.concatenate([np.round(linear * 255), colors[:, 3:]], 1)
        assert np.array_equal(back.visual.vertex_attributes["color"], colors)
    else:
        assert back.visual.kind == "vertex"
        assert np.array_equal(back.visual.vertex_colors, colors)


def test_glb_is_matte_with_normals_as_gltf_viewers_need(exported, tmp_path):
    """No material in a glTF means a metallic one (three.js shows it dark): ours is matte."""
    import json
    import struct
    from voxsplat.recon.export.mesh import write_mesh
    data = write_mesh(tmp_path / "mesh.glb", exported).read_bytes()
    (length,) = struct.unpack("<I", data[12:16])
    tree = json.loads(data[20:20 + length])
    (primitive,) = tree["meshes"][0]["primitives"]
    assert {"POSITION", "NORMAL", "COLOR_0"} <= set(primitive["attributes"])
    material = tree["materials"][primitive["material"]]["pbrMetallicRoughness"]
    assert material["metallicFactor"] == 0.0


def test_glb_through_the_cli_opens_as_a_scene_with_colours(workspace, tmp_path):
    out = tmp_path / "mesh.glb"
    assert main(["export", str(workspace), "--format", "mesh", "--out", str(out), "--device", "cpu",
                 "--voxel-size", "0.08"]) == 0
    scene = trimesh.load(out)
    (geom,) = scene.geometry.values()
    assert len(geom.faces) > 100 and np.ptp(geom.visual.vertex_attributes["color"][:, :3]) > 50


def test_closed_mesh_is_watertight(workspace, tmp_path):
    out = tmp_path / "mesh.ply"
    assert main(["export", str(workspace), "--format", "mesh", "--out", str(out), "--closed",
                 "--voxel-size", "0.06", "--device", "cpu"]) == 0
    mesh = trimesh.load(out)
    assert mesh.is_watertight and len(mesh.faces) > 200


@pytest.mark.parametrize("size, fmt", [("0", "mesh"), ("-0.1", "mesh"), ("inf", "mesh"),
                                       ("inf", "points")])
def test_bad_voxel_size(capsys, workspace, tmp_path, size, fmt):
    """(inf crashed the mesher with a traceback and gave a 1-point cloud)"""
    err = _run_err(capsys, ["export", str(workspace), "--format", fmt,
                            "--out", str(tmp_path / "o" / "out.ply"), "--voxel-size", size])
    assert "--voxel-size must be > 0" in err
    _no_files(tmp_path / "o")


def test_unknown_suffix(capsys, workspace, tmp_path):
    err = _run_err(capsys, ["export", str(workspace), "--format", "mesh",
                            "--out", str(tmp_path / "o" / "mesh.stl")])
    assert "mesh.stl" in err and ".glb" in err
    _no_files(tmp_path / "o")


def test_empty_workspace(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    err = _run_err(capsys, ["export", str(tmp_path / "empty"), "--format", "mesh",
                            "--out", str(tmp_path / "o" / "mesh.ply")])
    assert "scene.json" in err
    _no_files(tmp_path / "o")


def test_workspace_without_splats(capsys, workspace, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / wsp.SCENE_JSON).write_text((workspace / wsp.SCENE_JSON).read_text())
    err = _run_err(capsys, ["export", str(ws), "--format", "mesh", "--out", str(tmp_path / "o.ply")])
    assert "splats.ply" in err
    assert not (tmp_path / "o.ply").exists()


def test_faces_without_fast_simplification(capsys, workspace, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fast_simplification", None)
    err = _run_err(capsys, ["export", str(workspace), "--format", "mesh", "--out",
                            str(tmp_path / "o" / "mesh.ply"), "--faces", "200", "--voxel-size", "0.08"])
    assert "fast-simplification" in err
    _no_files(tmp_path / "o")


def test_faces_decimates(workspace, tmp_path):
    pytest.importorskip("fast_simplification", reason="decimation needs fast-simplification")
    out = tmp_path / "mesh.obj"
    assert main(["export", str(workspace), "--format", "mesh", "--out", str(out), "--faces", "300",
                 "--voxel-size", "0.06", "--device", "cpu"]) == 0
    mesh = trimesh.load(out, process=False)
    assert 0 < len(mesh.faces) <= 400 and mesh.visual.kind == "vertex"


def test_poisson_without_open3d(capsys, workspace, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)
    err = _run_err(capsys, ["export", str(workspace), "--format", "mesh", "--mesher", "poisson",
                            "--out", str(tmp_path / "o" / "mesh.ply")])
    assert "pip install open3d" in err
    _no_files(tmp_path / "o")


def test_poisson_mesher(workspace, tmp_path):
    pytest.importorskip("open3d", reason="--mesher poisson needs open3d")
    out = tmp_path / "mesh.ply"
    assert main(["export", str(workspace), "--format", "mesh", "--mesher", "poisson",
                 "--out", str(out), "--device", "cpu"]) == 0
    mesh = trimesh.load(out, process=False)
    assert len(mesh.faces) > 500 and mesh.visual.kind == "vertex"
    assert np.linalg.norm(mesh.extents) < 4.0
    assert _median_distance_to_points(mesh, workspace) < 0.1


def test_points_through_the_cli(capsys, workspace, tmp_path):
    """`--format points`: a dense point cloud with normals and colours, one point per voxel."""
    from plyfile import PlyData
    out = tmp_path / "points.ply"
    assert main(["export", str(workspace), "--format", "points", "--out", str(out),
                 "--device", "cpu"]) == 0
    v = PlyData.read(str(out))["vertex"]
    assert {"x", "nx", "red"} <= set(v.data.dtype.names) and len(v) > 1000
    normals = np.stack([v["nx"], v["ny"], v["nz"]], -1)
    assert np.allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-4)
    assert np.ptp(v["red"]) > 50  # the surface's colours, not one constant
    coarse = tmp_path / "coarse.ply"
    assert main(["export", str(workspace), "--format", "points", "--out", str(coarse),
                 "--device", "cpu", "--voxel-size", "0.2"]) == 0
    assert len(PlyData.read(str(coarse))["vertex"]) < len(v) / 4
    err = _run_err(capsys, ["export", str(workspace), "--format", "points",
                            "--out", str(tmp_path / "o" / "points.xyz")])
    assert "points.xyz" in err and ".ply" in err
    _no_files(tmp_path / "o")


def test_compressed_ply_through_the_cli(capsys, workspace, tmp_path):
    """`--format compressed-ply`: SuperSplat's compressed PLY of the workspace's Gaussians."""
    from voxsplat.recon.export import read_ply
    from voxsplat.recon.export.compressed_ply import read_compressed_ply
    out = tmp_path / "scene.compressed.ply"
    assert main(["export", str(workspace), "--format", "compressed-ply", "--out", str(out)]) == 0
    decoded, full = read_compressed_ply(out), read_ply(workspace / "splats.ply")
    assert len(decoded["means"]) == len(full["means"])
    assert out.stat().st_size < (workspace / "splats.ply").stat().st_size / 3
    err = _run_err(capsys, ["export", str(workspace), "--format", "compressed-ply",
                            "--out", str(tmp_path / "o" / "scene.splat")])
    assert "scene.splat" in err and ".compressed.ply" in err
    _no_files(tmp_path / "o")


def test_spz_through_the_cli(capsys, workspace, tmp_path):
    """`--format spz`: Niantic's .spz holds the Gaussians of the .ply export, in its frame, to
    its quantization, in a fraction of the bytes; version 3 unless `--spz-version 2` asks for
    the older layout, whose rotations are coarser."""
    import gzip
    from voxsplat.data.cameras import quat_to_rotmat
    from voxsplat.recon.export import read_ply
    from voxsplat.recon.export.spz import read_spz
    for fmt, name, extra in (("ply", "scene.ply", []), ("spz", "scene.spz", []),
                             ("spz", "v2.spz", ["--spz-version", "2"])):
        assert main(["export", str(workspace), "--format", fmt, "--out", str(tmp_path / name),
                     "--quiet", *extra]) == 0
    full, decoded = read_ply(tmp_path / "scene.ply"), read_spz(tmp_path / "scene.spz")
    assert float((decoded["means"] - full["means"]).abs().max()) <= 0.5 / 4096 + 1e-6
    assert float((decoded["scales"] - full["scales"].clamp(-10, 5.9375)).abs().max()) <= 1 / 32 + 1e-6
    spz_bytes, ply_bytes = ((tmp_path / n).stat().st_size for n in ("scene.spz", "scene.ply"))
    assert spz_bytes < ply_bytes / 4  # 5.5x here
    versions = [gzip.decompress((tmp_path / n).read_bytes())[4] for n in ("scene.spz", "v2.spz")]
    assert versions == [3, 2]

    def axes_error(quats):  # the largest departure of |R^T R_ply| from the identity
        R, R_ply = quat_to_rotmat(quats.double()), quat_to_rotmat(full["quats"].double())
        return float(((R.transpose(1, 2) @ R_ply).abs() - torch.eye(3, dtype=torch.float64)).abs().max())
    assert axes_error(decoded["quats"]) < 0.01 < axes_error(read_spz(tmp_path / "v2.spz")["quats"])
    err = _run_err(capsys, ["export", str(workspace), "--format", "ply", "--out",
                            str(tmp_path / "x.ply"), "--spz-version", "2"])
    assert "--spz-version with --format ply: it is for spz files only" in err
    assert not (tmp_path / "x.ply").exists()


def test_render_scales_frames_and_streams_depth(capsys, workspace, tmp_path):
    """`render --scale 2 --depth`: frames at twice the training size (the same view, sharper:
    the half-size render of it matches a plain render), depth frames beside them."""
    from PIL import Image
    big, plain = tmp_path / "big", tmp_path / "plain_0.5"  # a dot in a folder name: still frames
    assert main(["render", str(workspace), "--path", "orbit", "--frames", "3", "--out", str(big),
                 "--scale", "2", "--depth", "--device", "cpu", "--quiet"]) == 0
    assert main(["render", str(workspace), "--path", "orbit", "--frames", "3", "--out",
                 str(plain), "--device", "cpu", "--quiet"]) == 0
    frames = sorted(big.glob("*.png"))
    assert len(frames) == 3 and len(list((tmp_path / "big_depth").glob("*.png"))) == 3
    large = np.asarray(Image.open(frames[1]), np.float64)
    small = np.asarray(Image.open(sorted(plain.glob("*.png"))[1]), np.float64)
    assert large.shape == (96, 128, 3) and small.shape == (48, 64, 3)
    halved = large.reshape(48, 2, 64, 2, 3).mean((1, 3))
    assert np.abs(halved - small).mean() < 6.0 and np.ptp(small) > 100  # 2.9; 18.7 moved 3 px
    err = _run_err(capsys, ["render", str(workspace), "--out", str(tmp_path / "x.mp4"),
                            "--scale", "0"])
    assert "--scale 0" in err


def test_the_formats_benchmark_scores_each_format_read_back(workspace):
    """scripts/bench_formats.py: the .ply reads back as the workspace's Gaussians (an identical
    render), the quantized formats render within their precision, in fewer bytes."""
    from voxsplat.scripts.bench_formats import FORMATS, bench_formats
    r = bench_formats(workspace, "cpu")
    assert set(r) == {"workspace", *FORMATS}
    assert r["ply"]["psnr"] == r["workspace"]["psnr"] and r["ply"]["psnr_vs_workspace"] is None
    for fmt in ("compressed-ply", "splat", "spz", "spz-v2"):
        assert r[fmt]["psnr_vs_workspace_min"] > 35, (fmt, r[fmt])
        assert abs(r[fmt]["psnr"] - r["workspace"]["psnr"]) < 0.5, (fmt, r[fmt])
        assert r[fmt]["bytes"] < r["ply"]["bytes"] / 2, (fmt, r[fmt])  # SH degree 0 here


def test_sh_degree_drops_the_higher_bands(capsys, tmp_path):
    """`--sh-degree D` keeps the first (D+1)^2-1 coefficients of every channel, as they were
    (spz: to its precision); splat exports and depth maps refuse it, as do degrees above 3."""
    from voxsplat.recon.export import read_ply
    from voxsplat.recon.export.spz import read_spz
    cfg = SyntheticConfig(width=48, height=36, n_train=4, n_test=1, n_points=300, supersample=1)
    synth = make_synthetic_scene(cfg)
    data = write_blender_dataset(synth.scene, tmp_path / "input")
    splats = untrained_workspace(tmp_path / "ws", load_scene(data), data, sh_degree=3)
    g = np.random.default_rng(0)
    splats["shN"] = splats["shN"] + torch.from_numpy(g.normal(0, 0.2, splats["shN"].shape)).float()
    from voxsplat.recon.export.ply import write_ply
    write_ply(tmp_path / "ws" / wsp.SPLATS_PLY, splats)
    ws = str(tmp_path / "ws")
    for fmt, name, degree in (("ply", "a.ply", 1), ("ply", "b.ply", 0), ("spz", "c.spz", 2)):
        assert main(["export", ws, "--format", fmt, "--out", str(tmp_path / name),
                     "--sh-degree", str(degree), "--frame", "scene", "--quiet"]) == 0
    full = read_ply(tmp_path / "ws" / wsp.SPLATS_PLY)["shN"]
    assert torch.equal(read_ply(tmp_path / "a.ply")["shN"], full[:, :3])
    assert read_ply(tmp_path / "b.ply")["shN"].shape[1] == 0
    spz = read_spz(tmp_path / "c.spz")["shN"]
    assert spz.shape[1] == 8 and float((spz - full[:, :8]).abs().max()) < 9 / 128
    assert (tmp_path / "b.ply").stat().st_size < (tmp_path / "ws" / wsp.SPLATS_PLY).stat().st_size / 3
    for argv in (["--format", "splat", "--out", str(tmp_path / "d.splat"), "--sh-degree", "1"],
                 ["--format", "ply", "--out", str(tmp_path / "e.ply"), "--sh-degree", "4"],
                 ["--format", "depth", "--out", str(tmp_path / "f"), "--sh-degree", "1"]):
        err = _run_err(capsys, ["export", ws, *argv])
        assert "--sh-degree" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ply", "b.ply", "c.spz", "input", "ws"]
