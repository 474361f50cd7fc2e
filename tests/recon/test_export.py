"""Splat export: the 3DGS PLY and antimatter15 .splat formats."""

from __future__ import annotations

import io

import numpy as np
from numpy.lib.recfunctions import repack_fields
import pytest
import torch
from plyfile import PlyData, PlyElement

from voxsplat.data.errors import VoxsplatError
from voxsplat.recon.export import read_ply, read_splat, write_ply, write_splat
from voxsplat.recon.export.ply import read_ply_elements
from voxsplat.recon.export import ply as ply_module
from voxsplat.recon.export import splat as splat_module

C0 = 0.28209479177387814
KEYS = ("means", "scales", "quats", "opacities", "sh0", "shN")


def make_splats(n: int = 50, sh_degree: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random splats with N Gaussians and the given SH degree."""
    g = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2
    return {
        "means": torch.randn(n, 3, generator=g) * 3,
        "scales": torch.randn(n, 3, generator=g) - 3,
        "quats": torch.randn(n, 4, generator=g),
        "opacities": torch.randn(n, generator=g) * 2,
        "sh0": torch.randn(n, 1, 3, generator=g),
        "shN": torch.randn(n, k - 1, 3, generator=g) * 0.1,
    }


def standard_names(num_rest: int) -> list[str]:
    """The 3DGS property list, spelled out independently of the module under test."""
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * num_rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_ply_round_trip_is_bit_exact(tmp_path, sh_degree):
    splats = make_splats(sh_degree=sh_degree)
    splats["means"][0, 0] = -0.0  # the sign of zero survives too
    path = tmp_path / "splats.ply"
    write_ply(path, splats)
    back = read_ply(path)
    assert set(back) == set(KEYS)
    for key in KEYS:
        assert back[key].dtype == torch.float32
        assert back[key].shape == splats[key].shape, key
        assert torch.equal(back[key].view(torch.int32), splats[key].view(torch.int32)), key


def test_read_ply_copies_out_of_the_file(tmp_path):
    """The file is mapped to be read fast; what comes back must not depend on it afterwards."""
    splats = make_splats(sh_degree=1)
    path = tmp_path / "splats.ply"
    write_ply(path, splats)
    vertex = read_ply_elements(path)["vertex"]
    assert not isinstance(vertex, np.memmap) and vertex.flags.writeable
    back = read_ply(path)
    path.write_bytes(b"\0" * path.stat().st_size)  # same length, other content
    path.unlink()
    for key in KEYS:
        assert torch.equal(back[key], splats[key]), key
    back["means"] += 1  # writable, as before


def test_ply_layout_is_the_standard_one(tmp_path):
    splats = make_splats(n=7, sh_degree=3)
    path = tmp_path / "splats.ply"
    write_ply(path, splats)
    ply = PlyData.read(str(path))
    assert not ply.text and ply.byte_order == "<"
    assert [el.name for el in ply.elements] == ["vertex"]
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == standard_names(15)
    assert all(vertex.data.dtype[name] == np.dtype("<f4") for name in vertex.data.dtype.names)
    assert len(vertex.data) == 7
    shN = splats["shN"].numpy()
    # Channel-major f_rest: all 15 coefficients of R, then G, then B.
    assert np.array_equal(vertex["f_rest_0"], shN[:, 0, 0])
    assert np.array_equal(vertex["f_rest_1"], shN[:, 1, 0])
    assert np.array_equal(vertex["f_rest_15"], shN[:, 0, 1])
    assert np.array_equal(vertex["f_rest_44"], shN[:, 14, 2])
    assert np.array_equal(vertex["f_dc_2"], splats["sh0"][:, 0, 2].numpy())
    assert np.array_equal(vertex["rot_0"], splats["quats"][:, 0].numpy())  # w first
    assert np.array_equal(vertex["opacity"], splats["opacities"].numpy())  # logit, raw
    for name in ("nx", "ny", "nz"):
        assert not vertex[name].any()


def test_write_ply_without_shN_and_with_grad(tmp_path):
    splats = {k: v.requires_grad_() for k, v in make_splats(n=4, sh_degree=0).items()}
    del splats["shN"]
    write_ply(tmp_path / "a.ply", splats)
    assert read_ply(tmp_path / "a.ply")["shN"].shape == (4, 0, 3)


def test_write_ply_rejects_bad_shapes(tmp_path):
    splats = make_splats(n=4)
    splats["quats"] = splats["quats"][:, :3]
    with pytest.raises(ValueError, match="quats"):
        write_ply(tmp_path / "a.ply", splats)
    assert not (tmp_path / "a.ply").exists()


def test_read_ply_tolerates_missing_normals_and_any_order(tmp_path):
    splats = make_splats(n=5, sh_degree=1)
    rest = splats["shN"].transpose(1, 2).reshape(5, -1).numpy()
    columns = {"opacity": splats["opacities"].numpy(), "red": np.zeros(5)}
    for i, axis in enumerate("xyz"):
        columns[axis] = splats["means"][:, i].numpy()
        columns[f"scale_{i}"] = splats["scales"][:, i].numpy()
        columns[f"f_dc_{i}"] = splats["sh0"][:, 0, i].numpy()
    for i in range(4):
        columns[f"rot_{i}"] = splats["quats"][:, i].numpy()
    for i in range(9):
        columns[f"f_rest_{i}"] = rest[:, i]
    names = sorted(columns, reverse=True)
    table = np.zeros(5, [(n, "u1" if n == "red" else "<f4") for n in names])
    for n in names:
        table[n] = columns[n]
    PlyData([PlyElement.describe(table, "vertex")]).write(str(tmp_path / "b.ply"))
    back = read_ply(tmp_path / "b.ply")
    for key in KEYS:
        assert torch.equal(back[key], splats[key]), key


def test_read_ply_rejects_a_point_cloud_naming_the_property(tmp_path):
    table = np.zeros(3, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
    path = tmp_path / "cloud.ply"
    PlyData([PlyElement.describe(table, "vertex")]).write(str(path))
    with pytest.raises(VoxsplatError, match="f_dc_0") as err:
        read_ply(path)
    assert str(path) in str(err.value)


def test_read_ply_rejects_truncated_and_non_ply_files(tmp_path):
    path = tmp_path / "splats.ply"
    write_ply(path, make_splats(n=20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(VoxsplatError, match="truncated") as err:
        read_ply(path)
    assert str(path) in str(err.value)
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not a ply")
    with pytest.raises(VoxsplatError) as err:
        read_ply(garbage)
    assert str(garbage) in str(err.value)
    with pytest.raises(VoxsplatError, match="no such file"):
        read_ply(tmp_path / "missing.ply")


def test_read_ply_rejects_ragged_f_rest(tmp_path):
    path = tmp_path / "splats.ply"
    write_ply(path, make_splats(n=3, sh_degree=1))
    vertex = PlyData.read(str(path))["vertex"].data
    names = [n for n in vertex.dtype.names if n != "f_rest_8"]
    PlyData([PlyElement.describe(repack_fields(vertex[names]), "vertex")]).write(str(path))
    with pytest.raises(VoxsplatError, match="f_rest") as err:
        read_ply(path)
    assert str(path) in str(err.value)


def test_interrupted_ply_write_leaves_no_file(tmp_path, monkeypatch):
    def fail_midway(self, stream):
        stream.write(b"ply\nformat binary_little_endian 1.0\n")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ply_module.PlyData, "write", fail_midway)
    with pytest.raises(RuntimeError, match="disk full"):
        write_ply(tmp_path / "out.ply", make_splats(n=3))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.splat"
    write_splat(path, make_splats(n=3))
    before = path.read_bytes()

    class Exploding:
        def tobytes(self):
            raise RuntimeError("interrupted")

    monkeypatch.setattr(splat_module, "encode_splat", lambda splats: Exploding())
    with pytest.raises(RuntimeError, match="interrupted"):
        write_splat(path, make_splats(n=5))
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def convert_py_reference(ply_path) -> bytes:
    """antimatter15/splat convert.py's process_ply_to_splat, row by row as it is written."""
    vert = PlyData.read(str(ply_path))["vertex"]
    order = np.argsort(-np.exp(vert["scale_0"] + vert["scale_1"] + vert["scale_2"])
                       / (1 + np.exp(-vert["opacity"])))
    buffer = io.BytesIO()
    for idx in order:
        v = vert[idx]
        position = np.array([v["x"], v["y"], v["z"]], dtype=np.float32)
        scales = np.exp(np.array([v["scale_0"], v["scale_1"], v["scale_2"]], dtype=np.float32))
        rot = np.array([v["rot_0"], v["rot_1"], v["rot_2"], v["rot_3"]], dtype=np.float32)
        color = np.array([0.5 + C0 * v["f_dc_0"], 0.5 + C0 * v["f_dc_1"],
                          0.5 + C0 * v["f_dc_2"], 1 / (1 + np.exp(-v["opacity"]))])
        buffer.write(position.tobytes())
        buffer.write(scales.tobytes())
        buffer.write((color * 255).clip(0, 255).astype(np.uint8).tobytes())
        buffer.write(((rot / np.linalg.norm(rot)) * 128 + 128).clip(0, 255).astype(np.uint8)
                     .tobytes())
    return buffer.getvalue()


def test_splat_matches_convert_py_byte_for_byte(tmp_path):
    splats = make_splats(n=40)
    write_ply(tmp_path / "a.ply", splats)
    write_splat(tmp_path / "a.splat", splats)
    assert (tmp_path / "a.splat").read_bytes() == convert_py_reference(tmp_path / "a.ply")


def test_splat_size_order_and_decoding(tmp_path):
    n = 60
    splats = make_splats(n=n)
    path = tmp_path / "a.splat"
    write_splat(path, splats)
    assert path.stat().st_size == 32 * n
    back = read_splat(path)
    assert back["shN"].shape == (n, 0, 3)

    key = splats["scales"].double().sum(1).exp() * splats["opacities"].double().sigmoid()
    order = torch.argsort(key, descending=True)
    assert torch.equal(back["means"], splats["means"][order])

    torch.testing.assert_close(back["scales"], splats["scales"][order], atol=1e-6, rtol=0)
    step = 1 / 255 + 1e-6
    rgb = (0.5 + C0 * splats["sh0"][order]).clamp(0, 1)
    assert torch.all((0.5 + C0 * back["sh0"] - rgb).abs() <= step)
    alpha = splats["opacities"][order].sigmoid()
    assert torch.all((back["opacities"].sigmoid() - alpha).abs() <= step)
    q = torch.nn.functional.normalize(splats["quats"][order], dim=1)
    assert torch.all((back["quats"] - q).abs() <= 1 / 128 + 1e-6)


def test_read_splat_rejects_wrong_size(tmp_path):
    path = tmp_path / "bad.splat"
    path.write_bytes(bytes(33))
    with pytest.raises(VoxsplatError, match="multiple of 32") as err:
        read_splat(path)
    assert str(path) in str(err.value)
    with pytest.raises(VoxsplatError, match="no such file"):
        read_splat(tmp_path / "missing.splat")
