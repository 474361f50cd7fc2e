"""Masks that say nothing (all white, or on held-out views only) or too much (one empty
mask) change no mode and carve nothing. Where masks come from: `tests/data/test_mask_sources.py`."""

from __future__ import annotations

import warnings
from dataclasses import replace

import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.config import SkyConfig, TrainConfig
from voxsplat.recon.gaussians import auto_init_source, visual_hull_points
from voxsplat.recon.pipeline import wants_depth
from voxsplat.recon.sky import wants_sky


def test_masks_that_say_nothing_decide_no_mode():
    """All-white training masks (or masks on held-out views only) are not a masked scene:
    the schedule, init, depth and sky all ask `Scene.masked("train")`."""
    scene = make_synthetic_scene(SyntheticConfig(width=32, height=24, n_train=4, n_test=2)).scene
    white = tuple(torch.ones_like(m) for m in scene.masks)
    test_only = tuple(m if i in scene.split("test") else torch.ones_like(m)
                      for i, m in enumerate(scene.masks))
    assert scene.masked("train") and scene.masked("all")
    for masks in (white, test_only):
        unmasked = replace(scene, masks=masks)
        assert not unmasked.masked("train")
        assert auto_init_source(unmasked) == auto_init_source(replace(scene, masks=None))
        assert wants_depth(unmasked, TrainConfig()) == wants_depth(replace(scene, masks=None),
                                                          TrainConfig())
        assert wants_sky(unmasked, SkyConfig(mode="auto"), list(scene.split("train")))
    assert replace(scene, masks=test_only).masked("test")


def test_one_empty_mask_carves_nothing():
    """A view whose mask is empty (a mistake the loader warns about) no longer empties the
    visual hull or carves away all it sees."""
    scene = make_synthetic_scene(SyntheticConfig(width=48, height=36, n_train=6, n_test=1)).scene
    train = list(scene.split("train"))
    whole, _ = visual_hull_points(scene, train, 24, 100000, 0, 1.5, shell=False)
    masks = list(scene.masks)
    masks[train[0]] = torch.zeros_like(masks[train[0]])
    with warnings.catch_warnings():
        one_empty, _ = visual_hull_points(replace(scene, masks=tuple(masks)), train, 24, 100000,
                                          0, 1.5, shell=False)
    assert len(whole) > 100
    assert len(one_empty) >= len(whole)  # five silhouettes carve no more than six
