"""The learned sky: a constant sky is a constant background, when a run learns one, and what
it gives on a synthetic outdoor scene (opaque photos with a sky at infinity), end to end."""

from dataclasses import replace

import imageio.v2 as imageio
import pytest
import torch

from voxsplat.data.cameras import Cameras
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon.app import run_eval, run_reconstruct
from voxsplat.recon.render_video import run_render
from voxsplat.recon.config import SkyConfig, preset, with_steps
from voxsplat.recon.overrides import override
from voxsplat.recon.pipeline import open_views, reconstruct
from voxsplat.recon.gaussians import init_splats, render_splats
from voxsplat.recon.sky import far_parallax, read_sky, wants_sky
from voxsplat.render.sky import SkyMap, sky_frame
from testkit import fit_cut_and_resumed


@pytest.fixture(scope="module")
def sky_scene():
    """Opaque views of the objects in front of a sky (no masks), cameras near the horizon."""
    return make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=10, n_test=3,
                                                n_points=2000, sky=True,
                                                elevation_deg=(5.0, 35.0))).scene


def test_a_constant_sky_renders_as_a_constant_background(sky_scene):
    splats = {k: v.detach() for k, v in init_splats(sky_scene, preset("fast").init, 1, 0).items()}
    splats["opacities"] = splats["opacities"] - 1.0  # see-through in places
    color = torch.tensor([0.2, 0.5, 0.7])
    sky = SkyMap(color.expand(8, 16, 3).clone(), sky_frame(torch.tensor([0.0, 0.0, 1.0])))
    cams = sky_scene.cameras[[0, 3]]
    a = render_splats(splats, cams, 1, color, "torch")
    b = render_splats(splats, cams, 1, sky, "torch")
    assert 0.05 < float((1 - a.alphas).mean()) < 0.95
    torch.testing.assert_close(b.colors, a.colors, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.alphas, a.alphas)


def test_a_sky_needs_views_without_masks(sky_scene):
    masked = make_synthetic_scene(SyntheticConfig(width=32, height=24, n_train=3, n_test=0,
                                                  n_points=100)).scene
    ids = [0, 1, 2]
    assert wants_sky(sky_scene, SkyConfig(mode="auto"), ids)
    assert wants_sky(sky_scene, SkyConfig(mode="on"), ids)
    assert not wants_sky(sky_scene, SkyConfig(mode="off"), ids)
    assert not wants_sky(masked, SkyConfig(mode="auto"), ids)
    with pytest.raises(VoxsplatError, match="sky.mode=off or auto"):
        wants_sky(masked, SkyConfig(mode="on"), ids)


def test_far_parallax_is_how_far_the_farthest_content_moves_across_the_views():
    """Cameras 0 and 1 side by side (1 unit apart), camera 2 one unit behind camera 0 (a
    baseline along its own axis: no parallax at the image centre); focal 100 px, 200 px wide.
    Content 10 units deep moves f * b / z = 10 px, 0.05 of the width, between 0 and 1."""
    K = torch.tensor([[100.0, 0, 100], [0, 100.0, 75], [0, 0, 1]])
    poses = torch.eye(4).repeat(3, 1, 1)
    poses[1, 0, 3], poses[2, 2, 3] = -1.0, 1.0  # centres (1, 0, 0) and (0, 0, -1)
    cams = Cameras(poses, K.expand(3, 3, 3).clone(), torch.full((3,), 200), torch.full((3,), 150))
    far = torch.full((150, 200), 10.0)
    assert far_parallax(cams, [far, far, far]) == pytest.approx(0.05)
    assert far_parallax(cams[[0, 2]], [far, far]) == pytest.approx(0.0)
    # the farthest content is each view's 95th-percentile depth, holes (0) left out
    near = far.clone()
    near[:, :180], near[:20] = 2.0, 0.0  # 10% of the known pixels at 10
    assert far_parallax(cams, [near, near, near]) == pytest.approx(0.05, rel=0.01)
    near[:, :195] = 2.0  # 2.5% at 10: the quantile lies on the near content
    assert far_parallax(cams, [near, near, near]) == pytest.approx(0.25, rel=0.01)
    # views without depth say nothing; with none, nothing is known
    assert far_parallax(cams, [torch.zeros(150, 200), far, far]) == pytest.approx(0.05)
    assert far_parallax(cams, [torch.zeros(150, 200)] * 3) is None
    assert far_parallax(cams[[0]], [far]) is None


@pytest.mark.filterwarnings("ignore:.*median depth")  # (the sky's, on purpose)
def test_the_far_mode_takes_a_sky_where_the_farthest_content_barely_moves(sky_scene, tmp_path):
    """`sky.mode far` (the voxel model's in `sparse`): the synthetic orbit's depth maps (its
    farthest content, the objects, moves across much of the image) give no sky; the same
    maps where the sky pixels have a depth far away (a depth sensor's, say) give one."""
    masked = make_synthetic_scene(SyntheticConfig(width=32, height=24, n_train=3, n_test=0,
                                                  n_points=100)).scene
    far = SkyConfig(mode="far")
    ids = [0, 1, 2]
    assert wants_sky(sky_scene, far, ids, 0.1) and wants_sky(sky_scene, far, ids, 0.3)
    assert not wants_sky(sky_scene, far, ids, 0.31) and not wants_sky(sky_scene, far, ids, None)
    assert not wants_sky(masked, far, ids, 0.0)  # (auto's rule first: no refusal either)
    synth = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=4, n_test=1,
                                                 n_points=500, sky=True,
                                                 elevation_deg=(5.0, 35.0)))
    cfg = replace(with_steps(preset("fast"), 2), backend="torch", sky=far)
    cfg = override(cfg, "optim.depth_weight=0")
    skies = {}
    for name, sky_depth in (("objects", 0.0), ("sky far away", 1e6)):
        depths = tuple(torch.where(d > 0, d, sky_depth) for d in synth.depths)
        scene = replace(synth.scene, depths=depths)
        metrics = reconstruct(scene, tmp_path / name.replace(" ", "_"), cfg,
                              {"kind": "path", "path": "synthetic"}, device="cpu", progress=False)
        skies[name] = metrics["sky"]
    assert skies == {"objects": False, "sky far away": True}


def test_the_sky_is_learned_kept_and_rendered(sky_scene, tmp_path):
    """Without a sky, Gaussians have to paint the sky at some depth and the held-out views
    fail (measured 12.3 dB); with it, the objects stand in front of the learned sky (21.8).
    The workspace keeps it (sky.pt) for eval and render; a run without one removes it."""
    data = write_blender_dataset(sky_scene, tmp_path / "input")
    ws = tmp_path / "ws"
    metrics = {}
    for mode in ("off", "on"):
        metrics[mode] = run_reconstruct(data, ws / mode, "fast", "cpu", steps=400, progress=False,
                                        overrides=[f"sky.mode={mode}"])
    assert metrics["on"]["psnr"] > metrics["off"]["psnr"] + 6.0, (metrics["on"]["psnr"], metrics["off"]["psnr"])
    assert read_sky(ws / "off") is None
    assert metrics["on"]["sky"] and not metrics["off"]["sky"]
    # without it Gaussians paint most of the sky; with it they leave it open (0.24 / 0.79)
    opens = metrics["off"]["open_fraction"], metrics["on"]["open_fraction"]
    assert opens[1] > 0.5 and opens[1] > opens[0] + 0.3, opens
    sky = read_sky(ws / "on")
    # the learned sky: blue above the horizon, darker and browner below it
    h = sky.texture.shape[0]
    above, below = sky.texture[: h // 2 - 2].reshape(-1, 3), sky.texture[h // 2 + 2:].reshape(-1, 3)
    assert float((above[:, 2] - above[:, 0]).max()) > 0.15
    assert float(below.mean()) < float(above.mean())
    # eval and render read the workspace's sky
    assert run_eval(ws / "on", device="cpu")["psnr"] == pytest.approx(metrics["on"]["psnr"], abs=1e-4)
    run_render(ws / "on", "orbit", 2, tmp_path / "frames", device="cpu")
    frame = torch.from_numpy(imageio.imread(tmp_path / "frames" / "frame_00000.png")).float() / 255
    assert float(frame.min(-1).values.ge(0.98).float().mean()) < 0.01  # no white holes
    # splat files take the sky on request, as Gaussians on a far sphere (export.backdrop)
    from voxsplat.recon.export.ply import read_ply
    from voxsplat.recon.pipeline import export
    n = len(read_ply(ws / "on" / "splats.ply")["means"])
    export(ws / "on", "ply", tmp_path / "with_sky.ply", sky=True)
    assert len(read_ply(tmp_path / "with_sky.ply")["means"]) == n + sky.texture.shape[0] * sky.texture.shape[1]
    with pytest.raises(VoxsplatError, match="learned no sky"):
        export(ws / "off", "splat", tmp_path / "none.splat", sky=True)
    # a fresh run without a sky in the same workspace leaves no stale sky.pt behind
    run_reconstruct(data, ws / "on", "fast", "cpu", steps=20, progress=False, overrides=["sky.mode=off"])
    assert read_sky(ws / "on") is None
def test_runs_without_a_sky_that_leave_views_open_get_a_note():
    assert "--set sky.mode=on" in " ".join(open_views({"open_fraction": 0.3, "sky": False}))
    assert open_views({"open_fraction": 0.3, "sky": True}) == []
    assert open_views({"open_fraction": 0.01, "sky": False}) == []
    assert open_views({}) == []  # metrics written before the field existed
    masked = " ".join(open_views({"open_fraction": 0.3, "sky": False, "masked_training": True}))
    assert "inside their masks" in masked and "sky.mode=on" not in masked  # (it is refused)


def test_a_resumed_run_continues_its_sky_and_exposures(sky_scene, tmp_path):
    cfg = replace(with_steps(preset("fast"), 60), backend="torch", checkpoint_every=20)
    cfg = override(cfg, "optim.exposure=true")
    full, resumed, _ = fit_cut_and_resumed(sky_scene, cfg, tmp_path, cut_at=50)
    assert full.sky is not None and resumed.steps == 60
    # the texture moved away from its uniform start
    assert float((full.sky.texture - full.sky.texture.mean((0, 1))).abs().max()) > 0.05
    torch.testing.assert_close(resumed.sky.texture, full.sky.texture, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(resumed.splats["means"], full.splats["means"], rtol=1e-4, atol=1e-5)
    last = [torch.load(sorted((tmp_path / run / "checkpoints").iterdir())[-1], weights_only=False)
            for run in ("full", "cut")]
    for name, value in last[0]["appearance"].items():  # sky texture and per-view exposures
        torch.testing.assert_close(last[1]["appearance"][name], value, rtol=1e-4, atol=1e-5)
    assert float((last[0]["appearance"]["exposure.matrices"] - torch.eye(3)).abs().max()) > 1e-4


def test_a_smooth_sky_fills_what_no_photo_saw(sky_scene, tmp_path):
    """The roughness term (`sky.smooth_weight`) gives the texels no training ray reaches the
    colours of their neighbours instead of the photos' mean: held-out views looking past the
    training views' sky gain (measured 23.4 -> 26.8 dB at weights 0.1-3), training views keep
    their fit (31.4 / 31.4)."""
    from voxsplat.recon.engine import Trainer
    from voxsplat.recon.pipeline import evaluate
    from voxsplat.render.sky import texture_roughness
    cpu = torch.device("cpu")
    got = {}
    for weight in (0.0, 0.3):
        cfg = replace(with_steps(preset("fast"), 400), backend="torch", checkpoint_every=0)
        cfg = replace(cfg, sky=replace(cfg.sky, mode="on", smooth_weight=weight))
        result = Trainer(sky_scene, cfg, tmp_path / str(weight), cpu).fit(progress=False)
        got[weight] = (evaluate(sky_scene, result.splats, "test", cpu, "torch", sky=result.sky)["psnr"],
                       evaluate(sky_scene, result.splats, "train", cpu, "torch", sky=result.sky)["psnr"],
                       float(texture_roughness(result.sky.texture)))
    (test0, train0, rough0), (test1, train1, rough1) = got[0.0], got[0.3]
    assert test1 > test0 + 1.5, got
    assert train1 > train0 - 0.5, got
    assert rough1 < 0.5 * rough0, got
