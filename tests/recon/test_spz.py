"""Niantic's .spz: the bytes its reference reader expects, decoded as that reader decodes them
(in the format's RUB frame), and a render of the decoded file that matches the Gaussians."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from voxsplat.data.cameras import quat_to_rotmat
from voxsplat.data.errors import VoxsplatError
from voxsplat.recon.export.frame import transform_splats
from voxsplat.recon.export.spz import read_spz, write_spz
from voxsplat.render.metrics import psnr
from test_export import make_splats
from testkit import error_message, renders_before_and_after

HALF_TURN_X = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
"""RDF (a .ply's frame) -> RUB (the .spz frame): a half turn about x."""


def same_axes(quats_a: np.ndarray, quats_b: np.ndarray) -> float:
    """The largest departure of |R_a^T R_b| from the identity over [N,4] (w,x,y,z) pairs: 0
    when each pair turns the axes of an ellipsoid alike, up to their signs."""
    R_a, R_b = (quat_to_rotmat(torch.as_tensor(q, dtype=torch.float64)) for q in (quats_a, quats_b))
    return float(((R_a.transpose(1, 2) @ R_b).abs() - torch.eye(3, dtype=torch.float64)).abs().max())


def niantic_decode(path) -> dict[str, np.ndarray]:
    """The file as Niantic's loadSpz (load-spz.cc) reads it, with no coordinate conversion:
    the Gaussians in the format's RUB frame, in its conventions (quaternions x, y, z, w)."""
    raw = gzip.decompress(path.read_bytes())
    magic, version, n, degree, bits, flags, reserved = struct.unpack_from("<IIIBBBB", raw)
    assert (magic, flags, reserved) == (0x5053474E, 0, 0) and version in (2, 3)
    dim = {0: 0, 1: 3, 2: 8, 3: 15}[degree]
    body, out = raw[16:], {}
    pos = body[:9 * n]
    fixed = [int.from_bytes(pos[3 * i:3 * i + 3], "little", signed=True) for i in range(3 * n)]
    out["means"] = np.array(fixed, np.float64).reshape(n, 3) / (1 << bits)
    offset = 9 * n
    rot_size = 4 if version == 3 else 3
    for key, size in (("alpha", 1), ("color", 3), ("scales", 3), ("rot", rot_size), ("sh", 3 * dim)):
        out[key] = np.frombuffer(body[offset:offset + size * n], np.uint8).reshape(n, size) * 1.0
        offset += size * n
    assert offset == len(body)
    rot = out.pop("rot")
    if version == 3:
        out["quats_xyzw"] = np.array([niantic_smallest_three(bytes(r.astype(np.uint8))) for r in rot])
    else:
        xyz = rot / 127.5 - 1
        out["quats_xyzw"] = np.concatenate([xyz, np.sqrt(np.clip(1 - (xyz ** 2).sum(1), 0, None))[:, None]], 1)
    out["alpha"] = out["alpha"][:, 0] / 255
    out["sh0"] = (out.pop("color") / 255 - 0.5) / 0.15
    out["scales"] = out["scales"] / 16 - 10
    out["shN"] = ((out.pop("sh") - 128) / 128).reshape(n, dim, 3)
    out["fractional_bits"] = bits
    return out


def niantic_smallest_three(r: bytes) -> list[float]:
    """unpackQuaternionSmallestThree (load-spz.cc, version 3) for one Gaussian: x, y, z, w."""
    comp = int.from_bytes(r, "little")
    largest, q = comp >> 30, [0.0] * 4
    for i in (3, 2, 1, 0):
        if i != largest:
            mag, neg = comp & 511, (comp >> 9) & 1
            comp >>= 10
            q[i] = (-1 if neg else 1) * math.sqrt(0.5) * mag / 511
    q[largest] = math.sqrt(max(0.0, 1 - sum(v * v for v in q)))
    return q


def test_one_gaussian_byte_by_byte(tmp_path):
    """The spec's arithmetic done by hand for one Gaussian of degree 1."""
    splats = {"means": torch.tensor([[1.0, -2.0, 0.5]]), "scales": torch.tensor([[-3.0, 0.0, 1.5]]),
              "quats": torch.tensor([[-0.5, 0.5, 0.5, 0.5]]),  # w < 0: stored as -q
              "opacities": torch.tensor([0.0]), "sh0": torch.tensor([[[0.0, 1.0, -1.0]]]),
              "shN": torch.tensor([[[0.5, -0.25, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.3]]])}
    write_spz(tmp_path / "one.spz", splats)
    raw = gzip.decompress((tmp_path / "one.spz").read_bytes())
    assert raw[:16] == struct.pack("<IIIBBBB", 0x5053474E, 3, 1, 1, 12, 0, 0)
    # RUB: (1, 2, -0.5) * 4096 = 4096, 8192, -2048 as 24-bit little-endian two's complement
    assert raw[16:25] == bytes([0x00, 0x10, 0x00, 0x00, 0x20, 0x00, 0x00, 0xF8, 0xFF])
    assert raw[25] == 128  # sigmoid(0) * 255 = 127.5, rounded half away from zero as C does
    assert list(raw[26:29]) == [128, 166, 89]  # 127.5 + 255 * 0.15 * (0, 1, -1)
    assert list(raw[29:32]) == [112, 160, 184]  # (log scale + 10) * 16
    # RUB negates y, z: (x, y, z, w) = (0.5, -0.5, -0.5, -0.5). All four are equally large, so
    # the first, x (index 0, positive), is dropped; y, z, w are negative: sign bit 1 each, and
    # 9 bits of 0.5 / sqrt(1/2) * 511 + 0.5 = 361.8 -> 361
    each = (1 << 9) | 361
    assert raw[32:36] == ((0 << 30) | (each << 20) | (each << 10) | each).to_bytes(4, "little")
    # SH degree 1 (y, z, x basis; RUB negates the first two), 5-bit buckets of 8 around 128:
    # -0.5 -> 64; 0.25 -> 160; 0 -> 128 | -0.1 -> 115.2 -> 115 -> 112; 0, 0 | 0, 0, 0.3 -> 168
    assert list(raw[36:45]) == [64, 160, 128, 112, 128, 128, 128, 128, 168]
    assert len(raw) == 45
    # version 2: -q = (w 0.5, x -0.5, y -0.5, z -0.5), RUB: (-0.5, 0.5, 0.5) * 127.5 + 127.5
    write_spz(tmp_path / "v2.spz", splats, version=2)
    raw2 = gzip.decompress((tmp_path / "v2.spz").read_bytes())
    assert raw2[:16] == struct.pack("<IIIBBBB", 0x5053474E, 2, 1, 1, 12, 0, 0)
    assert list(raw2[32:35]) == [64, 191, 191] and raw2[35:] == raw[36:]
    # C's rounding at halves (the x basis keeps its sign): -4.5 / 128 -> -5 -> 123 -> bucket
    # 120, where numpy's half to even would give -4 -> 124 -> 128
    splats["shN"] = torch.tensor([[[0.0] * 3, [0.0] * 3, [-4.5 / 128, 0.0, 0.0]]])
    write_spz(tmp_path / "half.spz", splats)
    assert gzip.decompress((tmp_path / "half.spz").read_bytes())[42] == 120


@pytest.mark.parametrize("sh_degree,version", [(0, 3), (1, 3), (2, 2), (3, 3), (3, 2)])
def test_niantic_reads_the_gaussians_turned_into_its_frame(tmp_path, sh_degree, version):
    splats = make_splats(500, sh_degree, seed=sh_degree)
    splats["sh0"] = splats["sh0"].clamp(-3, 3)  # inside the colour byte's range (+-3.33)
    splats["quats"][:7] *= -1  # the sign does not matter
    write_spz(tmp_path / "s.spz", splats, version=version)
    ref = niantic_decode(tmp_path / "s.spz")
    rub = {k: v.double().numpy() for k, v in transform_splats(
        {k: v.double() for k, v in splats.items()}, HALF_TURN_X).items()}
    assert ref["fractional_bits"] == 12
    assert np.abs(ref["means"] - rub["means"]).max() <= 0.5 / 4096 + 1e-9
    assert np.abs(ref["scales"] - rub["scales"]).max() <= 0.5 / 16 + 1e-9
    assert np.abs(ref["alpha"] - 1 / (1 + np.exp(-rub["opacities"]))).max() <= 0.5 / 255 + 1e-9
    assert np.abs(ref["sh0"] - rub["sh0"][:, 0]).max() <= 0.5 / (0.15 * 255) + 1e-9
    # the same ellipsoid axes (a half turn's M R M, as Niantic's flips give, and transform's M R
    # differ by axis signs). Version 3: 9 bits and a sign for the smallest three (measured
    # 0.0028). Version 2: 8-bit x, y, z, and w = sqrt(1 - x^2 - y^2 - z^2) loses precision
    # where it nears 0 (measured 0.034 above 0.25, 0.17 below)
    w = np.abs(splats["quats"][:, 0].numpy()) / np.linalg.norm(splats["quats"].numpy(), axis=1)
    quats = ref["quats_xyzw"][:, [3, 0, 1, 2]]
    if version == 3:
        assert same_axes(quats, rub["quats"]) < 0.006
    else:
        assert same_axes(quats[w > 0.25], rub["quats"][w > 0.25]) < 0.05
        assert same_axes(quats, rub["quats"]) < 0.25
        assert same_axes(quats, rub["quats"]) > 0.05  # what version 3 is for
    if sh_degree:  # snapped to 8 / 128 (degree 1) and 16 / 128 (above), plus rounding
        err = np.abs(ref["shN"] - rub["shN"])
        assert err[:, :3].max() <= 4.5 / 128 and err.max() <= 8.5 / 128
        assert err.max() > 2 / 128  # a test that did not snap would not see this
    ours = read_spz(tmp_path / "s.spz")  # = Niantic's, turned back into the .ply's frame
    back = transform_splats({"means": torch.from_numpy(ref["means"]),
                             "scales": torch.from_numpy(ref["scales"]),
                             "quats": torch.from_numpy(ref["quats_xyzw"][:, [3, 0, 1, 2]]),
                             "opacities": torch.zeros(500, dtype=torch.float64),
                             "sh0": torch.from_numpy(ref["sh0"][:, None]),
                             "shN": torch.from_numpy(ref["shN"])}, HALF_TURN_X)
    for key in ("means", "scales", "sh0", "shN"):
        np.testing.assert_allclose(ours[key].numpy(), back[key].numpy(), atol=1e-5)
    assert same_axes(ours["quats"].numpy(), back["quats"].numpy()) < 1e-5


def test_a_decoded_file_renders_as_the_gaussians_did(tmp_path):
    before, after, n = renders_before_and_after(tmp_path, write_spz, read_spz, "s.spz")
    value = float(psnr(after, before).min())
    assert value > 35.0, value  # measured 39.6 dB
    # 22 bytes and 45 of SH before gzip; measured 22.0 bytes each after, vs 248 in a .ply
    assert (tmp_path / "s.spz").stat().st_size < 30 * n


def test_wide_scenes_trade_precision_for_range(tmp_path):
    splats = make_splats(100, 0)
    splats["means"][0] = torch.tensor([5000.0, -3.0, 1.0])  # 12 bits would wrap at 2048
    write_spz(tmp_path / "w.spz", splats)
    ref = niantic_decode(tmp_path / "w.spz")
    assert ref["fractional_bits"] == 10  # 5000 * 2^10 < 2^23 <= 5000 * 2^11
    assert np.abs(ref["means"][0] - [5000.0, 3.0, -1.0]).max() <= 0.5 / 1024
    splats["means"][0, 0] = 1e7
    with pytest.raises(VoxsplatError, match="beyond the .spz range"):
        write_spz(tmp_path / "x.spz", splats)
    assert not (tmp_path / "x.spz").exists()


def _refused(path, *words) -> None:
    """read_spz(path) fails with one line that names the file, what is wrong and the fix."""
    message = error_message(read_spz, path)
    assert message.startswith(f"{path}: ") and all(w in message for w in words), message


def test_bad_splats_and_bad_files_are_refused(tmp_path):
    with pytest.raises(VoxsplatError, match="no Gaussians"):
        write_spz(tmp_path / "a.spz", make_splats(0, 0))
    with pytest.raises(VoxsplatError, match="degrees 0-3"):
        write_spz(tmp_path / "b.spz", make_splats(10, 4))
    assert not (tmp_path / "a.spz").exists() and not (tmp_path / "b.spz").exists()
    _refused(tmp_path / "missing.spz", "no such file", "check the path")
    (tmp_path / "text.spz").write_text("not gzip")
    _refused(tmp_path / "text.spz", "not a gzip stream")
    write_spz(tmp_path / "c.spz", make_splats(10, 1))
    raw = gzip.decompress((tmp_path / "c.spz").read_bytes())
    (tmp_path / "short.spz").write_bytes(gzip.compress(raw[:-5]))
    _refused(tmp_path / "short.spz", "truncated")
    (tmp_path / "v4.spz").write_bytes(gzip.compress(raw[:4] + struct.pack("<I", 4) + raw[8:]))
    _refused(tmp_path / "v4.spz", "version 4", "convert it to .ply")
    (tmp_path / "ext.spz").write_bytes(gzip.compress(raw[:14] + bytes([0x2]) + raw[15:]))
    _refused(tmp_path / "ext.spz", "extension records", "convert it to .ply")
    with pytest.raises(VoxsplatError, match="version 1"):
        write_spz(tmp_path / "v1.spz", make_splats(10, 1), version=1)
    assert not (tmp_path / "v1.spz").exists()
