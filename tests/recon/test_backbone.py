"""spconv (through the one module that imports it, with its CPU shim) against dense conv3d."""

import pytest
import torch

pytest.importorskip("spconv")

from voxsplat.recon.backbone import SparseUNet, spconv, sparse_tensor  # noqa: E402


def _random_coords(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.unique(torch.randint(0, size, (n, 3), generator=g), dim=0)


def _dense(feats: torch.Tensor, coords: torch.Tensor, size: int) -> torch.Tensor:
    """[1,C,D,H,W] dense volume with `feats` at `coords`, zeros elsewhere."""
    vol = feats.new_zeros(1, feats.shape[1], size, size, size)
    vol[0, :, coords[:, 0], coords[:, 1], coords[:, 2]] = feats.T
    return vol


def _dense_weight(w: torch.Tensor) -> torch.Tensor:
    """spconv's [out,kD,kH,kW,in] weight as conv3d's [out,in,kD,kH,kW]."""
    return w.permute(0, 4, 1, 2, 3).contiguous()


@pytest.mark.parametrize("subm", [True, False])
def test_conv_matches_dense_conv3d_forward_and_backward(subm):
    sp = spconv()
    size, cin, cout = 10, 3, 5
    coords = _random_coords(150, size, 0)
    torch.manual_seed(0)
    conv = (sp.SubMConv3d if subm else sp.SparseConv3d)(cin, cout, 3, padding=1, bias=False,
                                                        indice_key="k")
    feats = torch.randn(coords.shape[0], cin, requires_grad=True)
    out = conv(sparse_tensor(feats, coords, [size] * 3))
    out_coords = out.indices[:, 1:].long()
    grad_out = torch.randn_like(out.features)
    (out.features * grad_out).sum().backward()

    feats_d = feats.detach().clone().requires_grad_(True)
    w_d = _dense_weight(conv.weight.detach()).requires_grad_(True)
    dense = torch.nn.functional.conv3d(_dense(feats_d, coords, size), w_d, padding=1)
    at = dense[0][:, out_coords[:, 0], out_coords[:, 1], out_coords[:, 2]].T
    if subm:  # submanifold: outputs exactly at the input sites
        assert torch.equal(torch.sort(out_coords[:, 0] * 100 + out_coords[:, 1] * 10 + out_coords[:, 2]).values,
                           torch.sort(coords[:, 0] * 100 + coords[:, 1] * 10 + coords[:, 2]).values)
    else:  # regular sparse conv: outputs at every site within reach of an input
        occ = _dense(torch.ones(len(coords), 1), coords, size)
        reach = torch.nn.functional.max_pool3d(occ, 3, stride=1, padding=1)[0, 0] > 0
        assert out_coords.shape[0] == int(reach.sum())
        assert bool(reach[out_coords[:, 0], out_coords[:, 1], out_coords[:, 2]].all())
    torch.testing.assert_close(out.features, at, rtol=1e-4, atol=1e-5)
    (at * grad_out).sum().backward()
    torch.testing.assert_close(feats.grad, feats_d.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(_dense_weight(conv.weight.grad), w_d.grad, rtol=1e-4, atol=1e-4)


def test_unet_keeps_the_input_voxels_and_trains():
    coords = _random_coords(300, 16, 1)
    torch.manual_seed(0)
    net = SparseUNet(8, width=8, levels=3)
    feats = torch.randn(coords.shape[0], 8, requires_grad=True)
    out = net(sparse_tensor(feats, coords, [16] * 3))
    assert out.shape == (coords.shape[0], 8)
    out.square().mean().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


def test_cpu_convolution_is_deterministic_on_several_threads():
    """spconv 2.3.8's CPU kernels race on several threads; `_spconv` runs them on one."""
    coords = _random_coords(3000, 24, 2)
    torch.manual_seed(0)
    net = SparseUNet(8, width=16, levels=2)
    feats = torch.randn(coords.shape[0], 8)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        with torch.no_grad():
            a = net(sparse_tensor(feats, coords, [24] * 3))
            b = net(sparse_tensor(feats, coords, [24] * 3))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a, b)
    assert torch.get_num_threads() == threads


def _count_pair_calls(monkeypatch) -> list:
    """Patch spconv's pair generators (native and implicit GEMM) to count their calls."""
    ops = __import__("spconv.pytorch.ops", fromlist=["ops"])
    calls = []
    for name in ("get_indice_pairs", "get_indice_pairs_implicit_gemm"):
        fn = getattr(ops, name)

        def counted(*a, _fn=fn, _name=name, **k):
            calls.append(_name)
            return _fn(*a, **k)
        monkeypatch.setattr(ops, name, counted)
    return calls


def test_unet_computes_each_levels_neighbour_pairs_once(monkeypatch):
    """One pair computation per level and per strided convolution: the decoder's blocks
    reuse the encoder's pairs of their level (spconv's `indice_key`)."""
    calls = _count_pair_calls(monkeypatch)
    coords = _random_coords(400, 20, 3)
    net = SparseUNet(6, width=8, levels=3)
    out = net(sparse_tensor(torch.randn(coords.shape[0], 6), coords, [24] * 3))
    assert out.shape == (coords.shape[0], 8)
    assert len(calls) == 5, calls  # three submanifold levels, two strided convolutions
