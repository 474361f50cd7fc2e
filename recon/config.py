"""Typed training configuration (the named presets: `presets`, importable from here too).

Every field carries its unit and default in its docstring. Presets are complete configs,
picked by name (``--preset``); command-line overrides produce a new frozen config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Callable, Literal

from ..data.errors import VoxsplatError
from .depth.config import MvsConfig


def _checker(config: object, prefix: str) -> Callable[[bool, str, str], None]:
    """need(ok, field, expected): a VoxsplatError naming `prefix.field` and its value unless
    `ok` (the configs check every field on creation: a bad --set fails before any work)."""
    def need(ok: bool, name: str, expected: str) -> None:
        if not ok:
            raise VoxsplatError(f"{prefix}{name}={getattr(config, name)!r}: expected {expected}")
    return need


def _rates(need, config: object, names: tuple[str, ...], expected: str = "a value >= 0") -> None:
    """Each of `names` finite and >= 0 (learning rates, weights, gradient thresholds)."""
    for name in names:
        value = getattr(config, name)
        need(math.isfinite(value) and value >= 0, name, expected)


def _fractions(need, config: object, names: tuple[str, ...]) -> None:
    """Each of `names` a fraction of the steps in [0, 1]."""
    for name in names:
        need(0 <= getattr(config, name) <= 1, name, "a fraction of the steps in [0, 1]")


@dataclass(frozen=True)
class InitConfig:
    """How the Gaussians start."""

    source: Literal["auto", "points", "masks", "bounds"] = "auto"
    """auto: scene points if present (at least 100 where there are masks), else the visual hull
    of the masks, else random in bounds."""
    n_random: int = 100_000
    """Number of Gaussians for the random (bounds) and visual-hull initializations."""
    opacity: float = 0.1
    """Initial opacity in (0,1)."""
    scale_factor: float = 1.0
    """Initial std-dev = factor x mean distance to the 3 nearest neighbours."""
    hull_resolution: int = 128
    """Voxels per side of the visual-hull carving grid."""

    def __post_init__(self) -> None:
        need = _checker(self, "init.")
        need(self.n_random >= 1, "n_random", "a number of Gaussians >= 1")
        need(0 < self.opacity < 1, "opacity", "an opacity in (0, 1)")
        need(math.isfinite(self.scale_factor) and self.scale_factor > 0, "scale_factor",
             "a factor > 0")
        need(self.hull_resolution >= 4, "hull_resolution", "at least 4 voxels per side")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer, loss and schedule (3DGS defaults)."""

    steps: int = 30_000
    """Total optimization steps."""
    batch_size: int = 1
    """Training views rendered per step."""
    pad_batches: bool = False
    """A batch takes views of its first view's size; with this, when too few are left, it is
    filled with views of other sizes on one canvas (each at the top-left, the rest not
    learned from), so photos of many sizes still train `batch_size` views per step. Off by
    default: on Sacre Coeur's 10 internet photos (`dense`, H200) it gave 11.30 dB held-out in
    178 s against 11.86 in 138 s without (2 held-out views; bench/results/)."""
    lr_means: float = 1.6e-4
    """Adam lr for centres, times the scene scale; decays exponentially to lr_means_final."""
    lr_means_final: float = 1.6e-6
    """Final lr for centres, times the scene scale."""
    lr_scales: float = 5e-3
    """Adam lr for log scales."""
    lr_quats: float = 1e-3
    """Adam lr for quaternions."""
    lr_opacities: float = 5e-2
    """Adam lr for opacity logits."""
    lr_sh0: float = 2.5e-3
    """Adam lr for the DC colour coefficient."""
    lr_shN: float = 2.5e-3 / 20
    """Adam lr for higher-order SH coefficients."""
    ssim_weight: float = 0.2
    """Loss = (1-w) L1 + w (1 - SSIM)."""
    sh_degree: int = 3
    """Final SH degree (0..3)."""
    sh_degree_interval: int = 1000
    """Steps between SH degree increments."""
    random_background: bool = False
    """Where the scene has masks (alpha), each step puts the training images on a random
    background colour outside them and renders on it: the object's silhouette is supervised
    and Gaussians outside it turn transparent."""
    hull_carve: bool = False
    """Where the scene has masks (and `random_background` loads them): the trained Gaussians
    whose centres project outside a training view's silhouette are left out (space carving:
    nothing outside the visual hull can be right). On in the sparse preset (eighteenth session,
    H200, lego 8-view): voxel 23.88 -> 23.97 (sweep 23.92 against 23.80-23.88), explicit
    Gaussians 23.84 -> 23.77 (sweep 23.85); on the CPU proxy (half size, 500 steps) +0.17 /
    +0.12 dB, where 37% of the test views' squared error lies outside the object, nearly all
    within 3 pixels of its silhouette."""
    hull_carve_every: int = 0
    """With `hull_carve`, also carve every this many steps during training (0 = only at the
    end): explicit Gaussians whose centres fall outside, and before the voxel model's explicit
    stage the voxels all of whose Gaussians do, so what stays can fill the silhouettes. 300 in
    the sparse preset (nineteenth session, H200 sweeps, lego 8-view, three seeds): explicit
    Gaussians 23.74 / 23.82 / 23.75 -> 23.91 / 23.81 / 23.87 (every 100: 23.89, 200: 23.83),
    voxel 23.94 / 23.86 -> 23.90 / 23.89 (no change beyond the spread); CPU proxy (half size,
    500 steps, every 50) explicit 21.48 -> 21.79, voxel 22.53 -> 22.60."""
    hull_opacity_weight: float = 0.0
    """With `hull_carve`: each step, weight x the opacity of the Gaussians whose centres fall
    outside a training silhouette, averaged over all Gaussians (0 = off). A soft carving the
    voxel network can learn (it cannot drop single Gaussians before its explicit stage). 1.0
    in the sparse preset for both models (twentieth session, H200 sweeps, lego 8-view): voxel
    seeds 0 / 1 / 2 / 3 23.90 / 23.89 / 23.88 / 23.71 -> 24.10 / 24.11 / 23.91 / 23.92 (+0.17;
    weight 0.3: 23.89, 2.0: 24.08 / 24.01, 3.0: 23.97), explicit Gaussians seeds 0 / 1 / 2
    23.91 / 23.81 / 23.87 -> 23.82 / 23.95 / 23.92 (+0.03). CPU proxy (half size, 500 steps):
    voxel 22.60 -> 22.69 / 22.87 / 22.81 at 0.3 / 1.0 / 3.0."""
    depth_weight: float = 0.0
    """Weight of the inverse-depth L1 against MVS depth maps (0 = off; needs the depth stage)."""
    opacity_weight: float = 0.0
    """Weight of the mean-opacity penalty (pushes unused Gaussians to transparency)."""
    drop_rate: float = 0.0
    """Each step hides each Gaussian with a probability rising linearly from 0 to this at the
    last step and scales the others' opacity by 1/(1 - rate) (DropGaussian, CVPR 2025: the
    Gaussians behind get gradients, which curbs overfitting on few views; 0 = off)."""
    coarse_levels: int = 0
    """Coarse-to-fine: training starts on images halved this many times (0 = full size
    throughout) and reaches full size at step `coarse_until` x steps, one level per stretch."""
    coarse_levels_masked: int = -1
    """`coarse_levels` for scenes whose training views have masks (-1 = `coarse_levels`): the
    silhouettes (carving, random backgrounds) already pin the shape, and such scenes gain from
    less coarse-to-fine while the others gain from more. H200, voxel model, sparse preset:
    lego 8-view (masks) seeds 0-3 at 2 levels 24.10 / 24.11 / 23.91 / 23.92, at 1 level
    24.46 / 24.07 / 24.12 / 24.02; DTU scan24 3-view (no training masks) at 1 level 18.85 /
    18.88 / 18.47 / 18.37 against 18.82 / 18.90 / 18.86 / 18.82 at 2, and 19.11 / 19.26 (seeds
    0 / 3) at 3 (bench/results/README.md, twenty-first session)."""
    coarse_until: float = 0.5
    """Fraction of the steps after which training runs at full size (with coarse_levels > 0)."""
    binocular_weight: float = 0.0
    """Weight of the binocular consistency loss (0 = off): each step also renders the training
    view's camera moved sideways, warps that image back through the rendered depth and
    compares it to the training image (L1), which penalizes wrong depth (Han et al., NeurIPS
    2024: no learned prior). Costs one more rasterization per step."""
    binocular_shift: float = 0.1
    """Largest sideways move of that camera, as a fraction of the median rendered depth
    (drawn uniformly in [-shift, shift] each step)."""
    binocular_from: float = 0.0
    """Fraction of the steps after which the binocular loss is on."""
    pseudo_weight: float = 0.0
    """Weight of the unseen-view consistency (0 = off): each step also renders the training
    view's camera turned about the point it looks at (up to `pseudo_degrees`), warps that
    image back into the training view through the rendered depth and compares it with the
    training image (L1; with `pseudo_occlusion`, only where the turned view sees the point);
    a general form of the binocular loss (any direction, rotation included). Rendered in the
    same rasterization call as the binocular view, shared with `pseudo_smooth_weight`. 0.5 in
    the sparse preset's voxel model (with `pseudo_occlusion` off, turns up to 20 degrees): H200
    protocol files fern 3-view 21.14 -> 21.32 dB, lego 8-view 23.57 -> 23.44, DTU scan24 3-view
    16.57 -> 17.93; 5-20 s more training. Explicit Gaussians gained nothing from it then (lego
    23.61, DTU 15.33 against 23.58 / 16.47, with the check; bench/results/README.md). Stronger
    on DTU scan24 3-view (H200 sweeps, sixteenth session): weight 1.5 at 30 degrees voxel
    18.64-18.87 (preset 18.06-18.18), explicit Gaussians 18.10 (16.70-17.14 without); weight
    1.0 at 30 degrees costs fern 0.5 and lego 0.5 dB. Since the seventeenth session the sparse
    preset, both models, uses 1.5 scaled by the view count (`pseudo_weight_views` 3,
    `pseudo_weight_power` 2) with turns limited by the neighbouring views (`pseudo_neighbours`,
    at most 40 degrees)."""
    pseudo_smooth_weight: float = 0.0
    """Weight of the depth smoothness of that unseen view (squared neighbour differences of
    the depth over the median depth, solid pixels; RegNeRF's geometry prior; 0 = off)."""
    pseudo_degrees: float = 10.0
    """Largest turn of the unseen view about the point the training view looks at (degrees).
    20 in the sparse preset's voxel model (fifteenth session): H200 protocol files fern / lego /
    DTU 21.35 / 23.53 / 17.09 -> 21.32 / 23.44 / 17.93; DTU sweeps over three grid sizes and
    two seeds 17.49-17.66 -> 18.06-18.18; 30 degrees DTU 18.17, lego 23.33
    (bench/results/README.md). 40 with `pseudo_neighbours` since the seventeenth session."""
    pseudo_neighbours: bool = False
    """Turn each training view at most by the angle between its optical axis and the nearest
    other training view's (and at most `pseudo_degrees`): the unseen views stay in the gaps
    between the training views (fern 3-view 2-7 degrees, lego 8-view 23-33, DTU 3-view 35-37).
    In the sparse preset (both models) with pseudo_weight 1.5, pseudo_weight_views 3,
    pseudo_weight_power 2 and at most 40 degrees: H200 protocol files (seventeenth session),
    voxel fern / lego / DTU 21.32 / 23.44 / 17.93 -> 21.25 / 23.88 / 18.80 (seed 1, sharing the
    GPU: 21.24 / 23.80 / 18.79), explicit Gaussians 21.58 / 23.38 / 16.70 -> 21.46 / 23.84 /
    18.08 (bench/results/README.md)."""
    pseudo_weight_views: int = 0
    """With N > 0, the unseen-view weight is pseudo_weight x min(1, N / training views): more
    views leave fewer unseen gaps to fill (0 = pseudo_weight for any number of views). 3 in the
    sparse preset, 3-view scenes take all of it."""
    pseudo_weight_power: float = 1.0
    """The power of that ratio: pseudo_weight x min(1, N / training views) ** power. 2 in the
    sparse preset (lego 8-view then gets 0.21 of the 1.5): H200, voxel, power 1 / 2, lego
    23.33 / 23.88 in protocol files, 23.33 / 23.80 with seed 1 (runs sharing the GPU); N = 2
    at power 1 (weight 0.375) 23.57, weight 2 at power 2 (0.28) 23.71, at power 2.4 (0.14)
    23.83. The voxel model's weight 2.0 takes power 2.3 in the preset: 0.21 for lego too."""
    pseudo_from: float = 0.0
    """Fraction of the steps after which the unseen-view losses are on."""
    exposure: bool = False
    """Learn a colour correction per training photo (a 3x3 matrix and an offset, starting at
    the identity, their mean pinned to it) applied to its render before the losses: photos
    taken with auto-exposure or by different cameras differ in brightness and white balance,
    which the Gaussians would otherwise absorb as view-dependent colour or floaters. Held-out
    views and exports show the mean appearance. CPU (thirty-second session): a synthetic scene
    whose training photos carry their own gains 19.25 -> 20.93 dB held out; Sacre Coeur (8
    internet photos, with the sky) 12.61 -> 12.55, since its held-out photos keep their own
    exposure."""
    lr_exposure: float = 1e-3
    """Adam lr of the per-photo colour corrections."""
    pose_refine: bool = False
    """Learn a small rigid correction of each training camera's pose with the Gaussians
    (`appearance.ViewPoses`; gsplat's `pose_opt`, nerfstudio's camera optimizer): poses from
    structure from motion carry errors of a fraction of a degree, which the Gaussians would
    otherwise blur over. A motion of all cameras together is not learned, so held-out views
    keep theirs; the corrected poses go to scene.json (`cam_from_world`; the input's stay as
    `cam_from_world_input`) and metrics.json says how far they moved (`pose_refinement`)."""
    lr_pose: float = 3e-5
    """Adam lr of the pose corrections (radians; translations in units of the scene extent).
    H200, kitchen (24 photos, COLMAP poses from `voxsplat poses`), `dense` preset, held-out
    PSNR / SSIM: without 17.58 / 0.605 in 153 s; lr 3e-4 15.16 / 0.312 in 286 s (the poses
    moved 0.48 degrees on average, 1.6M Gaussians against 0.8M); lr 3e-5 17.65 / 0.589 in
    247 s (0.03 degrees). CPU, kitchen at half size, `fast`, 1500 steps: 19.40 / 0.614 ->
    18.83 / 0.542 at 3e-4. Synthetic scene, poses 1 degree off, 2000 steps from step 0: lr
    3e-5 19.55 -> 23.35, 1e-4 24.02 (bench/results/explore/pose_refine_*)."""
    pose_from: float = 0.25
    """Fraction of the steps after which the poses are corrected: before it the Gaussians are
    too rough to say where a camera is, and exact poses drift (CPU, synthetic scene at 96x72,
    12 views, 600 steps, lr 3e-4, held-out PSNR against no refinement: poses exact 24.64 -> 22.50 /
    24.53 / 24.68 from 0 / 0.25 / 0.5; poses 1 degree off 20.17 -> 24.26 / 23.20 / 22.28;
    2000 steps from 0.25: exact 24.75 -> 24.13, 1 degree off 19.55 -> 23.70). On exact poses
    the corrections drift by about half a pixel (0.2-0.3 degrees at 96x72, each camera
    pitching the same way); larger images were not measured."""
    pseudo_occlusion: bool = False
    """Leave out of the unseen-view loss the training-view points that the turned view sees
    something more than 5% in front of (hidden from it). Off (the default): that something is
    penalized too (for small turns it is mostly a layer in front of the surface, which the
    check shields). Turning it off in the `sparse` preset's voxel model: H200 protocol files
    fern / lego / DTU 21.59 / 23.74 / 15.76 -> 21.35 / 23.53 / 17.09 (DTU sweeps over three
    grid sizes 15.8-16.9 -> 17.6-17.7; a 25% or 50% margin instead of 5% kept DTU at
    16.4-17.3; bench/results/README.md)."""

    def __post_init__(self) -> None:
        need = _checker(self, "optim.")
        for name in ("steps", "batch_size", "sh_degree_interval"):
            need(getattr(self, name) >= 1, name, "an integer >= 1")
        _rates(need, self, ("lr_means", "lr_means_final", "lr_scales", "lr_quats",
                            "lr_opacities", "lr_sh0", "lr_shN", "lr_exposure", "lr_pose",
                            "hull_opacity_weight", "depth_weight", "opacity_weight",
                            "binocular_weight", "binocular_shift", "pseudo_weight",
                            "pseudo_smooth_weight", "pseudo_weight_power"))
        need(0 <= self.ssim_weight <= 1, "ssim_weight", "a weight in [0, 1]")
        need(0 <= self.sh_degree <= 3, "sh_degree", "a degree 0 to 3")
        need(0 <= self.drop_rate < 1, "drop_rate", "a probability in [0, 1)")
        for name in ("hull_carve_every", "coarse_levels", "pseudo_weight_views"):
            need(getattr(self, name) >= 0, name, "an integer >= 0")
        need(self.coarse_levels_masked >= -1, "coarse_levels_masked",
             "-1 (coarse_levels' value) or an integer >= 0")
        _fractions(need, self, ("coarse_until", "binocular_from", "pseudo_from", "pose_from"))
        need(0 <= self.pseudo_degrees < 90, "pseudo_degrees", "an angle in [0, 90) degrees")


@dataclass(frozen=True)
class DensifyConfig:
    """Grow and prune schedule, as gsplat's DefaultStrategy (steps are absolute)."""

    prune_opacity: float = 0.005
    """Gaussians below this opacity are removed at each refinement."""
    grow_grad2d: float = 2e-4
    """Mean view-space gradient (in NDC units) above which a Gaussian is cloned or split."""
    grow_scale3d: float = 0.01
    """Above this largest scale (x scene scale) a Gaussian splits instead of cloning."""
    prune_scale3d: float = 0.1
    """Gaussians larger than this (x scene scale) are pruned after the first reset."""
    refine_start: int = 500
    """First refinement step."""
    refine_stop: int = 15_000
    """No refinement from this step on."""
    refine_every: int = 100
    """Steps between refinements."""
    reset_every: int = 3000
    """Steps between opacity resets."""
    max_gaussians: int = 3_000_000
    """Growth stops at this count."""

    def __post_init__(self) -> None:
        need = _checker(self, "densify.")
        need(0 <= self.prune_opacity < 1, "prune_opacity", "an opacity in [0, 1)")
        _rates(need, self, ("grow_grad2d", "grow_scale3d"))
        need(self.prune_scale3d > 0, "prune_scale3d", "a size > 0 (x scene scale)")
        for name in ("refine_start", "refine_stop"):
            need(getattr(self, name) >= 0, name, "a step >= 0")
        for name in ("refine_every", "reset_every", "max_gaussians"):
            need(getattr(self, name) >= 1, name, "an integer >= 1")


@dataclass(frozen=True)
class VoxelConfig:
    """The voxel model: a sparse grid whose voxels carry K Gaussians decoded by a spconv U-Net."""

    n_voxels: int = 20_000
    """Target number of voxels of the initial grid; sets the voxel size."""
    min_spacing_voxels: float = 2.0
    """The voxel size is at least this many times the points' median nearest-neighbour distance
    (sparse clouds: voxels bridge the gaps between points instead of isolating each one)."""
    lattice: Literal["world", "depth", "auto"] = "world"
    """Where the voxels lie: "world" (cubes of one size), "depth" (the mean training
    camera's perspective frame (x/z, y/z, log z): voxels of world size proportional to depth,
    each covering about as many pixels near as far; forward-facing scenes, every point in front
    of the cameras) or "auto" ("depth" when every training view looks within 45 degrees of
    their mean axis and every initial point lies in front of it, at least 1/20 of their median
    depth away; fern 0.60, DTU scan24 0.61). n_voxels and
    min_spacing_voxels apply in the lattice's frame; a grid from the bounds (no points, no
    masks) is always a world one. "auto" in the sparse preset: H200, seeds 0-2, fern 3-view
    21.25 -> 21.55 mean, DTU scan24 3-view 19.01 -> 19.17 (n_voxels 2500 / 10000 / 40000:
    21.30 / 21.58 / 21.04 at seed 0 against 21.48; twenty-eighth session)."""
    latent_dim: int = 32
    """Learnable features per voxel (network input)."""
    width: int = 32
    """U-Net channels at the finest level (x2, x4 below). H200, sparse preset (thirty-fifth
    session): 64 gives fern 3-view 21.46 / 21.50 and lego 8-view 24.64 / 24.42 (seeds 0 / 1;
    32: 21.48-21.58 and 24.37-24.82 over seeds)."""
    levels: int = 3
    """U-Net resolutions (1 = submanifold convolutions only)."""
    head_hidden: int = 128
    """Hidden units of the per-voxel decoding MLP (256: fern 21.49, lego 24.66, seed 0)."""
    gaussians_per_voxel: int = 8
    """K Gaussians decoded per voxel."""
    offset_voxels: float = 1.5
    """Gaussian centres stay within this many voxel sizes of their voxel's centre."""
    min_scale_voxels: float = 0.02
    """Smallest Gaussian std-dev, in voxel sizes."""
    max_scale_voxels: float = 2.0
    """Largest Gaussian std-dev, in voxel sizes."""
    init_scale_voxels: float = 0.4
    """Initial Gaussian std-dev, in voxel sizes."""
    init_opacity: float = 0.1
    """Initial opacity of the decoded Gaussians."""
    lr_net: float = 1e-3
    """Adam lr of the U-Net and head; decays exponentially to lr_net x lr_final_factor."""
    lr_latent: float = 5e-3
    """Adam lr of the per-voxel latents."""
    lr_color: float = 2.5e-3
    """Adam lr of the per-voxel base colour (SH DC)."""
    lr_residual: float = 0.0
    """Adam lr of per-Gaussian residuals on the decoded parameters (0 = none: the network
    alone decodes every Gaussian)."""
    init_at_points: bool = False
    """Each voxel's K Gaussians start at K of the initial points inside it (drawn at random,
    with replacement), with those points' colours, through the per-Gaussian residuals (needs
    `lr_residual` > 0; grids from points or masks), instead of at offsets shared by every
    voxel with the voxel's mean colour: they start on the surface the points describe, as
    explicit Gaussians do. Off in every preset (thirty-first session, H200 sweeps, sparse
    preset): fern 3-view seeds 0-2 21.54 / 21.70 / 21.53 (preset 21.48 / 21.57 / 21.58), with
    `init_scale_voxels` 0.25 21.66 / 21.55 / 21.55; DTU scan24 3-view with 0.25, seeds 0-3,
    19.44 / 19.13 / 19.26 / 19.31 (19.22 / 18.96 / 19.34 / 19.13: +0.13 mean), without it
    19.26 / 18.97; lego 8-view, whose points are visual-hull samples filling the volume,
    24.41 and with 0.25 24.43 / 24.16 (24.82 / 24.37)."""
    lr_final_factor: float = 0.1
    """Final / initial learning rate of the network, latents and colours."""
    refine_start: int = 500
    """First grow/prune step."""
    refine_stop: int = 15_000
    """No grow/prune from this step on."""
    refine_every: int = 200
    """Steps between grow/prune."""
    grow_grad2d: float = 4e-4
    """Voxels whose Gaussians' mean view-space gradient exceeds this get their free neighbours."""
    prune_opacity: float = 0.01
    """Voxels whose Gaussians all stayed below this opacity since the last refinement go."""
    grow_opacity: float = 0.0
    """Grown voxels' Gaussians start at most this opaque (their residual opacity lowered; 0 =
    as opaque as their parent's, whose copies they are; needs `lr_residual` > 0). The copies
    cost the training views 3-4 dB at each growth on a CPU proxy, yet at protocol scale 0.1
    gained nothing: H200, sparse preset, seed 0, DTU scan24 3-view 19.173 -> 19.176, lego
    8-view 24.650 -> 24.553 (fifty-first session)."""
    regrow_pruned: bool = True
    """Growth may fill the cells that the same refinement pruned (false, with grow_opacity
    0.1: DTU 19.175, lego 24.532)."""
    subdivide_at: int = 0
    """Step at which every voxel splits into 8 of half the size (0 = never)."""
    max_voxels: int = 300_000
    """Growth and subdivision stop at this count."""
    bake_min_opacity: float = 0.004
    """Baked (exported) Gaussians below this opacity are dropped."""
    free_gaussians: bool = False
    """Alongside the voxels, explicit Gaussians started as `--model gaussians` starts them
    (from the scene's points), optimized and densified by its rules and rendered with the
    decoded ones; the explicit stage takes both. Off in every preset: H200, sparse preset,
    fern 3-view 21.43 / 21.38 / 21.41 (seeds 0-2; 21.25 without), lego 8-view 24.00 / 24.08
    (24.82 / 24.37), DTU scan24 3-view 17.56 / 17.71 (19.11 / 18.90): the voxels' Gaussians
    turn transparent and are pruned (DTU 832 voxels instead of 7283), the free ones take over."""
    explicit_from: float = 0.0
    """Fraction of the steps after which the decoded Gaussians are baked and optimized
    directly as explicit ones (the 3DGS learning rates; densification only with
    `explicit_refine_until`) for the rest of the run: the voxel stage sets the geometry, the
    explicit stage fits detail (0 = never)."""
    explicit_refine_until: float = 0.0
    """With `explicit_from`: the explicit stage also grows and prunes (the `densify` rules:
    clone or split where the view-space gradient is high, drop the transparent, every
    `densify.refine_every` steps) from its start until this fraction of the steps (0, or not
    past `explicit_from` = never): Gaussians for detail beyond the K each voxel decodes."""
    explicit_from_masked: float = -1.0
    """`explicit_from` for scenes whose training views have masks (-1 = `explicit_from`)."""
    explicit_refine_until_masked: float = -1.0
    """`explicit_refine_until` for scenes whose training views have masks (-1 = the same):
    there the silhouettes carve away what growth puts outside the object; without them it adds
    floaters. H200, sparse preset, switch at 0.5 and grow until 0.85: lego 8-view (masks)
    seeds 0-3 24.82 / 24.37 / 24.47 / 24.41 against 24.46 / 24.07 / 24.12 / 24.02 (switch at
    0.5 without growth 24.49, at 0.4 with it 24.85); fern 3-view 21.03 and DTU scan24 3-view
    18.88 against 21.25 / 19.11 (at 0.67 and 0.85: 21.20 / 18.94; twenty-second session)."""

    def __post_init__(self) -> None:
        need = _checker(self, "voxel.")
        for name in ("n_voxels", "latent_dim", "width", "head_hidden", "gaussians_per_voxel",
                     "refine_every", "max_voxels"):
            need(getattr(self, name) >= 1, name, "an integer >= 1")
        need(1 <= self.levels <= 4, "levels", "1 to 4 U-Net resolutions")
        for name in ("min_spacing_voxels", "refine_start", "refine_stop", "subdivide_at",
                     "grow_grad2d", "lr_net", "lr_latent", "lr_color", "lr_residual"):
            need(getattr(self, name) >= 0, name, "a value >= 0")
        need(self.offset_voxels > 0.5, "offset_voxels", "a bound > 0.5 voxel sizes (the "
             "Gaussians start within half a voxel of its centre)")
        need(0 < self.min_scale_voxels < self.init_scale_voxels, "min_scale_voxels",
             f"a scale in (0, init_scale_voxels={self.init_scale_voxels})")
        need(self.init_scale_voxels < self.max_scale_voxels, "max_scale_voxels",
             f"a scale above init_scale_voxels={self.init_scale_voxels}")
        need(0 < self.init_opacity < 1, "init_opacity", "an opacity in (0, 1)")
        need(0 < self.lr_final_factor <= 1, "lr_final_factor", "a factor in (0, 1]")
        for name in ("prune_opacity", "bake_min_opacity", "grow_opacity"):
            need(0 <= getattr(self, name) < 1, name, "an opacity in [0, 1)")
        for name in ("explicit_from", "explicit_refine_until"):
            need(0 <= getattr(self, name) <= 1, name, "a fraction of the steps in [0, 1]")
        for name in ("explicit_from_masked", "explicit_refine_until_masked"):
            need(getattr(self, name) == -1 or 0 <= getattr(self, name) <= 1, name,
                 "-1 (the unmasked field's value) or a fraction of the steps in [0, 1]")


@dataclass(frozen=True)
class SkyConfig:
    """A learned sky behind the Gaussians (`render.sky`): where they leave a pixel open, it
    shows a colour looked up by the ray's direction, learned from the training photos, instead
    of the scene's constant background colour."""

    mode: Literal["auto", "far", "on", "off"] = "off"
    """on; off; auto: on when no training view has a mask (photos without alpha); far: auto,
    and the farthest content barely moves across the training views (`far_parallax`). auto in
    `fast`, `dense`, and `sparse` for explicit Gaussians (H100, forty-second session: fern
    21.49 -> 21.81, DTU 18.04 -> 18.18); far for `sparse`'s voxel model (H100, sixty-third:
    DTU 19.16 -> 18.82, and 18.54-18.85 with any one other setting changed). H200
    (thirty-second session, bench/results/README.md), held-out PSNR off -> on: kitchen 24
    views, dense,
    12.94 -> 18.23; fern 3-view, sparse, seeds 0 / 1, explicit 21.51 / 21.59 -> 21.83 / 21.91,
    voxel 21.48 / 21.57 -> 21.88 / 21.90; DTU scan24 3-view (masked), explicit 18.05 / 18.03 ->
    18.61 / 18.42, voxel 19.22 / 18.96 -> 18.71 / 18.73 (resolution 8 / 16, lr 2e-3: 18.78 /
    18.81 / 18.86); Sacre Coeur 8 internet
    photos, voxel 11.87 -> 12.32, explicit on the CPU (a quarter size, 600 steps) 11.60 ->
    12.61."""
    far_parallax: float = 0.3
    """`far` mode's bound on `recon.sky.far_parallax` (share of the image width). Fern 3-view
    0.09 (a sky gains the voxel model 0.35 dB), DTU scan24 3-view 1.46 (it loses 0.35)."""
    resolution: int = 32
    """Rows of the latitude-longitude texture (zenith to nadir); it has twice as many columns."""
    lr: float = 0.01
    """Adam lr for the texture's colour logits."""
    smooth_weight: float = 0.3
    """Weight of the texture's roughness in the loss (mean squared difference of neighbouring
    texels' colours, `render.sky.texture_roughness`): a sky varies slowly, and directions no
    photo saw take their neighbours' colours instead of the photos' mean. Held-out PSNR at 0
    -> 0.3 on the CPU (thirty-third session): the synthetic sky scene of tests/recon/test_sky.py
    23.40 -> 26.79 (0.1 / 1 / 3 / 10 / 100: 26.79 / 26.83 / 26.75 / 26.43 / 25.76, training
    views 31.4 up to 3); Sacre Coeur, 8 photos at a quarter size, explicit Gaussians, 600
    steps, 13.01 -> 13.11 (SSIM 0.459 -> 0.472). Not yet measured on the GPU protocols."""

    def __post_init__(self) -> None:
        need = _checker(self, "sky.")
        need(self.resolution >= 2, "resolution", "at least 2 rows")
        need(self.far_parallax >= 0, "far_parallax", "a share of the image width, at least 0")
        _rates(need, self, ("lr", "smooth_weight"))


@dataclass(frozen=True)
class TrainConfig:
    """Everything `voxsplat reconstruct` needs besides the input."""

    init: InitConfig = field(default_factory=InitConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    voxel: VoxelConfig = field(default_factory=VoxelConfig)
    mvs: MvsConfig = field(default_factory=lambda: MvsConfig(split="train", max_points=200_000))
    """The depth stage's plane-sweep settings (training views only, at most 200k fused points)."""
    sky: SkyConfig = field(default_factory=SkyConfig)
    model: Literal["gaussians", "voxel"] = "gaussians"
    """gaussians: explicit 3D Gaussians (dense views); voxel: sparse voxels decoding Gaussians."""
    depth: Literal["auto", "on", "off"] = "auto"
    """Dense MVS depth before training (points for init, maps for optim.depth_weight): auto runs
    it when the scene has no masks and either at most 12 training views (few views: the maps
    supervise) or no points (e.g. an LLFF folder or a transforms.json without a point cloud:
    random points in the bounds of a real scene train to 5-9 dB; fern, 17 views, CPU proxy
    5.56 dB). Depth maps that come with the input (`Scene.depths`) take its place unless this
    is off."""
    backend: Literal["auto", "gsplat", "torch"] = "auto"
    """Rasterizer backend."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (0 = only at the end)."""
    seed: int = 0
    """Random seed for initialization and view order."""
    downscale: float = 1.0
    """Input images are resized by this factor before training (`--downscale`; recorded for
    --resume and eval)."""

    def __post_init__(self) -> None:
        need = _checker(self, "")
        need(self.checkpoint_every >= 0, "checkpoint_every", "a number of steps >= 0 (0: at "
             "the end only)")
        need(0 <= self.seed < 2**31, "seed", "an integer in [0, 2^31)")
        need(0 < self.downscale <= 1, "downscale", "a factor in (0, 1] (give --downscale)")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        nested = {"init": InitConfig, "optim": OptimConfig, "densify": DensifyConfig,
                  "voxel": VoxelConfig, "mvs": MvsConfig, "sky": SkyConfig}
        d = dict(d)
        if "mvs" in d and "fallback_range" in d["mvs"]:  # JSON turns the tuple into a list
            d["mvs"] = {**d["mvs"], "fallback_range": tuple(d["mvs"]["fallback_range"])}
        known = {f.name: f for f in fields(TrainConfig)}
        unknown = [k for k in d if k not in known] + [
            f"{k}.{name}" for k, v in d.items() if k in nested and isinstance(v, dict)
            for name in v if name not in {f.name for f in fields(nested[k])}]
        if unknown:  # (a record of another voxsplat version, or edited by hand)
            raise VoxsplatError(f"the recorded config has settings this voxsplat does not know "
                                f"({', '.join(unknown[:4])}): it was made by another version; "
                                f"start over without --resume, or use that version")
        return TrainConfig(**{k: nested[k](**v) if k in nested else v for k, v in d.items()})

    @staticmethod
    def missing_fields(d: dict) -> list[str]:
        """The settings (`section.field`) a recorded config lacks, which `from_dict` fills
        with this version's defaults: a record of an older voxsplat, or edited by hand."""
        defaults = TrainConfig()
        missing = [f.name for f in fields(defaults) if f.name not in d]
        for f in fields(defaults):
            section = getattr(defaults, f.name)
            if is_dataclass(section) and isinstance(d.get(f.name), dict):
                missing += [f"{f.name}.{g.name}" for g in fields(section) if g.name not in d[f.name]]
        return missing


def for_scene(cfg: TrainConfig, masked: bool) -> TrainConfig:
    """`cfg` as it applies to a scene whose training views have masks (`masked`) or not: the
    `*_masked` fields, where set (>= 0), replace their plain counterparts."""
    if not masked:
        return cfg
    o, v = cfg.optim, cfg.voxel
    pick = lambda masked_value, value: masked_value if masked_value >= 0 else value  # noqa: E731
    return replace(cfg, optim=replace(o, coarse_levels=pick(o.coarse_levels_masked, o.coarse_levels)),
                   voxel=replace(v, explicit_from=pick(v.explicit_from_masked, v.explicit_from),
                                 explicit_refine_until=pick(v.explicit_refine_until_masked,
                                                            v.explicit_refine_until)))


def check_steps(steps: int, note: str = "") -> None:
    """Refuse a `--steps` of 0 or less (the message adds `note`, e.g. the command's default)."""
    if steps <= 0:
        raise VoxsplatError(f"--steps must be positive, got {steps}" + (f" ({note})" if note else ""))


def with_steps(cfg: TrainConfig, steps: int) -> TrainConfig:
    """Rescale every step-based schedule of `cfg` to a run of `steps` steps."""
    check_steps(steps)
    r = steps / cfg.optim.steps
    d = cfg.densify
    densify = replace(d, refine_start=max(1, round(d.refine_start * r)),
                      refine_stop=round(d.refine_stop * r),
                      refine_every=max(1, round(d.refine_every * r)),
                      reset_every=max(1, round(d.reset_every * r)))
    o = cfg.optim
    optim = replace(o, steps=steps, sh_degree_interval=max(1, round(o.sh_degree_interval * r)),
                    hull_carve_every=o.hull_carve_every and max(1, round(o.hull_carve_every * r)))
    v = cfg.voxel
    voxel = replace(v, refine_start=max(1, round(v.refine_start * r)),
                    refine_stop=round(v.refine_stop * r),
                    refine_every=max(1, round(v.refine_every * r)),
                    subdivide_at=round(v.subdivide_at * r))
    ckpt = cfg.checkpoint_every and max(1, round(cfg.checkpoint_every * r))
    return replace(cfg, optim=optim, densify=densify, voxel=voxel, checkpoint_every=ckpt)


# the named configs live in `presets` (they need the classes above); imported from here too
from .presets import PRESETS, preset  # noqa: E402,F401
