"""Typed configuration of the multi-view stereo (plane-sweep) depth stage, with presets."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...data.errors import VoxsplatError


@dataclass(frozen=True)
class MvsConfig:
    """Plane-sweep MVS: which views, how many hypotheses, how strict the filters are."""

    split: str = "train"
    """Scene split whose views get a depth map and serve as each other's neighbours
    ("all" for every view). Default "train", so held-out views never leak into training."""
    max_image_size: int = 640
    """Longer image side, in pixels, for matching; larger images are area-downscaled
    (default 640). Depth maps come out at this working resolution."""
    n_depths: int = 128
    """Depth hypotheses of the coarse sweep, uniform in inverse depth between the bounds
    (default 128; about one per pixel of disparity is enough, the fine sweeps do the rest)."""
    n_refine_depths: int = 8
    """Per-pixel hypotheses of each finer sweep around the current estimate (0 = off)."""
    refine_radius: float = 1.0
    """Half-width of the fine sweeps, in coarse inverse-depth steps (default 1.0)."""
    refine_iters: int = 3
    """Fine sweeps after the coarse one (default 3)."""
    refine_smooth: int = 5
    """Before each fine sweep the estimate is box-filtered over this many pixels (weighted by
    confidence), so NCC windows follow the surface rather than a fronto-parallel plane
    (1 = off; default 5)."""
    patch_size: int = 0
    """Side, in pixels, of the square NCC window (odd); 0 = auto: 5 for working images up to
    320 px on the longer side, 7 above (larger windows find more texture in large images,
    smaller ones bias slanted surfaces less in small images)."""
    grayscale: bool = False
    """Match luminance instead of RGB (about 3x less work, slightly less discriminative)."""
    n_neighbours: int = 4
    """Source views per reference view, picked by triangulation angle and overlap."""
    top_k: int = 2
    """The score of a hypothesis is the mean NCC of its best `top_k` sources: robust to
    occlusion in the others. With 3 views (2 sources) it asks both to agree, which rejects
    the repeated-texture matches a single pair cannot tell apart."""
    min_angle_deg: float = 1.0
    """In neighbour selection, sample points whose rays from the source and the reference meet
    at less than this angle (degrees) add nothing to the source's score. A view whose every
    source scores 0 still takes the ones with the nearest viewing direction (the tie rule of
    `views.select_neighbours`): this ranks sources, it does not refuse them."""
    best_angle_deg: float = 10.0
    """Triangulation angle (degrees) that scores best in neighbour selection."""
    min_ncc: float = 0.5
    """Pixels whose aggregated NCC at the best depth is below this are dropped (in [-1,1])."""
    min_texture: float = 0.01
    """Pixels whose reference window has an intensity std-dev below this (in [0,1] units)
    are dropped: they have nothing to match."""
    n_consistent: int = 2
    """A depth is kept when at least this many neighbours agree (capped at the neighbours
    available, so 3-view scenes still work)."""
    max_reproj_px: float = 1.0
    """Geometric consistency: reference -> neighbour -> reference round trip, in pixels."""
    max_rel_depth: float = 0.01
    """Geometric consistency: relative depth difference after the round trip."""
    depth_margin: float = 0.1
    """Bounds from scene points are their 1st/99th depth percentiles widened by this fraction."""
    fallback_range: tuple[float, float] = (0.5, 4.0)
    """Without points: near/far as multiples of the camera's depth of the point the optical
    axes converge on."""
    depth_chunk: int = 16
    """Hypotheses processed at once; memory grows linearly with it (GPU: 32-64 is fine)."""
    voxel_px: float = 1.0
    """Fusion merges points within a voxel this many pixels wide at the median depth
    (0 = keep every pixel's point)."""
    max_points: int = 1_000_000
    """The fused cloud is randomly subsampled to at most this many points."""
    fill_stride: int = 0
    """Pixels without a consistent depth get one interpolated from the kept depths around them
    (push-pull in inverse depth) on a grid of this step, added to the fused points (0 = off):
    initial points where the photos show surfaces MVS could not match (see fill.py). Used for
    the voxel model only: explicit Gaussians move to where they are needed."""
    fill_far: bool = False
    """Holes take the farthest kept depth around them instead of the interpolated one
    (`fill.far_fill`): interpolation across an untextured foreground (DTU's white table) put
    filled points between the camera and the object, a curtain the voxel model cannot move away.
    CPU, half size, 500 steps, voxel model: DTU scan24 3-view 13.52 -> 15.76, fern 3-view 21.58
    -> 21.83 (bench/results/README.md). On in the `sparse` preset: H200 protocol files, voxel
    DTU 13.32 -> 16.41, fern 20.83 -> 20.94, lego unchanged (no MVS there)."""
    use_masks: bool = False
    """Drop depth outside the scene's masks when it has them."""
    seed: int = 0
    """Seed for point subsampling."""
    wide_baseline_retry: bool = True
    """When the sweep matches too few points to build on (the trainer's threshold), run it
    again with `wide_baseline()` settings before giving up on MVS."""

    def __post_init__(self) -> None:
        if self.patch_size != 0 and (self.patch_size < 3 or self.patch_size % 2 == 0):
            raise VoxsplatError(f"MvsConfig.patch_size={self.patch_size}: use an odd size >= 3 "
                                "or 0 (auto)")
        if self.n_depths < 3 or self.n_refine_depths == 1 or self.n_refine_depths < 0:
            raise VoxsplatError("MvsConfig: n_depths must be >= 3 and n_refine_depths 0 or >= 2")
        if self.refine_iters < 0 or self.refine_smooth < 1:
            raise VoxsplatError("MvsConfig: refine_iters must be >= 0 and refine_smooth >= 1")
        if self.n_neighbours < 1 or self.top_k < 1 or self.n_consistent < 0:
            raise VoxsplatError("MvsConfig: n_neighbours and top_k must be >= 1, "
                                "n_consistent >= 0")
        if self.fill_stride < 0:
            raise VoxsplatError("MvsConfig.fill_stride must be >= 0 (0 = no hole filling)")
        if self.max_image_size < 8 or self.depth_chunk < 1:
            raise VoxsplatError("MvsConfig: max_image_size must be >= 8 and depth_chunk >= 1")
        lo, hi = self.fallback_range
        if not 0.0 < lo < hi:
            raise VoxsplatError(f"MvsConfig.fallback_range={self.fallback_range}: "
                                "need 0 < near < far")


def wide_baseline(cfg: MvsConfig) -> MvsConfig:
    """`cfg` relaxed for views far apart (DTU's 3-view protocol: ~30 degrees between views),
    where NCC windows distort and few depths agree: larger windows, a lower NCC threshold,
    one agreeing neighbour, looser round trips, finer sweeps and wider preferred angles.
    Measured on DTU scan24 (3 views, 400x300, CPU): 153 -> 9.4k fused points, 86% -> 94% of
    them inside the 49-view mask hull."""
    return replace(cfg, min_ncc=min(cfg.min_ncc, 0.3), n_consistent=min(cfg.n_consistent, 1),
                   max_reproj_px=max(cfg.max_reproj_px, 2.0),
                   max_rel_depth=max(cfg.max_rel_depth, 0.02), patch_size=11,
                   n_depths=max(cfg.n_depths, 192), best_angle_deg=max(cfg.best_angle_deg, 25.0),
                   wide_baseline_retry=False)


MVS_PRESETS: dict[str, MvsConfig] = {
    "default": MvsConfig(),
    "fast": MvsConfig(max_image_size=320, n_depths=48, n_refine_depths=6, grayscale=True),
}
"""Named configurations: the default (a GPU, or small images on a CPU) and a CPU-friendly
one (luminance, fewer hypotheses, images up to 320 px). Both work from 3 views: the
neighbour count, `top_k` and `n_consistent` are capped at the views available."""


def mvs_preset(name: str) -> MvsConfig:
    """The named MVS configuration (see MVS_PRESETS)."""
    if name not in MVS_PRESETS:
        raise VoxsplatError(f"unknown MVS preset '{name}'; choose one of "
                            f"{', '.join(sorted(MVS_PRESETS))}")
    return MVS_PRESETS[name]
