"""SuperSplat's compressed PLY: the layout PlayCanvas's readers accept, decoded as their reader
decodes it, and a render of the decoded file that matches the original Gaussians."""

from __future__ import annotations

import math

import numpy as np
import pytest
from plyfile import PlyData

from voxsplat.data.errors import VoxsplatError
from voxsplat.recon.export.compressed_ply import (morton_order, read_compressed_ply,
                                                   write_compressed_ply)
from voxsplat.render.metrics import psnr
from test_export import make_splats
from testkit import renders_before_and_after

SH_C0 = 0.28209479177387814


def playcanvas_decode(path) -> dict[str, np.ndarray]:
    """One Gaussian at a time, as PlayCanvas's decompressPly (splat-transform) reads the file:
    the reader a SuperSplat user's file meets."""
    ply = PlyData.read(str(path))
    chunk, vertex = ply["chunk"].data, ply["vertex"].data
    unorm = lambda v, bits: (int(v) & ((1 << bits) - 1)) / ((1 << bits) - 1)
    lerp = lambda a, b, t: a * (1 - t) + b * t
    out = {k: [] for k in ("means", "scales", "rgb", "alpha", "quats")}
    for i, v in enumerate(vertex):
        c = chunk[i // 256]
        p, s, col, r = (int(v[f]) for f in ("packed_position", "packed_scale", "packed_color",
                                              "packed_rotation"))
        t3 = lambda x: (unorm(x >> 21, 11), unorm(x >> 11, 10), unorm(x, 11))
        out["means"].append([lerp(c[f"min_{a}"], c[f"max_{a}"], t) for a, t in zip("xyz", t3(p))])
        out["scales"].append([lerp(c[f"min_scale_{a}"], c[f"max_scale_{a}"], t)
                              for a, t in zip("xyz", t3(s))])
        out["rgb"].append([lerp(c[f"min_{a}"], c[f"max_{a}"], unorm(col >> sh, 8))
                           for a, sh in zip("rgb", (24, 16, 8))])
        out["alpha"].append(unorm(col, 8))
        norm = 1.0 / (math.sqrt(2) * 0.5)
        a, b, cc = ((unorm(r >> sh, 10) - 0.5) * norm for sh in (20, 10, 0))
        m = math.sqrt(max(0.0, 1.0 - (a * a + b * b + cc * cc)))
        out["quats"].append([[m, a, b, cc], [a, m, b, cc], [a, b, m, cc], [a, b, cc, m]][r >> 30])
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_layout_is_what_playcanvas_readers_accept(tmp_path, sh_degree):
    splats = make_splats(600, sh_degree)
    write_compressed_ply(tmp_path / "s.compressed.ply", splats)
    ply = PlyData.read(str(tmp_path / "s.compressed.ply"))
    names = [el.name for el in ply.elements]
    assert names == (["chunk", "vertex"] + (["sh"] if sh_degree else []))
    assert len(ply["chunk"].data) == 3 and len(ply["vertex"].data) == 600  # ceil(600 / 256)
    assert [p.name for p in ply["chunk"].properties][:6] == ["min_x", "min_y", "min_z",
                                                             "max_x", "max_y", "max_z"]
    assert {p.val_dtype for p in ply["chunk"].properties} == {"f4"}
    assert len(ply["chunk"].properties) == 18
    assert [(p.name, p.val_dtype) for p in ply["vertex"].properties] == [
        ("packed_position", "u4"), ("packed_rotation", "u4"), ("packed_scale", "u4"),
        ("packed_color", "u4")]
    if sh_degree:
        assert [(p.name, p.val_dtype) for p in ply["sh"].properties] == [
            (f"f_rest_{i}", "u1") for i in range(45)]


def test_playcanvas_decodes_the_gaussians_within_their_quantization(tmp_path):
    splats = make_splats(700, 3, seed=1)
    splats["quats"][:5] *= -1  # sign does not matter
    splats["scales"][7] = -30.0  # beyond the format's +-20: clamped
    write_compressed_ply(tmp_path / "s.compressed.ply", splats)
    ref = playcanvas_decode(tmp_path / "s.compressed.ply")
    order = morton_order(splats["means"].numpy())
    src = {k: v[order].double().numpy() for k, v in splats.items()}
    extent = src["means"].max(0) - src["means"].min(0)
    assert np.abs(ref["means"] - src["means"]).max() < extent.max() / 2047 + 1e-5
    log_scales = np.clip(src["scales"], -20, 20)
    assert np.abs(ref["scales"] - log_scales).max() < np.ptp(log_scales) / 1023
    rgb = 0.5 + SH_C0 * src["sh0"][:, 0]
    assert np.abs(ref["rgb"] - rgb).max() < np.ptp(rgb) / 255 + 1e-6
    assert np.abs(ref["alpha"] - 1 / (1 + np.exp(-src["opacities"]))).max() <= 0.5 / 255 + 1e-6
    q = src["quats"] / np.linalg.norm(src["quats"], axis=1, keepdims=True)
    assert np.abs(np.abs((ref["quats"] * q).sum(1)) - 1).max() < 1e-5  # the same rotation
    ours = read_compressed_ply(tmp_path / "s.compressed.ply")
    for key, theirs in (("means", ref["means"]), ("scales", ref["scales"]), ("quats", ref["quats"])):
        np.testing.assert_allclose(ours[key].numpy(), theirs, atol=1e-5)
    np.testing.assert_allclose(0.5 + SH_C0 * ours["sh0"][:, 0].numpy(), ref["rgb"], atol=1e-5)
    np.testing.assert_allclose(ours["shN"].numpy(), src["shN"], atol=8 / 256)


def test_a_decoded_file_renders_as_the_gaussians_did(tmp_path):
    before, after, n = renders_before_and_after(tmp_path, write_compressed_ply,
                                                read_compressed_ply, "s.compressed.ply")
    assert float(psnr(after, before).min()) > 40.0  # measured 45.5-50.3 dB
    size = (tmp_path / "s.compressed.ply").stat().st_size
    assert size < (16 + 45) * n + 72 * (n // 256 + 1) + 2000  # vs 248 bytes each in a .ply


def test_empty_or_high_degree_splats_are_refused(tmp_path):
    with pytest.raises(VoxsplatError, match="no Gaussians"):
        write_compressed_ply(tmp_path / "a.ply", make_splats(0, 0))
    with pytest.raises(VoxsplatError, match="degrees 0-3"):
        write_compressed_ply(tmp_path / "b.ply", make_splats(10, 4))
    assert not (tmp_path / "a.ply").exists() and not (tmp_path / "b.ply").exists()
