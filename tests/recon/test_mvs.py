"""Plane-sweep MVS on the synthetic scene: depth accuracy against ground truth, 3-view fused
points against the ground-truth mesh, the NCC fast path against its reference, outputs."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from voxsplat.data.cameras import Cameras
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.config import InitConfig
from voxsplat.recon.depth import (MvsConfig, compute_depths, depth_accuracy, depth_loss,
                                  mvs_preset, scene_with_points, write_depths)
from voxsplat.recon.depth.sweep import _patch_ncc_reference, patch_ncc, winner_take_all
from voxsplat.recon.depth.views import depth_bounds, select_neighbours
from voxsplat.recon.gaussians import init_splats


@pytest.fixture(scope="module")
def synth():
    """20 views of 160x120 around the objects (ground-truth depth and mesh included)."""
    return make_synthetic_scene(SyntheticConfig(width=160, height=120, n_train=20, n_test=0,
                                                n_points=4000))


@pytest.fixture(scope="module")
def three_views(synth):
    """View 0 and its two nearest cameras, without scene points (bounds from the cameras)."""
    centers = synth.scene.cameras.centers
    ids = (centers - centers[0]).norm(dim=1).argsort()[:3].tolist()
    scene = replace(synth.scene.subset(ids), points=None, point_colors=None)
    return scene, ids, compute_depths(scene, MvsConfig(), "cpu")


def _gt(synth, scene_ids, result):
    return torch.stack([synth.depths[scene_ids[i]] for i in result.view_ids])


def test_depth_maps_match_ground_truth(synth):
    result = compute_depths(synth.scene, mvs_preset("fast"), "cpu")
    acc = depth_accuracy(result.depths, _gt(synth, list(range(20)), result), tolerance=0.01)
    assert acc["accuracy"] >= 0.8, acc  # measured 0.92
    assert acc["coverage"] >= 0.5, acc  # measured 0.73 of the foreground pixels
    assert result.depths.shape == (20, 120, 160) and result.confidence.shape == (20, 120, 160)
    assert ((result.confidence > 0) == (result.depths > 0)).all()
    assert result.points.shape[0] > 5000 and result.colors.shape == result.points.shape


def test_three_views_give_points_on_the_surface(synth, three_views):
    scene, ids, result = three_views
    assert result.points.shape[0] > 1000
    surface = np.asarray(synth.mesh.sample(200_000))
    dist, _ = cKDTree(surface).query(result.points.numpy())
    assert np.median(dist) < 0.01, np.quantile(dist, [0.5, 0.9, 0.99])  # scene is ~2 units wide
    assert np.quantile(dist, 0.95) < 0.03, np.quantile(dist, [0.5, 0.9, 0.99])
    acc = depth_accuracy(result.depths, _gt(synth, ids, result))
    assert acc["accuracy"] >= 0.8 and acc["coverage"] >= 0.3, acc
    assert result.colors.std(0).min() > 0.05  # real colours, not a constant


def test_fused_points_initialize_training(three_views):
    scene, _, result = three_views
    with_points = scene_with_points(scene, result.points, result.colors)
    assert with_points.points.shape == result.points.shape and scene.points is None
    splats = init_splats(with_points, InitConfig(source="points"), sh_degree=1, seed=0)
    assert splats["means"].shape[0] == result.points.shape[0]
    with pytest.raises(VoxsplatError, match=r"expected points \[P,3\], got \("):
        scene_with_points(scene, result.points[:, :2], None)


def test_write_depths(three_views, tmp_path):
    _, _, result = three_views
    write_depths(result, tmp_path)
    for name, depth in zip(result.names, result.depths):
        assert np.array_equal(np.load(tmp_path / "depth" / f"{name}.npy"), depth.numpy())
        assert (tmp_path / "depth" / f"{name}.png").stat().st_size > 0
    from plyfile import PlyData
    assert len(PlyData.read(str(tmp_path / "points.ply"))["vertex"]) == len(result.points)
    assert not list(tmp_path.rglob("*.part*"))


@pytest.mark.parametrize("channels", [1, 3])
def test_patch_ncc_matches_reference(channels):
    gen = torch.Generator().manual_seed(0)
    ref = torch.rand(13, 17, channels, generator=gen)
    warped = torch.rand(2, 13, 17, 4, channels, generator=gen)
    warped[0, ..., 1, :] = 0.5 * ref + 0.2  # an affine copy correlates perfectly
    fast = patch_ncc(ref, warped, 5)
    torch.testing.assert_close(fast, _patch_ncc_reference(ref, warped, 5), atol=1e-5, rtol=0)
    assert fast[0, 2:-2, 2:-2, 1].min() > 0.999


def test_winner_take_all_finds_the_vertex_of_a_parabola():
    d = torch.arange(9.0)
    score = -(d - 3.3) ** 2
    pos, best, interior = winner_take_all(score.expand(2, 2, 9))
    torch.testing.assert_close(pos, torch.full((2, 2), 3.3))
    assert interior.all() and (best == score.max()).all()


def test_depth_loss():
    target = torch.tensor([[[2.0, 4.0], [0.0, 1.0]]])
    rendered = torch.tensor([[[2.0, 2.0], [5.0, 1.0]]])[..., None].requires_grad_()
    loss = depth_loss(rendered, target)
    torch.testing.assert_close(loss, torch.tensor(0.25 / 3))  # |1/2 - 1/4| over 3 valid
    loss.backward()
    assert rendered.grad[0, 1, 0, 0] == 0  # no target there
    weighted = depth_loss(rendered, target, torch.tensor([[[1.0, 0.0], [1.0, 1.0]]]))
    assert float(weighted.detach()) == 0.0
    assert float(depth_loss(rendered, torch.zeros_like(target)).detach()) == 0.0


def test_bounds_and_neighbours_without_points():
    """Parallel cameras on a line (no convergence point): bounds come from the baseline."""
    C = 4
    cam_from_world = torch.eye(4).repeat(C, 1, 1)
    cam_from_world[:, 0, 3] = -0.1 * torch.arange(C, dtype=torch.float32)  # centres at x = 0.1 i
    K = torch.tensor([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])
    cams = Cameras(cam_from_world, K.repeat(C, 1, 1), torch.full((C,), 100), torch.full((C,), 80))
    near, far = depth_bounds(cams, None, MvsConfig())
    torch.testing.assert_close(near, torch.full((C,), 100.0 * 0.1 / 50.0))  # 50 px disparity
    torch.testing.assert_close(far, 100.0 * near)  # down to 0.5 px
    neighbours = select_neighbours(cams, None, near, far, MvsConfig(n_neighbours=2))
    assert neighbours.shape == (C, 2) and not (neighbours == torch.arange(C)[:, None]).any()
    assert set(neighbours[0].tolist()) == {1, 2}  # the closest views share the most


def test_mvs_needs_two_views(synth):
    with pytest.raises(VoxsplatError, match="at least 2"):
        compute_depths(synth.scene.subset([0]).with_splits({"train": [0]}), MvsConfig())
    with pytest.raises(VoxsplatError, match="split"):
        compute_depths(synth.scene, MvsConfig(split="nope"))
    with pytest.raises(VoxsplatError, match="patch_size=4: use an odd size >= 3"):
        MvsConfig(patch_size=4)


def test_train_config_mvs_settings_reach_the_depth_stage(three_views, tmp_path):
    """`--set mvs.*` is typed, survives the workspace's JSON record (resume) and is what the
    pipeline's depth stage runs with (here: the working image size)."""
    import json
    from voxsplat.recon.config import TrainConfig, preset
    from voxsplat.recon.overrides import override
    from voxsplat.recon.pipeline import dense_depth_stage
    scene, _, _ = three_views
    cfg = override(override(preset("sparse"), "mvs.max_image_size=80"), "mvs.min_ncc=0.4")
    cfg = override(cfg, "depth=on")  # the synthetic scene has masks, which turn auto off
    assert cfg.mvs.max_image_size == 80 and cfg.mvs.min_ncc == 0.4 and cfg.mvs.split == "train"
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    _, depth = dense_depth_stage(scene.with_splits({"train": [0, 1, 2]}), cfg, tmp_path,
                                 torch.device("cpu"), progress=False)
    assert depth.depths.shape == (3, 60, 80)  # 160x120 views matched at 80 px
    assert (tmp_path / "points.ply").exists()


def test_push_pull_fill_keeps_depths_and_fills_holes_within_their_range():
    from voxsplat.recon.depth.fill import push_pull_fill
    H, W = 37, 50
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                          indexing="ij")
    plane = 1.0 / (0.5 + 0.004 * u + 0.002 * v)  # a plane's inverse depth is affine in pixels
    keep = torch.rand(H, W, generator=torch.Generator().manual_seed(0)) < 0.05
    keep[10:25, 15:40] = False  # and one large hole
    depths = torch.stack([torch.where(keep, plane, torch.zeros_like(plane)), torch.zeros(H, W)])
    filled = push_pull_fill(depths)
    assert torch.equal(filled[0][keep], plane[keep])  # kept depths are untouched
    assert (filled[0] > 0).all() and (filled[1] == 0).all()  # a view without depth stays empty
    lo, hi = plane[keep].min(), plane[keep].max()
    assert (filled[0] >= lo - 1e-5).all() and (filled[0] <= hi + 1e-5).all()
    rel = ((filled[0] - plane).abs() / plane)[~keep]
    # push-pull is smooth, not planar: measured median 1.7%, worst 16% (middle of the big hole)
    assert rel.median() < 0.03 and rel.max() < 0.25, (rel.median(), rel.max())


def test_far_fill_puts_holes_at_the_back_of_their_surroundings():
    """A hole between a near and a far kept region takes the far depth (never in front of
    what surrounds it); kept depths stay; a view without depth stays empty."""
    from voxsplat.recon.depth.fill import far_fill
    depths = torch.zeros(2, 16, 16)
    depths[0, :, :8] = 2.0   # near surface on the left
    depths[0, :, 12:] = 5.0  # far surface on the right; columns 8..11 are a hole
    depths[0, 3, 3] = 0.0    # a one-pixel hole inside the near surface
    filled = far_fill(depths)
    kept = depths[0] > 0
    assert torch.equal(filled[0][kept], depths[0][kept])
    assert (filled[0, :, 8:12] == 5.0).all()  # the gap goes behind, not in front
    assert filled[0, 3, 3] == 2.0  # a hole inside one surface takes that surface's depth
    assert (filled[1] == 0).all()


def test_fill_stride_adds_points_near_the_surface(synth, three_views):
    """3 views with hole filling: more points, and still mostly on the surface."""
    scene, _, sparse = three_views
    filled = compute_depths(scene, MvsConfig(fill_stride=4), "cpu")
    assert len(filled.points) > len(sparse.points) + 500
    assert filled.n_matched == sparse.n_matched == len(sparse.points)
    assert torch.equal(filled.depths, sparse.depths)  # the depth maps stay the filtered ones
    surface = np.asarray(synth.mesh.sample(200_000))
    dist, _ = cKDTree(surface).query(filled.points.numpy())
    assert np.median(dist) < 0.02, np.quantile(dist, [0.5, 0.9])


def test_few_matched_points_fall_back_to_bounds_whatever_the_filling(three_views, tmp_path,
                                                                     monkeypatch):
    """Interpolated points do not count: a sweep that matched too little warns and leaves
    the scene without points (initialization from the bounds)."""
    from voxsplat.recon import pipeline
    from voxsplat.recon.config import preset
    from voxsplat.recon.overrides import override
    scene, _, result = three_views
    scene = scene.with_splits({"train": [0, 1, 2]})
    cfg = override(override(preset("sparse"), "depth=on"), "mvs.fill_stride=2")
    cfg = override(cfg, "mvs.wide_baseline_retry=false")
    monkeypatch.setattr(pipeline, "MIN_MVS_POINTS", len(result.points) + 1)
    with pytest.warns(UserWarning, match="consistent points"):
        out, depth = pipeline.dense_depth_stage(scene, cfg, tmp_path, torch.device("cpu"), False)
    assert out.points is None and len(depth.points) > len(result.points) + 1
    monkeypatch.setattr(pipeline, "MIN_MVS_POINTS", len(result.points))
    out, depth = pipeline.dense_depth_stage(scene, cfg, tmp_path, torch.device("cpu"), False)
    assert len(out.points) == len(depth.points) > depth.n_matched == len(result.points)


def _record_sweeps(monkeypatch) -> list:
    """The MvsConfig of every sweep the depth stage runs from now on (they still run)."""
    from voxsplat.recon import pipeline
    real, seen = pipeline._sweep, []

    def sweep(scene, mvs, device, progress):
        seen.append(mvs)
        return real(scene, mvs, device, progress)

    monkeypatch.setattr(pipeline, "_sweep", sweep)
    return seen


def test_too_few_matched_points_retry_with_wide_baseline_settings(three_views, tmp_path,
                                                                   monkeypatch):
    from voxsplat.recon import pipeline
    from voxsplat.recon.config import preset
    from voxsplat.recon.overrides import override
    from voxsplat.recon.depth import wide_baseline
    scene, _, result = three_views
    scene = scene.with_splits({"train": [0, 1, 2]})
    cfg = override(preset("sparse"), "depth=on")
    seen = _record_sweeps(monkeypatch)
    pipeline.dense_depth_stage(scene, cfg, tmp_path, torch.device("cpu"), False)
    assert seen == [cfg.mvs]  # enough matched: one sweep
    seen.clear()
    monkeypatch.setattr(pipeline, "MIN_MVS_POINTS", len(result.points) + 1)
    out, depth = pipeline.dense_depth_stage(scene, cfg, tmp_path / "again", torch.device("cpu"),
                                            False)  # a new workspace: nothing kept to reuse
    relaxed = wide_baseline(cfg.mvs)
    assert seen == [cfg.mvs, relaxed] and relaxed.min_ncc < cfg.mvs.min_ncc
    assert relaxed.n_consistent == 1 and not relaxed.wide_baseline_retry
    # the relaxed sweep matches more on the synthetic scene, and that is what is kept
    assert depth.n_matched > len(result.points) and out.points is not None


def test_a_second_run_on_the_same_views_reuses_the_depth_maps(three_views, tmp_path,
                                                              monkeypatch):
    """The depth stage's result is kept in ws/cache/: the same views and MVS settings (a
    resumed run, or other training settings) reuse it; another image or setting sweeps."""
    from dataclasses import fields
    from voxsplat.recon import pipeline
    from voxsplat.recon.config import preset
    from voxsplat.recon.overrides import override
    scene = three_views[0].with_splits({"train": [0, 1, 2]})
    cfg = override(preset("sparse"), "depth=on")
    seen = _record_sweeps(monkeypatch)
    first = pipeline.dense_depth_stage(scene, cfg, tmp_path, torch.device("cpu"), False)[1]
    again = pipeline.dense_depth_stage(scene, override(cfg, "optim.pseudo_weight=0"), tmp_path,
                                       torch.device("cpu"), False)[1]
    assert len(seen) == 1 and (tmp_path / "cache" / "depth.pt").is_file()
    for f in fields(first):
        a, b = getattr(first, f.name), getattr(again, f.name)
        if f.name == "cameras":
            a, b = a.Ks, b.Ks
        assert (torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b), f.name
    brighter = list(scene.images)
    brighter[1] = (brighter[1].int() + 10).clamp(0, 255).byte()
    pipeline.dense_depth_stage(replace(scene, images=tuple(brighter)), cfg, tmp_path,
                               torch.device("cpu"), False)
    pipeline.dense_depth_stage(scene, override(cfg, "mvs.min_ncc=0.5"), tmp_path,
                               torch.device("cpu"), False)
    assert len(seen) == 3
    from voxsplat.recon.depth.cache import CACHE_FILE, load_depth  # a damaged cache: sweep again
    payload = torch.load(tmp_path / CACHE_FILE, weights_only=True)
    assert load_depth(tmp_path, payload["key"]) is not None
    for damaged in ({k: v for k, v in payload.items() if k != "cameras"},
                    payload | {"depths": payload["depths"][:, :10]}):
        torch.save(damaged, tmp_path / CACHE_FILE)
        assert load_depth(tmp_path, payload["key"]) is None


def test_hole_filling_is_for_the_voxel_model_only(three_views, tmp_path, monkeypatch):
    """Explicit Gaussians move to where they are needed; filled points cost them 0.8 dB on
    fern 3-view, so the depth stage fills only for the voxel model."""
    from voxsplat.recon import pipeline
    from voxsplat.recon.config import preset
    from voxsplat.recon.overrides import override
    scene = three_views[0].with_splits({"train": [0, 1, 2]})
    seen = []

    class Stop(Exception):
        pass

    def sweep(scene, mvs, device, progress):
        seen.append(mvs.fill_stride)
        raise Stop

    monkeypatch.setattr(pipeline, "_sweep", sweep)
    for model in ("voxel", "gaussians"):
        cfg = override(override(preset("sparse"), "depth=on"), f"model={model}")
        with pytest.raises(Stop):
            pipeline.dense_depth_stage(scene, cfg, tmp_path, torch.device("cpu"), False)
    assert seen == [preset("sparse").mvs.fill_stride, 0] and seen[0] > 0


def _cropped(scene, gt, crops):
    """`scene` with view i cropped to its top-left `crops[i]` = (w, h) (intrinsics unchanged),
    and the ground-truth depths [C,H,W] on a canvas of the largest crop (0 outside each)."""
    cams = scene.cameras
    Wc, Hc = max(w for w, _ in crops), max(h for _, h in crops)
    images, canvas = [], torch.zeros(len(crops), Hc, Wc)
    for i, (w, h) in enumerate(crops):
        images.append(scene.images[i][:h, :w].clone())
        canvas[i, :h, :w] = gt[i][:h, :w]
    widths = torch.tensor([w for w, _ in crops])
    heights = torch.tensor([h for _, h in crops])
    masks = None if scene.masks is None else tuple(m[:h, :w].clone() for m, (w, h) in
                                                   zip(scene.masks, crops))
    return replace(scene, images=tuple(images), masks=masks,
                   cameras=Cameras(cams.cam_from_world, cams.Ks, widths, heights)), canvas


def test_views_of_different_sizes_share_a_canvas(synth):
    """A photo folder with mixed sizes: each view is matched at its own size on a shared
    canvas. Views a few pixels smaller than the rest give what views of one size give; views
    cropped to landscape, square and portrait keep their accuracy and lose coverage where the
    crops took away the other views' overlap (measured 0.91 / 0.46 against 0.92 / 0.58 on the
    same pixels with uncropped views)."""
    scene = synth.scene.subset(list(range(12)))
    gt = torch.stack(synth.depths[:12])
    uniform = compute_depths(scene, mvs_preset("fast"), "cpu")
    ref = depth_accuracy(uniform.depths, gt, tolerance=0.01)
    nearly, gt_nearly = _cropped(scene, gt, [(160, 120), (158, 119), (160, 120), (157, 120)] * 3)
    acc = depth_accuracy(compute_depths(nearly, mvs_preset("fast"), "cpu").depths, gt_nearly)
    assert abs(acc["accuracy"] - ref["accuracy"]) < 0.01 and abs(acc["coverage"] - ref["coverage"]) < 0.01
    crops = [(160, 120), (120, 120), (90, 120), (160, 100)] * 3
    mixed, gt_canvas = _cropped(scene, gt, crops)
    result = compute_depths(mixed, mvs_preset("fast"), "cpu")
    assert [result.cameras.size(c) for c in range(12)] == crops
    assert result.depths.shape == (12, 120, 160)
    for c, (w, h) in enumerate(crops):
        assert result.depth_map(c).shape == (h, w)
        assert not result.depths[c, h:].any() and not result.depths[c, :, w:].any()
    acc = depth_accuracy(result.depths, gt_canvas, tolerance=0.01)
    assert acc["accuracy"] >= 0.85 and acc["coverage"] >= 0.4, acc
    # each view at most max_image_size on its longer side: the 160-wide views shrink to 120
    small = compute_depths(mixed, replace(mvs_preset("fast"), max_image_size=120), "cpu")
    assert [small.cameras.size(c) for c in range(12)] == [(120, 90), (120, 120), (90, 120), (120, 75)] * 3
    assert small.depths.shape == (12, 120, 120)


def test_auto_depth_runs_where_the_views_are_few_or_the_points_missing(synth, tmp_path,
                                                                       monkeypatch):
    """`depth=auto`: MVS for at most 12 training views (its maps supervise few-view runs) and,
    for more, only where the scene has no points (they start the Gaussians; random points in
    a real scene's bounds trained fern's 17 views to 5.6 dB) and no masks (visual hull)."""
    from voxsplat.recon import pipeline
    from voxsplat.recon.config import preset
    cfg = preset("fast")
    scene = replace(synth.scene, masks=None)  # 20 training views with the mesh's points
    bare = replace(scene, points=None, point_colors=None)
    assert scene.points is not None and len(scene.split("train")) == 20
    assert not pipeline.wants_depth(scene, cfg)
    assert pipeline.wants_depth(scene.with_splits({"train": list(range(12))}), cfg)
    assert pipeline.wants_depth(bare, cfg)
    assert not pipeline.wants_depth(replace(bare, masks=synth.scene.masks), cfg)
    seen = _record_sweeps(monkeypatch)
    thirteen = bare.with_splits({"train": list(range(13))})
    out, depth = pipeline.dense_depth_stage(thirteen, cfg, tmp_path, torch.device("cpu"), False)
    assert len(seen) == 1 and len(depth.view_ids) == 13
    assert out.points is not None and len(out.points) > pipeline.MIN_MVS_POINTS
    surface = np.asarray(synth.mesh.sample(200_000))
    dist, _ = cKDTree(surface).query(out.points.numpy())
    assert np.median(dist) < 0.02, np.quantile(dist, [0.5, 0.9])
