"""Explicit 3D Gaussians with SH colour: parameters, initialization and activation.

Parameters live in a ``torch.nn.ParameterDict`` with gsplat's names, in raw form:
``means [N,3]``, ``scales [N,3]`` (log std-dev), ``quats [N,4]`` (w,x,y,z), ``opacities [N]``
(logit), ``sh0 [N,1,3]``, ``shN [N,K-1,3]``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import torch
from torch import Tensor

from ..data.cameras import Cameras
from ..data.errors import VoxsplatError
from ..data.scene import Scene
from ..render.rasterize import RasterOutput, rasterize
from ..render.sh import RGB2SH
from ..render.sky import SkyMap, composite_sky
from .config import InitConfig


def knn_mean_dist(points: Tensor, k: int = 3) -> Tensor:
    """[P] mean distance of each point to its k nearest other points (fewer when there are
    not k others; NaN for a lone point), on the points' device and dtype.

    A k-d tree (scipy's cKDTree, exact, in float64, on the CPU): for the 92k MVS points of
    fern it takes 0.1 s where a chunked brute-force `cdist` took 28 s on two cores."""
    from scipy.spatial import cKDTree
    P = points.shape[0]
    if P == 0:
        return points.new_zeros(0)
    xyz = points.detach().double().cpu().numpy()
    kk = min(k + 1, P)  # the nearest is the point itself (or a duplicate at distance 0)
    dist, _ = cKDTree(xyz).query(xyz, k=kk, workers=-1)
    dist = torch.from_numpy(dist).reshape(P, kk)[:, 1:]
    return dist.mean(-1).to(device=points.device, dtype=points.dtype)


def splats_from_points(points: Tensor, colors: Tensor, sh_degree: int, opacity: float,
                       scale_factor: float = 1.0) -> torch.nn.ParameterDict:
    """Gaussians centred on `points [N,3]` with colours `colors [N,3]` in [0,1]."""
    N = points.shape[0]
    if N == 0:
        raise VoxsplatError("initialization produced no points; check the scene's cameras and masks")
    dist = knn_mean_dist(points).clamp_min(1e-7) * scale_factor
    K = (sh_degree + 1) ** 2
    g = torch.Generator().manual_seed(0)
    quats = torch.rand(N, 4, generator=g)
    return torch.nn.ParameterDict({
        "means": points.float().clone(),
        "scales": torch.log(dist)[:, None].repeat(1, 3),
        "quats": quats,
        "opacities": torch.logit(torch.full((N,), opacity)),
        "sh0": RGB2SH(colors.float().clamp(0, 1))[:, None, :],
        "shN": torch.zeros(N, K - 1, 3),
    })


def random_in_bounds(center: Tensor, radius: float, n: int, seed: int) -> Tensor:
    """[n,3] uniform points in the cube of half-size `radius` around `center`."""
    g = torch.Generator().manual_seed(seed)
    return center + (torch.rand(n, 3, generator=g) * 2 - 1) * radius


def visual_hull_points(scene: Scene, train_ids: list[int], resolution: int, n: int,
                       seed: int, radius: float, device="cpu",
                       shell: bool = True) -> tuple[Tensor, Tensor]:
    """Points inside every training silhouette (space carving), with colours.

    Voxels of a cube of half-size `radius` at the origin are kept when at least 3/4 of the
    training views see them and they project inside the mask of every view that does; only
    the shell of that hull is returned unless `shell` is False. Colours are the mean of the voxels' pixels.
    Views whose mask is empty are left out (one mistaken mask would empty the hull).

    Returns:
        points [n',3] (n' <= n) and colours [n',3] in [0,1].
    """
    lin = torch.linspace(-radius, radius, resolution, device=device)
    grid = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1).reshape(-1, 3)
    keep = torch.ones(grid.shape[0], dtype=torch.bool, device=device)
    color_sum = torch.zeros(grid.shape[0], 3, device=device)
    n_seen = torch.zeros(grid.shape[0], device=device)
    cams = scene.cameras.to(device)
    train_ids = [i for i in train_ids if bool(scene.masks[i].any())]
    for i in train_ids:
        uv, z, inside = _project(cams[i], grid)
        m = scene.masks[i].to(device)
        u = uv[:, 0].long().clamp(0, m.shape[1] - 1)
        v = uv[:, 1].long().clamp(0, m.shape[0] - 1)
        keep &= ~inside | m[v, u]
        img = scene.images[i].to(device).float() / 255.0
        color_sum += img[v, u] * inside[:, None]
        n_seen += inside.float()
    keep &= n_seen >= 0.75 * len(train_ids)  # voxels most views see, inside every silhouette
    if shell:
        keep &= _surface(keep.reshape(resolution, resolution, resolution)).reshape(-1)
    pts, cols = grid[keep], color_sum[keep] / n_seen[keep, None]
    pts, cols = pts.cpu(), cols.cpu()
    if pts.shape[0] > n:
        idx = torch.randperm(pts.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        pts, cols = pts[idx], cols[idx]
    jitter = (torch.rand(pts.shape, generator=torch.Generator().manual_seed(seed + 1)) - 0.5)
    return pts + jitter * (2 * radius / resolution), cols


def outside_silhouettes(points: Tensor, cams: Cameras, masks: Tensor) -> Tensor:
    """[P] True where a point projects outside the silhouette (`masks [C,H,W]`) of a camera
    that sees it: outside the visual hull of those views, so nothing should be there."""
    out = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    for i in range(len(cams)):
        uv, _, inside = _project(cams[i], points)
        u = uv[:, 0].long().clamp(0, masks.shape[2] - 1)
        v = uv[:, 1].long().clamp(0, masks.shape[1] - 1)
        out |= inside & ~masks[i][v, u]
    return out


def _surface(occ: Tensor) -> Tensor:
    """Occupied voxels of `occ [R,R,R]` with at least one empty 6-neighbour (the hull's shell)."""
    pad = torch.nn.functional.pad(occ[None, None].float(), (1, 1, 1, 1, 1, 1))
    full = -torch.nn.functional.max_pool3d(-pad, 3, stride=1)[0, 0]  # min over the 3x3x3 block
    return occ & (full < 1)


def _project(cam: Cameras, points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Pixels [P,2], depths [P] and in-image flags [P] of world points in one camera."""
    p = points @ cam.cam_from_world[0, :3, :3].T + cam.cam_from_world[0, :3, 3]
    z = p[:, 2]
    uv = (p @ cam.Ks[0].T)[:, :2] / z.clamp_min(1e-6)[:, None]
    W, H = cam.size(0)
    inside = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    return uv, z, inside


def scene_extent(cameras: Cameras) -> float:
    """gsplat's scene scale: 1.1 x the largest camera distance from the cameras' mean."""
    c = cameras.centers
    return 1.1 * float((c - c.mean(0)).norm(dim=-1).max().clamp_min(1e-6))


MIN_INIT_POINTS = 100
"""Fewer scene points than this seed no Gaussians where the masks' visual hull can: a masked
scene given with 5 points scored 10.9 dB at 200 steps, 19.9 from its hull."""


def auto_init_source(scene: Scene) -> str:
    """InitConfig.source "auto": "points" where the scene has them (at least
    `MIN_INIT_POINTS` of them, or no training view has a mask with a background pixel), else
    "masks" (the visual hull), else "bounds"."""
    n = 0 if scene.points is None else len(scene.points)
    masked = scene.masked("train")
    if n >= MIN_INIT_POINTS or (n > 0 and not masked):
        return "points"
    return "masks" if masked else "bounds"


def init_splats(scene: Scene, cfg: InitConfig, sh_degree: int, seed: int,
                device="cpu") -> torch.nn.ParameterDict:
    """Initial Gaussians for `scene` following `cfg.source` (see InitConfig)."""
    train_ids = list(scene.split("train"))
    source = auto_init_source(scene) if cfg.source == "auto" else cfg.source
    if source == "points":
        if scene.points is None:
            raise VoxsplatError(f"{scene.source}: --init points, but the scene has no points")
        colors = scene.point_colors if scene.point_colors is not None else torch.full_like(scene.points, 0.5)
        return splats_from_points(scene.points, colors, sh_degree, cfg.opacity, cfg.scale_factor)
    radius = _bounds_radius(scene)
    if source == "masks":
        if scene.masks is None:
            raise VoxsplatError(f"{scene.source}: --init masks, but the scene has no masks")
        pts, cols = visual_hull_points(scene, train_ids, cfg.hull_resolution, cfg.n_random, seed,
                                       radius, device)
        return splats_from_points(pts, cols, sh_degree, cfg.opacity, cfg.scale_factor)
    pts = random_in_bounds(torch.zeros(3), radius, cfg.n_random, seed)
    cols = torch.rand(pts.shape, generator=torch.Generator().manual_seed(seed + 2))
    return splats_from_points(pts, cols, sh_degree, cfg.opacity, cfg.scale_factor)


def _bounds_radius(scene: Scene) -> float:
    """Half-size of a cube at the origin holding what the cameras look at."""
    d = scene.cameras.centers.norm(dim=-1)
    return float(d.median()) * 0.6 if len(d) else 1.0


def render_splats(splats, cameras: Cameras, sh_degree: int,
                  background: Optional[Tensor] | SkyMap, backend: str = "auto",
                  opacity_scale: Optional[Tensor] = None) -> RasterOutput:
    """Render `splats` (raw form) into `cameras` (all of one size) in front of `background`: a
    colour [3] / [C,3], None (black) or a `SkyMap`; `opacity_scale [N]` multiplies the
    opacities (0 hides a Gaussian)."""
    colors = torch.cat([splats["sh0"], splats["shN"]], 1)
    W, H = cameras.size(0)
    opacities = torch.sigmoid(splats["opacities"])
    if opacity_scale is not None:
        opacities = opacities * opacity_scale
    sky = background if isinstance(background, SkyMap) else None
    out = rasterize(splats["means"], splats["quats"], torch.exp(splats["scales"]),
                    opacities, colors, cameras.cam_from_world, cameras.Ks, W, H,
                    sh_degree=sh_degree, background=None if sky is not None else background,
                    backend=backend)
    if sky is not None:
        out = replace(out, colors=composite_sky(out.colors, out.alphas, sky.render(cameras)))
    return out


def with_sh_degree(splats, degree: int) -> dict:
    """`splats` with SH bands up to `degree` exactly: the higher bands dropped (smaller files,
    colours that change less with the view), or zero bands added above theirs (the same
    colours, in the layout of a reader that expects that degree, as Inria's `load_ply`)."""
    keep = (degree + 1) ** 2 - 1
    shN = splats["shN"]
    if shN.shape[1] >= keep:
        return {**splats, "shN": shN[:, :keep]}
    pad = shN.new_zeros(shN.shape[0], keep - shN.shape[1], *shN.shape[2:])
    return {**splats, "shN": torch.cat([shN, pad], 1)}


def sh_degree_of(splats) -> int:
    """SH degree stored in `splats` (from the number of coefficients)."""
    K = 1 + splats["shN"].shape[1]
    return int(round(math.sqrt(K))) - 1


def finite_only(splats: dict, source: object) -> dict:
    """`splats` without the Gaussians that hold NaN or inf (a run that diverged), with a
    warning saying how many; a VoxsplatError naming `source` when none is left."""
    finite = torch.ones(len(splats["means"]), dtype=torch.bool)
    for v in splats.values():
        finite &= torch.isfinite(v.reshape(len(v), -1)).all(1).cpu()
    if bool(finite.all()):
        return dict(splats)
    if not bool(finite.any()):
        raise VoxsplatError(f"{source}: every Gaussian holds NaN or inf values (a run that "
                            f"diverged); nothing to show or export")
    import warnings
    warnings.warn(f"{source}: {int((~finite).sum())} of {len(finite)} Gaussians hold NaN or inf "
                  f"values (a run that diverged?); they are left out")
    return {k: v[finite.to(v.device)] for k, v in splats.items()}
