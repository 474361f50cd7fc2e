"""Selecting cameras: every kind of index gives the same batch."""

from __future__ import annotations

import pytest
import torch

from voxsplat.data.cameras import Cameras


def _cams(C: int = 5) -> Cameras:
    cam_from_world = torch.eye(4).repeat(C, 1, 1)
    cam_from_world[:, 0, 3] = torch.arange(C, dtype=torch.float32)  # camera i sits at x = -i
    return Cameras(cam_from_world, torch.eye(3).repeat(C, 1, 1), torch.arange(C) + 10,
                   torch.arange(C) + 20)


@pytest.mark.parametrize("idx, expect", [(0, [0]), (4, [4]), (-1, [4]), (-5, [0]), ([3, 1], [3, 1]),
                                         (slice(1, 3), [1, 2]), (torch.tensor([2, 0]), [2, 0]),
                                         (torch.tensor([True, False, True, False, False]), [0, 2]),
                                         ([], [])])
def test_every_index_kind_selects_the_same_cameras_as_a_batch(idx, expect):
    sel = _cams()[idx]
    assert len(sel) == len(expect)
    assert sel.cam_from_world[:, 0, 3].tolist() == [float(i) for i in expect]
    assert sel.widths.tolist() == [10 + i for i in expect]
    assert sel.heights.tolist() == [20 + i for i in expect]
    assert sel.Ks.shape == (len(expect), 3, 3)


@pytest.mark.parametrize("idx", [5, -6])
def test_an_int_past_either_end_is_an_index_error(idx):
    with pytest.raises(IndexError, match=f"camera {idx} of 5"):
        _cams()[idx]


def test_with_size_sets_every_size_and_keeps_the_rest():
    cams = Cameras(torch.eye(4).repeat(2, 1, 1), torch.eye(3).repeat(2, 1, 1) * 50,
                   torch.tensor([64, 48]), torch.tensor([48, 64]))
    canvas = cams.with_size(64, 64)
    assert [canvas.size(i) for i in range(2)] == [(64, 64), (64, 64)]
    assert torch.equal(canvas.Ks, cams.Ks) and torch.equal(canvas.cam_from_world, cams.cam_from_world)
    assert [cams.size(i) for i in range(2)] == [(64, 48), (48, 64)]  # the original is unchanged


def test_rotation_vectors_turn_as_the_matrix_exponential_of_their_cross_product_matrix():
    """Rodrigues' formula (Taylor series below 0.01 rad): the same matrices and gradients as
    ``matrix_exp(skew(v))`` from 0 to 3 rad, in float64 to rounding, in float32 to its
    precision."""
    from voxsplat.data.cameras import rotvec_to_rotmat, skew
    g = torch.Generator().manual_seed(0)
    v = torch.randn(300, 3, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True) * torch.logspace(-8, 0.5, 300, dtype=torch.float64)[:, None]
    v[0] = 0.0
    v.requires_grad_(True)
    weights = torch.randn(3, 3, generator=g, dtype=torch.float64)
    ours, exp = rotvec_to_rotmat(v), torch.linalg.matrix_exp(skew(v))
    assert float((ours - exp).detach().abs().max()) < 1e-13
    g_ours, g_exp = (torch.autograd.grad((m * weights).sum(), v)[0] for m in (ours, exp))
    assert float((g_ours - g_exp).abs().max()) < 1e-12  # 0 included
    v32 = v.detach().float().requires_grad_(True)
    ours32 = rotvec_to_rotmat(v32)
    g32 = torch.autograd.grad((ours32 * weights.float()).sum(), v32)[0]
    assert float((ours32.double() - exp).detach().abs().max()) < 1e-6
    assert float((g32.double() - g_exp).abs().max()) < 1e-5
