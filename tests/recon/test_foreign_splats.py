"""Splat files other tools wrote, valid or damaged, read as their formats define them (or
refused in one line), and exports of Gaussians that a diverged run left non-finite."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from voxsplat.data.errors import VoxsplatError
from voxsplat.recon.export.ply import write_ply
from voxsplat.recon.export.read import read_splat_file
from voxsplat.recon.export.spz import write_spz
from test_export import make_splats
from testkit import error_message

GEOMETRY = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y",
            "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z"]
IDENTITY = (0 << 30) | (511 << 20) | (511 << 10) | 511  # largest component w, the others ~0


def _compressed(path, chunks: int, comment: str = "") -> None:
    """A compressed PLY of one Gaussian whose chunk table has the 12 geometry fields only (as
    older SuperSplat / PlayCanvas files: colours packed in 0..1 directly), `chunks` rows."""
    header = ("ply\nformat binary_little_endian 1.0\n" + comment + f"element chunk {chunks}\n"
              + "".join(f"property float {n}\n" for n in GEOMETRY) + "element vertex 1\n"
              + "".join(f"property uint packed_{n}\n" for n in ("position", "rotation", "scale",
                                                                  "color")) + "end_header\n")
    table = np.tile(np.array([0, 0, 0, 1, 1, 1, -3, -3, -3, -1, -1, -1], "<f4"), chunks)
    vertex = np.array([0, IDENTITY, 0, 0xFF8000C0], "<u4")  # r 1, g 0.5, b 0, alpha 0.75
    path.write_bytes(header.encode() + table.tobytes() + vertex.tobytes())


def test_older_compressed_plys_and_long_headers_read(tmp_path):
    """splat-transform reads chunks without a colour range (12 fields; the colour packed
    directly); ours raised `no field of name min_r`. A header with more than 4 KB of comments
    was taken for a standard PLY."""
    _compressed(tmp_path / "old.compressed.ply", 1, "comment " + "x" * 5000 + "\n")
    splats = read_splat_file(tmp_path / "old.compressed.ply")
    rgb = 0.5 + 0.28209479177387814 * splats["sh0"].reshape(3)
    torch.testing.assert_close(rgb, torch.tensor([1.0, 128 / 255, 0.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(splats["scales"], torch.full((1, 3), -3.0))
    assert float(torch.sigmoid(splats["opacities"])) == pytest.approx(192 / 255, abs=1e-4)


def test_a_damaged_compressed_ply_is_one_line(tmp_path):
    path = tmp_path / "short.compressed.ply"
    _compressed(path, 0)  # no chunk for its Gaussian
    message = error_message(read_splat_file, path)
    assert message.startswith(f"{path}: ") and "0 chunks for 1 Gaussians, not one per 256" in message
    assert "export it again, or give the uncompressed .ply" in message


def test_spz_damaged_or_with_bytes_after_its_gaussians(tmp_path):
    """A damaged deflate stream raised zlib.error (a traceback); bytes after the payload,
    which Niantic's loader ignores, were called a truncation."""
    path = tmp_path / "a.spz"
    write_spz(path, make_splats(20, 1))
    data = bytearray(path.read_bytes())
    data[20:40] = bytes(20)
    (tmp_path / "damaged.spz").write_bytes(bytes(data))
    with pytest.raises(VoxsplatError, match="not a gzip stream .*damaged or truncated"):
        read_splat_file(tmp_path / "damaged.spz")
    payload = gzip.decompress(path.read_bytes())
    (tmp_path / "longer.spz").write_bytes(gzip.compress(payload + bytes(16)))
    torch.testing.assert_close(read_splat_file(tmp_path / "longer.spz"), read_splat_file(path))
    flagged = bytearray(payload)
    flagged[14] |= 0x1  # the header's flags: trained antialiased, which is said
    (tmp_path / "aa.spz").write_bytes(gzip.compress(bytes(flagged)))
    with pytest.warns(UserWarning, match="trained with antialiasing"):
        torch.testing.assert_close(read_splat_file(tmp_path / "aa.spz"), read_splat_file(path))
    (tmp_path / "cut.spz").write_bytes(gzip.compress(payload[:-10]))
    with pytest.raises(VoxsplatError, match="Gaussians of SH degree 1 take"):
        read_splat_file(tmp_path / "cut.spz")


def test_ply_sh_degree_4_keeps_bands_0_to_3_and_odd_counts_are_refused(tmp_path):
    """gsplat trains any degree: a degree-4 PLY was accepted whole, and each viewer's
    recolouring then died on it; a count of f_rest that is no degree's passed too."""
    splats = make_splats(10, 4)
    write_ply(tmp_path / "d4.ply", splats)
    with pytest.warns(UserWarning, match="SH degree 4; its bands above 3 are left out"):
        read = read_splat_file(tmp_path / "d4.ply")
    torch.testing.assert_close(read["shN"], splats["shN"][:, :15])
    odd = {**make_splats(10, 1), "shN": torch.zeros(10, 2, 3)}  # 6 f_rest: no degree's
    write_ply(tmp_path / "odd.ply", odd)
    with pytest.raises(VoxsplatError, match="has 6 f_rest_\\* properties"):
        read_splat_file(tmp_path / "odd.ply")


def test_splat_flat_gaussians_stay_finite(tmp_path):
    """antimatter15's viewer draws a Gaussian with a 0 (or negative) std-dev; its log was
    -inf or NaN, and `view` dropped it as a diverged run's."""
    from voxsplat.recon.export.splat import SPLAT_DTYPE
    rows = np.zeros(2, SPLAT_DTYPE)
    rows["scale"] = [[0.1, 0.1, 0.0], [0.1, -0.2, 0.1]]
    rows["rot"] = [[255, 128, 128, 128]] * 2
    rows["rgba"] = 200
    (tmp_path / "flat.splat").write_bytes(rows.tobytes())
    scales = read_splat_file(tmp_path / "flat.splat")["scales"]
    assert bool(torch.isfinite(scales).all()) and float(scales[0, 2]) < -80
    assert float(scales[1, 1]) == pytest.approx(np.log(0.2), abs=1e-6)


@pytest.mark.parametrize("fmt, out", [("spz", "e.spz"), ("compressed-ply", "e.compressed.ply")])
def test_export_leaves_out_non_finite_gaussians(tmp_path, fmt, out):
    """A workspace with NaN Gaussians (a run that diverged): .spz export raised a traceback,
    and a compressed PLY made the 255 others of the bad one's chunk NaN as well."""
    from voxsplat.data.load import load_scene
    from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
    from voxsplat.data.writers import write_blender_dataset
    from voxsplat.recon.pipeline import export
    from testkit import untrained_workspace
    cfg = SyntheticConfig(width=32, height=24, n_train=2, n_test=0, n_points=50, supersample=1)
    data = write_blender_dataset(make_synthetic_scene(cfg).scene, tmp_path / "input")
    splats = make_splats(600, 1)
    splats["means"][7, 0] = float("nan")
    untrained_workspace(tmp_path / "ws", load_scene(data), data, splats=splats)
    with pytest.warns(UserWarning, match="1 of 600 Gaussians hold NaN or inf"):
        export(tmp_path / "ws", fmt, tmp_path / out, frame="scene")
    read = read_splat_file(tmp_path / out)
    assert len(read["means"]) == 599 and bool(torch.isfinite(read["means"]).all())
