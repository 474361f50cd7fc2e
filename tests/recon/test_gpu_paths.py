"""On CUDA against the CPU: the depth stage with views of different sizes, and a learned sky
behind gsplat's render, gsplat's compressed PLY, padded batches (run with ``pytest -m gpu``)."""

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from voxsplat.data.cameras import Cameras
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.config import preset
from voxsplat.recon.depth import compute_depths, depth_accuracy, mvs_preset
from voxsplat.recon.gaussians import init_splats, render_splats
from voxsplat.render.sky import SkyMap, sky_frame

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_mixed_size_depth_stage_on_cuda_matches_the_cpu():
    """12 synthetic views cropped to landscape, square and portrait (as in test_mvs): the
    CUDA sweep gives the CPU's sizes, zeros outside each view and the same accuracy."""
    synth = make_synthetic_scene(SyntheticConfig(width=160, height=120, n_train=12, n_test=0,
                                                 n_points=4000))
    crops = [(160, 120), (120, 120), (90, 120), (160, 100)] * 3
    scene = synth.scene
    images = tuple(img[:h, :w].clone() for img, (w, h) in zip(scene.images, crops))
    cams = Cameras(scene.cameras.cam_from_world, scene.cameras.Ks,
                   torch.tensor([w for w, _ in crops]), torch.tensor([h for _, h in crops]))
    mixed = replace(scene, images=images, cameras=cams, masks=None)
    gt = torch.zeros(12, 120, 160)
    for i, (w, h) in enumerate(crops):
        gt[i, :h, :w] = synth.depths[i][:h, :w]
    cpu = compute_depths(mixed, mvs_preset("fast"), "cpu")
    gpu = compute_depths(mixed, mvs_preset("fast"), "cuda")
    assert [gpu.cameras.size(c) for c in range(12)] == crops
    for c, (w, h) in enumerate(crops):
        assert not gpu.depths[c, h:].any() and not gpu.depths[c, :, w:].any()
    a_cpu = depth_accuracy(cpu.depths, gt, tolerance=0.01)
    a_gpu = depth_accuracy(gpu.depths, gt, tolerance=0.01)
    assert abs(a_gpu["accuracy"] - a_cpu["accuracy"]) < 0.01, (a_gpu, a_cpu)
    assert abs(a_gpu["coverage"] - a_cpu["coverage"]) < 0.01, (a_gpu, a_cpu)


def test_sky_behind_gsplat_matches_the_reference():
    """Colours and the sky texture's gradient through gsplat's render and through the
    PyTorch reference on the CPU."""
    synth = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=2, n_test=0,
                                                 n_points=1500, sky=True))
    splats = {k: v.detach() for k, v in init_splats(synth.scene, preset("fast").init, 1, 0).items()}
    splats["opacities"] = splats["opacities"] - 1.0
    texture = torch.rand(8, 16, 3, generator=torch.Generator().manual_seed(0))
    frame = sky_frame(torch.tensor([0.1, 0.2, 1.0]))
    outs, grads = [], []
    for dev, backend in (("cpu", "torch"), ("cuda", "gsplat")):
        tex = texture.clone().to(dev).requires_grad_(True)
        out = render_splats({k: v.to(dev) for k, v in splats.items()}, synth.scene.cameras.to(dev),
                            1, SkyMap(tex, frame.to(dev)), backend)
        w = torch.linspace(0, 1, out.colors.numel(), device=dev).reshape(out.colors.shape)
        (out.colors * w).sum().backward()
        outs.append(out.colors.detach().cpu())
        grads.append(tex.grad.cpu())
    assert (outs[1] - outs[0]).abs().mean() < 1e-4 and (outs[1] - outs[0]).abs().max() < 2e-2
    assert (grads[1] - grads[0]).norm() <= 1e-3 * grads[0].norm()


def test_gsplat_compressed_ply_reads_as_ours(tmp_path):
    """gsplat's own compressed-PLY exporter (where gsplat is installed): our reader decodes
    its file to the Gaussians it was given, as it decodes ours, so the two layouts agree."""
    exporter = pytest.importorskip("gsplat.exporter")
    from voxsplat.recon.export.compressed_ply import read_compressed_ply, write_compressed_ply
    g = torch.Generator().manual_seed(0)
    n = 1000
    splats = {"means": torch.randn(n, 3, generator=g), "scales": torch.randn(n, 3, generator=g) - 3,
              "quats": torch.randn(n, 4, generator=g), "opacities": torch.randn(n, generator=g) + 2,
              "sh0": torch.randn(n, 1, 3, generator=g) * 0.5,
              "shN": torch.randn(n, 15, 3, generator=g) * 0.2}
    (tmp_path / "gsplat.ply").write_bytes(exporter.splat2ply_bytes_compressed(
        splats["means"], splats["scales"], splats["quats"], splats["opacities"],
        splats["sh0"][:, 0], splats["shN"].permute(0, 2, 1).reshape(n, -1)))
    write_compressed_ply(tmp_path / "ours.ply", splats)
    theirs, ours = read_compressed_ply(tmp_path / "gsplat.ply"), read_compressed_ply(tmp_path / "ours.ply")
    assert len(theirs["means"]) == len(ours["means"]) == n
    for decoded in (theirs, ours):  # the same Gaussians, found by position
        nearest = torch.cdist(decoded["means"], splats["means"]).argmin(1)
        assert len(set(nearest.tolist())) == n
        torch.testing.assert_close(decoded["means"], splats["means"][nearest], atol=5e-3, rtol=0)
        torch.testing.assert_close(decoded["shN"], splats["shN"][nearest], atol=8 / 256, rtol=0)
        torch.testing.assert_close(torch.sigmoid(decoded["opacities"]),
                                   torch.sigmoid(splats["opacities"][nearest]), atol=3e-3, rtol=0)
        q = torch.nn.functional.normalize(splats["quats"][nearest], dim=1)
        assert float(((decoded["quats"] * q).sum(1).abs() - 1).abs().max()) < 1e-3


def test_padded_batches_train_on_gsplat():
    """Views of several sizes on one canvas through gsplat: each view's pixels show what a
    render at its own size shows, and a few padded training steps learn (the dense preset's
    path for internet photos)."""
    from voxsplat.recon.engine import TrainData, Trainer
    from voxsplat.recon.pipeline import evaluate
    synth = make_synthetic_scene(SyntheticConfig(width=96, height=72, n_train=8, n_test=2,
                                                 n_points=3000))
    scene = synth.scene
    sizes = [(96 - 8 * (i % 4), 72 - 6 * ((i * 3) % 4)) for i in range(len(scene))]
    cams = scene.cameras
    scene = replace(scene, images=tuple(im[:h, :w] for im, (w, h) in zip(scene.images, sizes)),
                    cameras=Cameras(cams.cam_from_world, cams.Ks, torch.tensor([w for w, _ in sizes]),
                                    torch.tensor([h for _, h in sizes])))
    data = TrainData(scene, list(scene.split("train")), "cuda", seed=0, pad=True)
    splats = {k: v.detach().cuda() for k, v in init_splats(scene, preset("fast").init, 1, 0).items()}
    cams_b, _, _, _, group, valid = data.sample(4)
    assert valid is not None
    out = render_splats(splats, cams_b, 1, torch.ones(3, device="cuda"), "gsplat").colors
    for b, i in enumerate(group):
        w, h = scene.cameras.size(i)
        alone = render_splats(splats, scene.cameras[i:i + 1].to("cuda"), 1,
                              torch.ones(3, device="cuda"), "gsplat").colors[0]
        assert float((out[b, :h, :w] - alone).abs().mean()) < 2e-3
    from voxsplat.recon.config import with_steps
    cfg = replace(with_steps(preset("dense"), 300), checkpoint_every=10_000)
    cfg = replace(cfg, optim=replace(cfg.optim, pad_batches=True))
    result = Trainer(scene, cfg, Path(tempfile.mkdtemp()),
                     torch.device("cuda")).fit(progress=False)
    held_out = evaluate(scene, {k: v.detach() for k, v in result.splats.items()}, "test",
                        torch.device("cuda"), "gsplat")["psnr"]
    assert held_out > 18.0, held_out


def test_moved_gaussians_on_cuda_render_as_before_through_gsplat():
    """`export --frame input` on CUDA tensors: Gaussians (SH degree 3) carried by a similarity
    with a turn and a mirror render, through gsplat, as before from cameras carried alike, and
    the CUDA transform equals the CPU one."""
    import math
    from voxsplat.recon.export.frame import transform_splats
    from voxsplat.render.camera_paths import look_at
    g = torch.Generator().manual_seed(0)
    n = 2000
    splats = {"means": torch.randn(n, 3, generator=g) * 0.5,
              "scales": torch.randn(n, 3, generator=g) * 0.5 - 3.0,
              "quats": torch.randn(n, 4, generator=g), "opacities": torch.randn(n, generator=g) + 1,
              "sh0": torch.randn(n, 1, 3, generator=g), "shN": torch.randn(n, 15, 3, generator=g) * 0.4}
    a = math.radians(63.0)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = 2.5 * torch.tensor([[math.cos(a), 0, math.sin(a)], [0, -1.0, 0],
                                    [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64)
    T[:3, 3] = torch.tensor([0.3, -1.2, 4.0])
    poses = torch.stack([look_at([3 * math.cos(t), 3 * math.sin(t), 1.0], [0, 0, 0], [0, 0, 1])
                         for t in (0.3, 1.1, 2.0)])
    K = torch.tensor([[140.0, 0, 80], [0, 140.0, 60], [0, 0, 1]]).repeat(3, 1, 1)
    cams = Cameras(poses, K, torch.full((3,), 160), torch.full((3,), 120))
    cuda = {k: v.cuda() for k, v in splats.items()}
    moved = transform_splats(cuda, T)
    for key, value in transform_splats(splats, T).items():
        assert torch.allclose(moved[key].cpu(), value, atol=1e-5), key
    before = render_splats(cuda, cams.to("cuda"), 3, torch.zeros(3, device="cuda"), "gsplat").colors
    after = render_splats(moved, cams.transformed(T.float()).to("cuda"), 3,
                          torch.zeros(3, device="cuda"), "gsplat").colors
    assert float(before.std()) > 0.1
    assert float((after - before).abs().max()) < 5e-3, float((after - before).abs().max())
