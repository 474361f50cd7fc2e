"""The named training configs (`--preset`): complete `TrainConfig`s, each measured where it
differs from the defaults (see each one's docstring)."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..data.errors import VoxsplatError
from .config import DensifyConfig, OptimConfig, SkyConfig, TrainConfig, VoxelConfig, with_steps
from .depth.config import MvsConfig


def _dense(model: str = "gaussians") -> TrainConfig:
    """Dense captures on a GPU: the 3DGS schedule on 4-view batches, 7k steps (28k views).

    Measured on lego (H100): 4-view batches reach in 5k steps what 1-view steps reach in 15k,
    at 3 ms per view instead of 9 (bench/results/explore/). The voxel model adds per-Gaussian
    residuals (lr 2e-3) and decodes 16 Gaussians per voxel: on the H200, lego dense (100
    views) 32.73 -> 34.31 with residuals, 34.65 with both (explicit Gaussians 35.37).
    """
    cfg = with_steps(replace(TrainConfig(model=model), optim=replace(OptimConfig(), batch_size=4)),
                     7000)
    if model == "voxel":
        cfg = replace(cfg, voxel=replace(cfg.voxel, lr_residual=2e-3, gaussians_per_voxel=16))
    return replace(cfg, checkpoint_every=1000, sky=SkyConfig(mode="auto"))


def _fast(model: str = "gaussians") -> TrainConfig:
    """A few minutes on a CPU for small images: fewer steps, earlier and shorter growth."""
    cfg = TrainConfig(
        model=model,
        optim=OptimConfig(steps=2000, sh_degree=1, sh_degree_interval=500, lr_means=1.6e-4 * 4,
                          lr_means_final=1.6e-6 * 4),
        densify=DensifyConfig(refine_start=200, refine_stop=1400, refine_every=100,
                              reset_every=100_000, max_gaussians=60_000),
        checkpoint_every=500,
        sky=SkyConfig(mode="auto"),
    )
    return cfg


def _sparse(model: str = "voxel") -> TrainConfig:
    """Few views (3-12): the voxel model (with per-Gaussian residuals: the network alone
    underfits), MVS depth when there are no points or masks, its holes filled for the
    initial points (voxels exist only near points: without filling, fern 3-view at full
    resolution left most of the view empty), a depth loss, random backgrounds where the
    scene has masks (lego 8-view, explicit Gaussians: +0.5 dB), no free-floating
    densification, coarse-to-fine (see the end); 3000 steps of 1 view. The voxel model also
    drops Gaussians (rate up to 0.2), which explicit Gaussians do not: on the H200 it moved
    the voxel model by +1.1 / +0.7 / -0.4 dB on fern 3-view / lego 8-view / DTU scan24 3-view
    and explicit Gaussians by +0.5 / +0.2 / -2.7 (bench/results/README.md). Both models add
    the binocular consistency loss (weight 0.5): on the H200 it moved explicit Gaussians by
    +0.8 / +0.4 / +0.8 dB and the voxel model by +0.3 / +0.1 / 0.0. The voxel model starts
    from 5000 voxels, not 20000: larger voxels bridge the gaps of 3-view MVS points (H200
    protocol files: fern 20.70 -> 20.83, lego 22.41 -> 22.23, DTU 12.59 -> 13.32; a third of
    the Gaussians). Its depth holes take the farthest kept depth around them
    (`mvs.fill_far`): interpolation across DTU's white table put a curtain of filled points in
    front of the building (H200: DTU 13.32 -> 16.41, fern 20.83 -> 20.94). Both models add a
    mean-opacity penalty (weight 0.03) and the voxel model prunes voxels whose Gaussians stay
    below opacity 0.05: H200 protocol files, voxel 20.94 / 22.23 / 16.41 -> 21.12 / 23.40 /
    16.41, explicit 21.22 / 22.73 / 15.76 -> 21.68 / 23.51 / 17.05 (fern / lego / DTU). After
    two thirds of the steps the voxel model's Gaussians are baked and refined as explicit ones
    (`voxel.explicit_from`): H200 protocol files 21.12 / 23.40 / 16.41 -> 21.14 / 23.57 / 16.57
    and training 113-122 s -> 79-95 s (sweeps: switching at 0.5 or 0.8 gained less). The voxel
    model adds the unseen-view loss (`optim.pseudo_weight` 0.5; explicit Gaussians gained
    nothing from it): H200 protocol files 21.14 / 23.57 / 16.57 -> 21.59 / 23.74 / 15.76 (on
    DTU a mean -0.5 dB over three grid sizes; fern +0.5 in three measurements). Without its
    occlusion check (`optim.pseudo_occlusion`, now off by default), which shielded layers in
    front of the surface: 21.35 / 23.53 / 17.09. Turns up to 20 degrees instead of 10
    (`optim.pseudo_degrees`): 21.32 / 23.44 / 17.93. Both models then take a stronger
    unseen-view loss, weight 1.5 for 3 views and 1.5 (3 / views)^2 for more
    (`optim.pseudo_weight_views`, `optim.pseudo_weight_power`),
    turns up to the angle to the nearest training view's axis, at most 40 degrees
    (`optim.pseudo_neighbours`): voxel 21.25 / 23.88 / 18.80, explicit Gaussians 21.58 / 23.38 /
    16.70 -> 21.46 / 23.84 / 18.08. The voxel model then takes weight 2.0 for 3 views, 2.0
    (3 / views)^2.3 for more (lego still 0.21; explicit Gaussians lose 0.1-0.3 dB on DTU at
    2.0), and both models carve away the Gaussians outside the training silhouettes where the
    scene has masks (`optim.hull_carve`, lego): voxel fern / DTU 21.27 / 18.82 (sweeps, three
    seeds: DTU +0.03 to +0.12, fern +0.01 to +0.08), lego 23.97; explicit lego 23.77 (eighteenth
    session). Both also carve every 300 steps during training (`optim.hull_carve_every`): lego
    voxel / explicit 23.94 / 23.92 (nineteenth session; explicit +0.09 over three seeds). Both
    penalize the opacity of the Gaussians outside the silhouettes each step
    (`optim.hull_opacity_weight` 1.0): lego voxel / explicit 24.11 / 24.02 (twentieth session;
    voxel +0.17 over four seeds, explicit +0.03 over three). Coarse-to-fine then takes three
    levels, one where the training views have masks (`optim.coarse_levels_masked`): H200
    protocol files, voxel 21.27 / 24.11 / 18.82 -> 21.25 / 24.46 / 19.11, explicit 21.55 /
    24.02 / 18.00 -> 21.66 / 24.02 / 18.05 (fern / lego / DTU; twenty-first session). Where the
    training views have masks, the voxel model's explicit stage starts at half the steps and
    grows and prunes until 0.85 of them (`voxel.explicit_from_masked`,
    `voxel.explicit_refine_until_masked`): H200 protocol file, lego 24.46 -> 24.81 (explicit
    Gaussians 24.00; twenty-second session). The voxel model's lattice follows depth where
    the training views face forward (`voxel.lattice` auto; fern and DTU, not lego): H200,
    seeds 0-2, fern 3-view 21.48 / 21.57 / 21.58 (world lattice 21.25 mean), DTU scan24 3-view
    19.22 / 18.96 / 19.34 (19.01 mean; twenty-eighth session). Explicit Gaussians learn a sky
    where no training view has a mask, the voxel model only where also the farthest content
    barely moves across the training views (`SkyConfig.mode` far: fern, not DTU)."""
    return TrainConfig(
        model=model,
        mvs=MvsConfig(split="train", max_points=200_000, fill_stride=4, fill_far=True),
        optim=OptimConfig(steps=3000, sh_degree=1, sh_degree_interval=1000, depth_weight=0.1,
                          lr_means=1.6e-4 * 2, lr_means_final=1.6e-6 * 2, random_background=True,
                          coarse_levels=3, coarse_levels_masked=1, coarse_until=0.5,
                          binocular_weight=0.5,
                          opacity_weight=0.03, drop_rate=0.2 if model == "voxel" else 0.0,
                          pseudo_weight=2.0 if model == "voxel" else 1.5, pseudo_weight_views=3,
                          pseudo_weight_power=2.3 if model == "voxel" else 2.0,
                          pseudo_neighbours=True, pseudo_degrees=40.0, hull_carve=True,
                          hull_carve_every=300, hull_opacity_weight=1.0),
        densify=DensifyConfig(refine_start=300, refine_stop=1500, refine_every=100,
                              reset_every=100_000, max_gaussians=300_000),
        voxel=VoxelConfig(n_voxels=5000, refine_start=300, refine_stop=2000, refine_every=200,
                          lr_residual=2e-3, prune_opacity=0.05, explicit_from=0.67,
                          explicit_from_masked=0.5, explicit_refine_until_masked=0.85,
                          lattice="auto"),
        checkpoint_every=1000,
        sky=SkyConfig(mode="auto" if model == "gaussians" else "far"),
    )


PRESETS = {"dense": _dense, "fast": _fast, "sparse": _sparse}


def preset(name: str, model: str | None = None) -> TrainConfig:
    """The named preset config (see PRESETS), for `model` ("gaussians" | "voxel"; None = the
    preset's own): a preset may tune other fields per model (`sparse` and `dense` do)."""
    if name not in PRESETS:
        raise VoxsplatError(f"unknown preset '{name}'; choose one of auto, "
                            f"{', '.join(sorted(PRESETS))}")
    if model is not None and model not in ("gaussians", "voxel"):
        raise VoxsplatError(f"unknown model '{model}'; use gaussians or voxel")
    return PRESETS[name]() if model is None else PRESETS[name](model)


def auto_sparse_model(device_type: str) -> str:
    """The model `--preset auto` trains on few views: the voxel model on a GPU, explicit
    Gaussians on a CPU.

    H200, full resolution, the sparse preset, seed means (bench/results/README.md, twenty-sixth
    to twenty-ninth sessions), voxel against explicit Gaussians: lego 8-view 24.52 / 24.00,
    DTU scan24 3-view 19.17 / 18.03, fern 3-view 21.55 / 21.57 (a tie; the twenty-ninth
    session's pairs 21.57 / 21.55 against 21.51 / 21.59), in about 1.7x the time (fern 110 s
    against 66 s). So on a GPU the voxel model is never behind and 0.5-1.1 dB ahead where the
    views surround the object. Its network costs far more on a CPU (lego 8-view at a quarter of
    the size, 1500 steps: 759 s against 101 s, +1.0 dB), so a CPU keeps explicit Gaussians.
    """
    if device_type != "cuda":
        return "gaussians"
    from .backbone._spconv import cuda_build_available
    if not cuda_build_available():
        print("voxsplat: note: no CUDA build of spconv is installed, so these few views train "
              "explicit Gaussians; `pip install spconv-cu126` gives the voxel model", file=sys.stderr)
        return "gaussians"
    return "voxel"


def auto_preset(n_train_views: int, device_type: str) -> str:
    """The preset `--preset auto` picks: sparse for few views, else by device.

    CPU, explicit Gaussians, a quarter of the size, each preset's own schedule (forty-first
    session, bench/results/README.md), sparse / fast: 3 views fern 23.73 / 23.24, DTU 17.93 /
    12.50; lego 8 views 24.00 / 23.74; fern 9, 12, 17 views 27.05 / 27.14, 28.32 / 28.02,
    28.58 / 28.31, sparse taking twice the time. Above about 9 views the switch trades at
    most 0.3 dB for half the time. GPU (H100, forty-second and forty-third sessions), sparse
    (voxel model) / dense: fern 9 views 24.70 / 23.70, 12 views 24.93 / 24.60, 17 views 25.11 /
    25.54; lego 12 views 25.46 / 23.23, 24 views 28.28 / 30.13. Sparse leads at 12 on both
    and dense leads at 17 (fern) and 24 (lego): the switch stays at the largest count measured
    where both scenes favour sparse."""
    if n_train_views <= 12:
        return "sparse"
    return "dense" if device_type == "cuda" else "fast"
