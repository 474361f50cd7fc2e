"""The depth stage from the input's own depth maps (`recon/depth/given.py`): points for
initialization and targets for the depth loss, in place of multi-view stereo."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon.depth.given import given_depths
from voxsplat.scripts.cli import main


@pytest.fixture(scope="module")
def synth():
    return make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=4, n_test=2,
                                                n_points=3000, supersample=1))


def test_points_lie_on_the_surface_with_the_photos_colours(synth):
    scene = replace(synth.scene, depths=synth.depths)
    depth = given_depths(scene, max_points=2000)
    train = scene.split("train")
    assert depth.view_ids == tuple(train) and 300 < len(depth.points) <= 2000
    nearest = torch.cdist(depth.points.double(), scene.points.double()).min(1).values
    extent = float((scene.points.max(0).values - scene.points.min(0).values).norm())
    assert float(nearest.median()) < 0.02 * extent  # on the surface the points sample
    for c, i in enumerate(train):
        assert torch.equal(depth.depth_map(c), synth.depths[i] * scene.masks[i])
    assert depth.colors.min() >= 0 and depth.colors.max() <= 1 and depth.colors.std() > 0.05


def test_points_stay_inside_the_masks(synth):
    """One view whose mask leaves out its left half: its points all project into the right."""
    scene = synth.scene
    i = scene.split("train")[0]
    cut = tuple(m.clone() for m in scene.masks)
    cut[i][:, :32] = False
    one = replace(scene, depths=synth.depths, masks=cut).with_splits({"train": (i,)})
    depth = given_depths(one, max_points=10**6)
    from voxsplat.recon.depth.views import project
    uv, z, _ = project(scene.cameras[[i]], depth.points)
    assert 0.25 < len(depth.points) / int(((synth.depths[i] > 0) & cut[i]).sum()) <= 1
    assert bool((uv[0, :, 0] > 31.9).all()) and bool((z > 0).all())


def test_reconstruct_uses_the_inputs_depth_instead_of_stereo(synth, tmp_path, monkeypatch):
    """A transforms.json scene with `depth_file_path`: no MVS runs, the depth loss's targets
    are the given maps (inside the masks), and metrics.json says where the depth came from."""
    scene = synth.scene
    data = write_blender_dataset(scene, tmp_path / "data")
    (data / "depth").mkdir()
    for split in scene.splits:
        path = data / f"transforms_{split}.json"
        meta = json.loads(path.read_text())
        meta["depth_unit_scale_factor"] = 1.0
        for frame in meta["frames"]:
            name = frame["file_path"].split("/")[-1][:-4]
            np.save(data / "depth" / f"{name}.npy", synth.depths[scene.names.index(name)].numpy())
            frame["depth_file_path"] = f"depth/{name}.npy"
        path.write_text(json.dumps(meta))

    def no_stereo(*args, **kwargs):
        raise AssertionError("multi-view stereo ran although the input has depth")
    monkeypatch.setattr("voxsplat.recon.depth.compute_depths", no_stereo)
    from voxsplat.recon import engine
    targets = []
    keep = engine._depth_targets
    monkeypatch.setattr(engine, "_depth_targets", lambda *a: targets.append(keep(*a)) or targets[-1])
    ws = tmp_path / "ws"
    assert main(["reconstruct", str(data), "--out", str(ws), "--preset", "sparse", "--model",
                 "gaussians", "--steps", "40", "--device", "cpu", "--quiet"]) == 0
    metrics = json.loads((ws / "metrics.json").read_text())
    assert metrics["depth_source"] == "input" and metrics["mvs_points"] > 300
    assert (ws / "points.ply").is_file() and not (ws / "depth").exists()  # maps not copied
    assert len(targets) == 1 and set(targets[0]) == set(scene.split("train"))
    for i, target in targets[0].items():  # the depth loss's targets: the given maps, masked
        assert torch.equal(target, synth.depths[i] * scene.masks[i])


def test_overlapping_views_give_one_point_per_footprint(synth):
    """A view listed twice adds no points: each pixel footprint keeps one."""
    scene = replace(synth.scene, depths=synth.depths)
    i = scene.split("train")[0]
    once = given_depths(scene.with_splits({"train": (i,)}), max_points=10**6)
    twice = given_depths(scene.with_splits({"train": (i, i)}), max_points=10**6)
    assert len(twice.points) == len(once.points) < int((synth.depths[i] > 0).sum())


def test_depth_maps_without_known_depth_are_refused_with_the_reason(synth):
    from voxsplat.data.errors import VoxsplatError
    scene = synth.scene
    with pytest.raises(VoxsplatError, match="all empty"):
        given_depths(replace(scene, depths=tuple(torch.zeros_like(d) for d in synth.depths)))
    with pytest.raises(VoxsplatError, match="know no depth inside their masks"):
        given_depths(replace(scene, depths=synth.depths,
                             masks=tuple(torch.zeros_like(m) for m in scene.masks)))


def test_depth_maps_in_other_units_than_their_file_says_get_a_warning(synth):
    """Metres read with the default millimetre scale: every seed 1000 times too near."""
    import warnings
    scene = replace(synth.scene, depths=synth.depths)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given_depths(scene)  # the right units: no word
    for factor, words in ((1e-3, r"1\d{3} times nearer"), (1e3, r"\d{3} times farther")):
        off = replace(scene, depths=tuple(d * factor for d in synth.depths))
        with pytest.warns(UserWarning, match=f"median depth .* {words} than what the cameras "
                                             f"look at"):
            given_depths(off)
