"""Grow/prune surgery keeps parameters and Adam moments aligned; the schedule fires as set."""

import torch

from voxsplat.recon.config import DensifyConfig
from voxsplat.recon.strategy import ops
from voxsplat.recon.strategy.default import DefaultStrategy


def _splats(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.ParameterDict({
        "means": torch.randn(n, 3, generator=g), "scales": torch.randn(n, 3, generator=g) - 3,
        "quats": torch.randn(n, 4, generator=g), "opacities": torch.randn(n, generator=g),
        "sh0": torch.randn(n, 1, 3, generator=g), "shN": torch.randn(n, 3, 3, generator=g)})
    opts = {k: torch.optim.Adam([v], lr=1e-2) for k, v in p.items()}
    loss = sum((v * (i + 1)).sum() for i, v in enumerate(p.values()))
    loss.backward()
    for o in opts.values():
        o.step()
    return p, opts


def _moment(opts, name):
    o = opts[name]
    return o.state[o.param_groups[0]["params"][0]]["exp_avg"]


def test_duplicate_appends_copies_with_zero_moments():
    p, opts = _splats()
    before = p["means"].detach().clone()
    m_before = _moment(opts, "means").clone()
    mask = torch.tensor([True, False, True, False, False, False])
    ops.duplicate(p, opts, mask)
    assert p["means"].shape[0] == 8
    torch.testing.assert_close(p["means"][6:], before[[0, 2]])
    torch.testing.assert_close(_moment(opts, "means")[:6], m_before)
    assert _moment(opts, "means")[6:].abs().sum() == 0
    assert opts["means"].param_groups[0]["params"][0] is p["means"]


def test_split_samples_inside_and_shrinks():
    p, opts = _splats()
    p["scales"].data[:] = -2.0
    mask = torch.tensor([False, True, False, False, True, False])
    src = p["means"].detach()[mask].clone()
    ops.split(p, opts, mask, torch.Generator().manual_seed(0))
    assert p["means"].shape[0] == 8  # 4 kept + 2x2 new
    new = p["means"][4:].detach().reshape(2, 2, 3)
    assert ((new - src[None]).norm(dim=-1) < 6 * torch.exp(torch.tensor(-2.0))).all()
    torch.testing.assert_close(p["scales"][4:].detach(), torch.full((4, 3), -2.0 - torch.log(torch.tensor(1.6)).item()))
    assert _moment(opts, "scales").shape[0] == 8


def test_remove_and_reset_opacity():
    p, opts = _splats()
    keep_means = p["means"].detach()[[1, 2, 3, 4]].clone()
    ops.remove(p, opts, torch.tensor([True, False, False, False, False, True]))
    torch.testing.assert_close(p["means"].detach(), keep_means)
    ops.reset_opacity(p, opts, 0.01)
    assert torch.sigmoid(p["opacities"]).max() <= 0.01 + 1e-6
    assert _moment(opts, "opacities").abs().sum() == 0


def test_strategy_grows_high_gradient_and_prunes_transparent():
    p, opts = _splats(n=4)
    p["scales"].data[:] = -6.0  # small: clone rather than split
    p["opacities"].data[:] = torch.tensor([3.0, 3.0, 3.0, -8.0])  # last is transparent
    cfg = DensifyConfig(refine_start=0, refine_every=1, refine_stop=100, reset_every=1000, grow_grad2d=1e-3)
    strat = DefaultStrategy(cfg)
    state = strat.initialize_state(4, scene_scale=1.0, device="cpu")
    means2d = torch.zeros(1, 4, 2, requires_grad=True)
    (means2d * torch.tensor([[1.0], [0.0], [0.0], [0.0]])).sum().backward()  # grad only on #0
    radii = torch.tensor([[3, 3, 3, 3]], dtype=torch.int32)
    report = strat.step_post_backward(p, opts, state, 1, means2d, radii, 100, 100)
    assert report["cloned"] == 1 and report["split"] == 0 and report["pruned"] == 1
    assert p["means"].shape[0] == 4 and state.grad2d.shape[0] == 4
