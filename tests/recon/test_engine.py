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


def test_resume_continues_from_last_checkpoint_and_matches(tiny_scene, tmp_path):
    cfg = _cfg(60)
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
