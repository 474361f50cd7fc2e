"""Per-photo exposure: a colour correction per training view that takes up what differs
between the photos, so the Gaussians keep their mean appearance."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon import pipeline
from voxsplat.recon.appearance import ViewExposure
from voxsplat.recon.config import preset, with_steps
from voxsplat.recon.overrides import override


def test_view_exposure_starts_as_the_identity_and_pins_its_mean():
    exposure = ViewExposure(4)
    colors = torch.rand(2, 5, 6, 3)
    torch.testing.assert_close(exposure(colors, [3, 1]), colors)
    assert float(exposure.gauge_loss().detach()) == 0.0
    with torch.no_grad():
        exposure.matrices[0] *= 2.0  # one view brighter: the mean moves off the identity
        exposure.offsets[1] += 0.1
    torch.testing.assert_close(exposure(colors, [0, 1]),
                               torch.stack([2 * colors[0], colors[1] + 0.1]))
    assert float(exposure.gauge_loss().detach()) == pytest.approx(3 * 0.25**2 + 3 * 0.025**2)


@pytest.fixture(scope="module")
def exposed():
    """The synthetic outdoor scene with each training photo's colours scaled by its own
    gains (brightness and white balance); held-out views as rendered."""
    scene = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=10, n_test=3,
                                                 n_points=2000, sky=True,
                                                 elevation_deg=(5.0, 35.0))).scene
    g = torch.Generator().manual_seed(5)
    images, gains = list(scene.images), []
    for i in scene.split("train"):
        gain = torch.exp(torch.randn(3, generator=g) * 0.15 + torch.randn(1, generator=g) * 0.25)
        images[i] = (images[i].float() * gain).clamp(0, 255).round().to(torch.uint8)
        gains.append(gain)
    return replace(scene, images=tuple(images)), torch.stack(gains)


def test_exposure_takes_up_the_photos_differences(exposed, tmp_path):
    """Held-out PSNR without and with it: measured 19.25 / 20.93 dB (21.83 when the photos
    share one exposure); the learned brightness of each photo follows its gain."""
    scene, gains = exposed
    metrics = {}
    for on in (False, True):
        cfg = override(with_steps(preset("fast"), 400), f"optim.exposure={on}")
        metrics[on] = pipeline.reconstruct(scene, tmp_path / str(on), cfg, {"kind": "synthetic"},
                                           device="cpu", progress=False)
    assert metrics[True]["psnr"] > metrics[False]["psnr"] + 1.0, metrics
    ckpt = sorted((tmp_path / "True" / "checkpoints").iterdir())[-1]
    state = torch.load(ckpt, weights_only=False)["appearance"]
    learned = torch.diagonal(state["exposure.matrices"], dim1=1, dim2=2).mean(1)
    r = np.corrcoef(learned.numpy(), gains.mean(1).numpy())[0, 1]
    assert r > 0.8, (learned, gains.mean(1))
