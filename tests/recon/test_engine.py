"""The optimization loop on a tiny synthetic scene: it learns, checkpoints and resumes exactly."""

from dataclasses import replace

import pytest
import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.config import preset, with_steps
from voxsplat.recon.engine import Trainer
from voxsplat.recon.pipeline import evaluate


@pytest.fixture(scope="module")
def tiny_scene():
    cfg = SyntheticConfig(width=64, height=48, n_train=8, n_test=2, n_points=2000, supersample=1)
    return make_synthetic_scene(cfg).scene


def _cfg(steps):
    cfg = with_steps(preset("fast"), steps)
    return replace(cfg, backend="torch", checkpoint_every=20)


def test_training_improves_held_out_psnr(tiny_scene, tmp_path):
    cfg = _cfg(150)
    trainer = Trainer(tiny_scene, cfg, tmp_path, torch.device("cpu"))
    from voxsplat.recon.gaussians import init_splats
    init = {k: v.detach() for k, v in init_splats(tiny_scene, cfg.init, cfg.optim.sh_degree, 0).items()}
    before = evaluate(tiny_scene, init, "test", torch.device("cpu"), "torch")["psnr"]
    result = trainer.fit(progress=False)
    after = evaluate(tiny_scene, {k: v.detach() for k, v in result.splats.items()}, "test",
                     torch.device("cpu"), "torch")["psnr"]
    assert result.steps == 150
    assert after > before + 3.0, (before, after)
    assert after > 18.0


@pytest.mark.parametrize("random_background", [False, True])
def test_resume_continues_from_last_checkpoint_and_matches(tiny_scene, tmp_path, random_background):
    cfg = _cfg(60)
    cfg = replace(cfg, optim=replace(cfg.optim, random_background=random_background))
    full = Trainer(tiny_scene, cfg, tmp_path / "full", torch.device("cpu")).fit(progress=False)

    def interrupt(step, _):
        if step == 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_scene, cfg, tmp_path / "cut", torch.device("cpu")).fit(progress=False, on_step=interrupt)
    ckpts = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert ckpts == ["step_000020.pt", "step_000040.pt"]
    resumed = Trainer(tiny_scene, cfg, tmp_path / "cut", torch.device("cpu")).fit(resume=True, progress=False)
    assert resumed.steps == 60
    for k in full.splats:
        torch.testing.assert_close(resumed.splats[k], full.splats[k], rtol=1e-4, atol=1e-5)


def _alpha_outside_masks(scene, splats, ids) -> float:
    from voxsplat.recon.gaussians import render_splats
    cams, bg = scene.cameras, torch.tensor(scene.background)
    vals = []
    for i in ids:
        out = render_splats(splats, cams[i], 1, bg, "torch")
        vals.append(out.alphas[0].reshape(-1)[~scene.masks[i].reshape(-1)].mean())
    return float(torch.stack(vals).mean())


def test_random_background_supervises_the_silhouette(tiny_scene, tmp_path):
    """On a white background, white Gaussians outside the object cost nothing; on random
    backgrounds they do, so the rendered alpha outside the masks drops."""
    base = replace(_cfg(400), init=replace(_cfg(400).init, source="bounds", n_random=3000))
    on = replace(base, optim=replace(base.optim, random_background=True))
    alpha = {}
    for name, cfg in (("white", base), ("random", on)):
        splats = Trainer(tiny_scene, cfg, tmp_path / name, torch.device("cpu")).fit(progress=False).splats
        alpha[name] = [_alpha_outside_masks(tiny_scene, splats, tiny_scene.split(s))
                       for s in ("train", "test")]
    # measured: train views 0.36 -> 0.03, held-out views 0.54 -> 0.38
    assert alpha["random"][0] < 0.3 * alpha["white"][0], alpha
    assert alpha["random"][1] < alpha["white"][1] - 0.05, alpha
