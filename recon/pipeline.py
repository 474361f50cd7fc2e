"""The product's operations on a workspace: reconstruct, evaluate, render a video, export.

Each is a plain function the CLI calls in one line; all outputs are written atomically.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..data.atomic import check_output_file
from ..data.cameras import nearest_view_angles
from ..data.errors import VoxsplatError
from ..data.scene import Scene
from ..render.metrics import SSIM_WINDOW, psnr, ssim
from ..render.sky import SkyMap
from .config import TrainConfig
from .engine import Trainer, resolve_device
from .export.frame import (frame_scale, input_from_world, is_identity, similarity_parts,
                           transform_normals, transform_points, transform_splats)
from .export.ply import read_ply, write_ply
from .export.splat import write_splat
from .gaussians import render_splats, sh_degree_of, with_sh_degree
from .sky import SKY_PT, write_sky
from . import distributed
from . import workspace as wsp


def reconstruct(scene: Scene, out: Path, cfg: TrainConfig, input_spec: dict, device: str = "auto",
                resume: bool = False, progress: bool = True, on_step=None) -> dict:
    """Optimize Gaussians for `scene` into workspace `out`; returns the metrics written."""
    out = Path(out)
    dev = resolve_device(device)
    if resume:  # scene.json stands (poses refined by a finished run included)
        rec = wsp.open_workspace(out)
        cfg = TrainConfig.from_dict(rec["config"])
        check_resumed_views(scene, rec, out)
    out.mkdir(parents=True, exist_ok=True)
    if distributed.is_main() and not resume:
        wsp.write_json(out / wsp.SCENE_JSON, wsp.scene_record(scene, input_spec, cfg.to_dict()))
    scene, depth = _depth_stage_on_main(scene, cfg, out, dev, progress)
    result = Trainer(scene, cfg, out, dev, depth).fit(resume=resume, progress=progress, on_step=on_step)
    if not distributed.is_main():  # the replicas are identical: rank 0 writes and evaluates
        return distributed.broadcast_object()
    splats = result.splats
    if result.train_cameras is not None:  # learned pose corrections: scene.json keeps them
        ids = list(scene.split("train"))
        rec = wsp.with_refined_poses(wsp.read_json(out / wsp.SCENE_JSON), [scene.names[i] for i in ids],
                                     result.train_cameras.cam_from_world)
        wsp.write_json(out / wsp.SCENE_JSON, rec)
        scene = wsp.scene_with_record_poses(scene, rec)
    write_ply(out / wsp.SPLATS_PLY, splats)
    write_splat(out / wsp.SPLATS_SPLAT, splats)
    if result.sky is not None:
        write_sky(out, result.sky)
    metrics = evaluate(scene, splats, measured_split(scene), dev, cfg.backend, sky=result.sky)
    metrics.update(steps=result.steps, train_seconds=result.train_seconds,
                   peak_gpu_mem_mb=result.peak_gpu_mem_mb, device=_device_name(dev),
                   model=result.model, n_voxels=result.n_voxels,
                   mvs_points=None if depth is None else int(len(depth.points)),
                   mvs_matched_points=None if depth is None else depth.n_matched,
                   depth_source=None if depth is None else (
                       "input" if scene.depths is not None and cfg.depth != "off" else "mvs"))
    if result.pose_refinement is not None:
        metrics["pose_refinement"] = result.pose_refinement
    if distributed.active():
        metrics["world_size"] = distributed.world_size()
    wsp.write_json(out / wsp.METRICS_JSON, metrics)
    shutil.rmtree(out / wsp.PREVIOUS, ignore_errors=True)  # the earlier run's, set aside
    return distributed.broadcast_object(metrics)


def _depth_stage_on_main(scene: Scene, cfg: TrainConfig, out: Path, device: torch.device,
                         progress: bool):
    """`dense_depth_stage` on rank 0; under torchrun the other ranks take its result, so every
    replica starts from the same points."""
    if not distributed.active():
        return dense_depth_stage(scene, cfg, out, device, progress)
    shared = None
    if distributed.is_main():
        with_points, depth = dense_depth_stage(scene, cfg, out, device, progress)
        shared = (depth, with_points is not scene)
        scene = with_points
    depth, points = distributed.broadcast_object(shared)
    if points and not distributed.is_main():
        from .depth import scene_with_points
        scene = scene_with_points(scene, depth.points, depth.colors)
    return scene, depth


MIN_MVS_POINTS = 1000
"""Below this many fused MVS points the depth stage's points are not used for initialization."""


def wants_depth(scene: Scene, cfg: TrainConfig) -> bool:
    """Whether `cfg.depth` asks for the MVS stage on `scene` (see TrainConfig.depth)."""
    if cfg.depth != "auto":
        return cfg.depth == "on"
    return not scene.masked("train") and (len(scene.split("train")) <= 12 or scene.points is None)


def dense_depth_stage(scene: Scene, cfg: TrainConfig, out: Path, device: torch.device,
                      progress: bool = True):
    """Run MVS on the training views when wanted: writes DIR/depth/ and DIR/points.ply, and
    returns the scene with the fused points (for initialization) and the DepthResult, else
    (scene, None). Depth maps that came with the input take the place of MVS (`depth.given`)."""
    if scene.depths is not None and cfg.depth != "off":
        return _given_depth_stage(scene, out, progress)
    if not wants_depth(scene, cfg):
        return scene, None
    from .depth import scene_with_points, wide_baseline, write_depths
    from .depth.cache import CACHE_FILE, depth_key, load_depth, save_depth
    from .depth.mvs import mvs_view_ids
    # hole filling is for the voxel model, whose Gaussians stay near their voxels; explicit
    # Gaussians move, and filled points cost them 0.8 dB on fern 3-view (bench/results/)
    mvs = cfg.mvs if cfg.model == "voxel" else replace(cfg.mvs, fill_stride=0)
    key = depth_key(scene, mvs_view_ids(scene, mvs.split), mvs)
    depth = load_depth(out, key)  # a resumed run, or other training settings on these views
    if depth is None:
        depth = _sweep(scene, mvs, device, progress)
        if depth.n_matched < MIN_MVS_POINTS and mvs.wide_baseline_retry:
            retry = _sweep(scene, wide_baseline(mvs), device, progress)
            depth = retry if retry.n_matched > depth.n_matched else depth
        save_depth(out, key, depth)
    elif progress:
        print(f"depth: reusing the depth maps of {out / CACHE_FILE} (same views and settings)")
    write_depths(depth, out)
    if depth.n_matched < MIN_MVS_POINTS:  # too few to build on (e.g. very wide baselines)
        warnings.warn(f"{scene.source}: multi-view stereo found only {depth.n_matched} "
                      "consistent points; initializing from the scene bounds instead")
        return scene, depth
    return scene_with_points(scene, depth.points, depth.colors), depth


def _given_depth_stage(scene: Scene, out: Path, progress: bool):
    """The input's own depth maps as the depth stage's result; their fused points go to
    DIR/points.ply (the maps are the input's: not copied into the workspace)."""
    from ..data.writers import write_points_ply
    from .depth import scene_with_points
    from .depth.given import given_depths
    depth = given_depths(scene)
    write_points_ply(out / "points.ply", depth.points, depth.colors)
    if progress:
        known = int((depth.depths.flatten(1) > 0).any(1).sum())
        views = len(depth.view_ids)
        print(f"depth: the input's depth maps ({known if known < views else 'all'} of {views} "
              f"training views, {len(depth.points)} points) instead of multi-view stereo")
    return scene_with_points(scene, depth.points, depth.colors), depth


def _sweep(scene: Scene, mvs, device: torch.device, progress: bool):
    """compute_depths on the training views, with a progress bar."""
    from .depth import compute_depths
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(scene.split("train")), desc="depth", unit="view", dynamic_ncols=True)
    depth = compute_depths(scene, mvs, device,
                           on_view=(lambda _: bar.update(1)) if bar is not None else None)
    if bar is not None:
        bar.close()
    return depth


def measured_split(scene: Scene) -> str:
    """The views a run is measured on: the held-out ones, or the training views when none is
    held out (`--holdout 0`)."""
    return "test" if scene.splits.get("test") else "train"


@torch.no_grad()
def evaluate(scene: Scene, splats: dict, split: str, device: torch.device, backend: str = "auto",
             masked: bool = False, sky: Optional[SkyMap] = None,
             on_view: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None) -> dict:
    """Mean PSNR/SSIM of `splats` rendered into the views of `split` (held-out by default), in
    front of the run's learned `sky` when it has one. `on_view(i, render, gt)` (images
    [H,W,3] in [0,1]) sees each view, e.g. to save it.

    `masked`: PSNR and SSIM inside each view's mask only (a mask of another size than its
    view: the whole view). A view whose mask is empty has no score (None per view, counted in
    "n_empty_masks") and is left out of the means."""
    ids = list(scene.splits.get(split, ())) if split != "all" else list(range(len(scene)))
    splats = {k: v.to(device) for k, v in splats.items()}
    bg = torch.tensor(scene.background, device=device) if sky is None else sky.to(device)
    cams = scene.cameras.to(device)
    deg = sh_degree_of(splats)
    psnrs, ssims, open_px = [], [], []  # None: no score (SSIM: a view too small for it)
    empty = 0
    for i in ids:
        gt = scene.image(i).to(device)
        out = render_splats(splats, cams[i], deg, bg, backend)
        view_mask = scene.masks[i].to(device) if scene.masks is not None else None
        inside = view_mask if view_mask is not None and view_mask.shape == out.alphas.shape[1:3] \
            else None  # (a mask of another size than its view: the whole view counts)
        open_alpha = (1 - out.alphas[0, ..., 0])  # inside the object where the views have masks
        open_px.append(float(open_alpha.mean() if inside is None else
                             open_alpha[inside.bool()].mean() if inside.any() else 0.0))
        img = out.colors[0].clamp(0, 1)
        mask = inside if masked else None
        if mask is not None and not mask.any():  # none of the object in view: nothing to score
            empty += 1
            psnrs.append(None)
            ssims.append(None)
        else:
            psnrs.append(float(psnr(img, gt, mask)))
            ssims.append(_score(ssim(img, gt, mask)) if min(img.shape[:2]) >= SSIM_WINDOW
                         else None)  # SSIM's window is 11 pixels wide
        if on_view is not None:
            on_view(i, img, gt)
    train = [] if split == "train" else list(scene.splits.get("train", ()))
    angles = nearest_view_angles(scene.cameras, ids, train).tolist() if train else None
    counted = {"n_views": len(ids), **({"n_test_views": len(ids)} if split == "test" else {})}
    return {"split": split, **counted, "psnr": _mean(psnrs), "ssim": _mean(ssims),
            "masked": bool(masked), "n_empty_masks": empty,
            "psnr_per_view": psnrs, "ssim_per_view": ssims, "views": [scene.names[i] for i in ids],
            "nearest_train_angle_deg": angles, "n_gaussians": int(splats["means"].shape[0]),
            "open_fraction": float(np.mean(open_px)) if ids else None, "sky": sky is not None,
            "masked_training": scene.masked("train")}


def _score(value: torch.Tensor) -> Optional[float]:
    """A metric as a float, None where it is NaN (masked SSIM: a mask only within 5 pixels of
    the border leaves no window inside the view)."""
    value = float(value)
    return None if np.isnan(value) else value


def _mean(values: list) -> Optional[float]:
    """The mean of the scores that are not None, None where none is."""
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None


FAR_VIEW_DEG = 30.0
"""Held-out views turned more than this from every training view get a note with the metrics."""


def far_views(metrics: dict) -> list[str]:
    """One line per evaluated view whose optical axis is more than FAR_VIEW_DEG from every
    training view's: its PSNR measures extrapolation into what the training views did not see."""
    angles = metrics.get("nearest_train_angle_deg") or []
    return [f"view {name}: {a:.0f} deg from every training view "
            f"({'no PSNR: its mask is empty' if p is None else f'PSNR {p:.2f} dB'}): it shows "
            "what the training views did not see head-on, so its score measures extrapolation"
            for name, a, p in zip(metrics.get("views", []), angles, metrics.get("psnr_per_view", []))
            if a > FAR_VIEW_DEG]


OPEN_NOTE = 0.02
"""Held-out views with more than this share of their pixels left open (no Gaussian; shown on
the background colour) get a note pointing to the learned sky, when the run has none."""


def empty_mask_views(metrics: dict) -> list[str]:
    """A line when a masked evaluation left views out: their masks are empty."""
    n = metrics.get("n_empty_masks") or 0
    if not metrics.get("masked") or not n:
        return []
    names = [v for v, p in zip(metrics.get("views", []), metrics.get("psnr_per_view", []))
             if p is None]
    return [f"{n} of the {metrics.get('n_views')} views ({', '.join(names)}) have empty "
            "masks (none of the object in view) and are left out of the masked PSNR and SSIM"]


def open_views(metrics: dict) -> list[str]:
    """A line when the evaluated views are left open in places and the run learned no sky:
    those pixels show the constant background colour (e.g. white where a photo shows sky).
    Where the views have masks, only pixels inside them count (outside, the background is
    meant to show)."""
    share = metrics.get("open_fraction")
    if metrics.get("sky") or share is None or share <= OPEN_NOTE:
        return []
    if metrics.get("masked_training"):  # no sky outside the object's silhouettes
        return [f"{100 * share:.0f}% of the held-out views' pixels inside their masks show no "
                "Gaussian: the training views do not cover that part of the object, or the "
                "masks are wrong (white is the object)"]
    return [f"{100 * share:.0f}% of the held-out views' pixels show no Gaussian and render in "
            "the background colour (sky, or what the training views did not see): "
            "--set sky.mode=on learns a sky for them"]


def load_splats(ws: Path) -> dict:
    return read_ply(wsp.splats_path(ws))


def exportable_splats(ws: Path) -> dict:
    """The workspace's finite Gaussians (`finite_only`), of which an export needs at least one."""
    from .gaussians import finite_only
    splats = load_splats(ws)
    if splats["means"].shape[0] == 0:
        raise VoxsplatError(f"{ws}: the workspace has no Gaussians ({wsp.SPLATS_PLY} is empty: "
                            f"training pruned them all); reconstruct again, e.g. with more views "
                            f"or --preset dense")
    return finite_only(splats, wsp.splats_path(ws))


FORMATS = ("ply", "compressed-ply", "splat", "spz", "mesh", "points")
"""What `export` writes."""
_SPLAT_FORMATS = ("ply", "compressed-ply", "splat", "spz")
FRAMES = ("input", "scene")
"""The coordinate frames `export` writes in."""


_FORMAT_SUFFIX = {"ply": ".ply", "splat": ".splat", "spz": ".spz"}
"""The suffix of each single-file splat format's output (viewers pick the reader by it)."""


def _blended(keep: bool) -> dict:
    """The `max_blend_offset` option of `--keep-blended` (none: the configs' default)."""
    return {"max_blend_offset": 0.0} if keep else {}


def export(ws: Path, fmt: str, out: Path, voxel_size: Optional[float] = None,
           faces: Optional[int] = None, mesher: str = "tsdf", device: str = "auto",
           closed: bool = False, sky: bool = False, progress: bool = False,
           frame: str = "input", sh_degree: Optional[int] = None,
           spz_version: Optional[int] = None, keep_blended: bool = False,
           input_scene: Optional[Callable[[], Optional[Scene]]] = None) -> Path:
    """Write the workspace's Gaussians to `out` as 'ply', 'compressed-ply' (SuperSplat's),
    'splat', 'spz' (Niantic's), 'mesh' (.ply/.obj/.glb) or 'points' (a dense coloured point
    cloud with normals, .ply).

    `frame`: "input" (the coordinates of the input: its COLMAP model, poses or transforms;
    ``export.frame``) or "scene" (the workspace's normalized frame, as ``splats.ply`` is);
    `voxel_size` is in that frame's units.

    Options are checked before any work; `faces`, `mesher` and `closed` apply to meshes only
    (see ``export.mesh.MeshConfig``), `voxel_size` and `device` to meshes and points (see
    ``export.points.PointsConfig``). `input_scene` (meshes and points) returns the workspace's
    input as ``app.load_workspace_scene`` reloads it (None where it is gone), whose training
    views' masks carve the result where they match the workspace's views; without it, no
    masks. `sky` (ply, compressed-ply, splat, spz): add the learned sky as
    Gaussians on a far sphere (``export.backdrop``). `sh_degree` (ply, compressed-ply, spz):
    keep view-dependent colour up to that degree only (0: none), for smaller files.
    `spz_version` (spz): 3 (the default) or 2, for readers older than version 3.
    `keep_blended` (meshes and points): keep the rendered pixels that blend a nearer and a
    farther surface (``MeshConfig.max_blend_offset`` 0).
    """
    if fmt not in FORMATS:
        raise VoxsplatError(f"unknown export format '{fmt}'; use {', '.join(FORMATS)}")
    if frame not in FRAMES:
        raise VoxsplatError(f"unknown frame '{frame}'; use {' or '.join(FRAMES)}")
    suffix = _FORMAT_SUFFIX.get(fmt)
    if suffix is not None and Path(out).suffix.lower() != suffix:
        raise VoxsplatError(f"--out {out}: --format {fmt} writes a {suffix} file, which viewers "
                            f"recognize by that suffix; name the output {Path(out).stem}{suffix}")
    if fmt != "depth":
        check_output_file(out)
    if fmt == "compressed-ply" and not Path(out).name.lower().endswith(".ply"):
        raise VoxsplatError(f"{out}: compressed PLY files end in .ply; name the output "
                            f"*.compressed.ply, as SuperSplat names them")
    if fmt == "points":
        from .export.points import PointsConfig
        if Path(out).suffix.lower() != ".ply":
            raise VoxsplatError(f"{out}: point clouds are written as .ply; name the output *.ply")
        points_cfg = PointsConfig(voxel_size=voxel_size, **_blended(keep_blended))
        dev = resolve_device(device)
    if fmt == "mesh":
        from .export.mesh import MeshConfig, check_mesh_suffix, require_packages
        check_mesh_suffix(Path(out))
        cfg = MeshConfig(mesher=mesher, voxel_size=voxel_size, faces=faces, closed=closed,
                         **_blended(keep_blended))
        require_packages(cfg)
        dev = resolve_device(device)
    if sh_degree is not None and fmt not in ("ply", "compressed-ply", "spz"):
        raise VoxsplatError(f"--sh-degree with --format {fmt}: it is for ply, compressed-ply or "
                            f"spz files{' (.splat files hold no view-dependent colour)' if fmt == 'splat' else ''}")
    if sh_degree is not None and not 0 <= sh_degree <= 3:
        raise VoxsplatError(f"--sh-degree {sh_degree}: give 0-3 (0: no view-dependent colour)")
    if spz_version is not None and fmt != "spz":
        raise VoxsplatError(f"--spz-version with --format {fmt}: it is for spz files only")
    if spz_version is not None and spz_version not in (2, 3):
        raise VoxsplatError(f"--spz-version {spz_version}: give 3 (the default) or 2 (for "
                            f"older readers)")
    if keep_blended and fmt not in ("mesh", "points"):
        raise VoxsplatError(f"--keep-blended is for meshes, points and depth maps, not {fmt} files")
    if sky and fmt not in _SPLAT_FORMATS:
        raise VoxsplatError(f"--sky adds the sky to splat files (.ply, .splat, .spz), not to "
                            f"{fmt} exports")
    rec = wsp.open_workspace(ws)
    _check_not_workspace_state(Path(ws), Path(out))
    out_from_world = input_from_world(rec) if frame == "input" else torch.eye(4, dtype=torch.float64)
    if not is_identity(out_from_world):
        similarity_parts(out_from_world, Path(ws) / wsp.SCENE_JSON)  # fails before any work
    if voxel_size is not None and fmt in ("mesh", "points"):  # given in the output's units
        voxel_size = voxel_size / frame_scale(out_from_world)
        if fmt == "mesh":
            cfg = replace(cfg, voxel_size=voxel_size)
        else:
            points_cfg = replace(points_cfg, voxel_size=voxel_size)
    splats = exportable_splats(ws)
    if sky:
        splats = with_backdrop(ws, rec, splats)
    if fmt in _SPLAT_FORMATS:
        splats = transform_splats(splats, out_from_world)
        if sh_degree is not None:
            splats = with_sh_degree(splats, sh_degree)
    if fmt == "ply":
        write_ply(out, splats)
    elif fmt == "compressed-ply":
        from .export.compressed_ply import write_compressed_ply
        write_compressed_ply(out, splats)
    elif fmt == "splat":
        write_splat(out, splats)
    elif fmt == "spz":
        from .export.spz import VERSION, write_spz
        write_spz(out, splats, spz_version or VERSION)
    elif fmt == "points":
        from ..data.writers import write_points_ply
        from .export.points import points_from_splats
        cams, masks = _train_views(rec, input_scene() if input_scene is not None else None)
        splats = {k: v.to(dev) for k, v in splats.items()}
        points, normals, colors = points_from_splats(splats, cams, points_cfg, masks,
                                                     rec["config"].get("backend", "auto"), progress)
        write_points_ply(out, transform_points(points, out_from_world), colors,
                         transform_normals(normals, out_from_world))
    else:
        from .export.mesh import mesh_from_splats, write_mesh
        cams, masks = _train_views(rec, input_scene() if input_scene is not None else None)
        splats = {k: v.to(dev) for k, v in splats.items()}
        mesh = mesh_from_splats(splats, cams, cfg, masks, rec["config"].get("backend", "auto"),
                                progress)
        if not is_identity(out_from_world):
            mesh.apply_transform(out_from_world.numpy())
        write_mesh(out, mesh)
    return Path(out)


_STATE_FILES = (wsp.SPLATS_PLY, wsp.SCENE_JSON, SKY_PT)
"""What a workspace's later commands read (with its checkpoints/): never an export's --out."""


def _check_not_workspace_state(ws: Path, out: Path) -> None:
    """Raise where `out` is one of the workspace's own files: an export over splats.ply would
    replace the scene-frame Gaussians with the input frame's (or fewer SH bands) for good."""
    out = out.resolve()
    ws = ws.resolve()
    if out in {ws / name for name in _STATE_FILES} or (ws / "checkpoints") in out.parents:
        raise VoxsplatError(f"--out {out}: is the workspace's own {out.relative_to(ws)}, which "
                            f"render, eval and export read; write the export elsewhere, e.g. "
                            f"{ws / ('export' + out.suffix)}")


def with_backdrop(ws: Path, rec: dict, splats: dict) -> dict:
    """`splats` and the workspace's learned sky as Gaussians on a far sphere."""
    from .export.backdrop import scene_radius, sky_splats
    from .export.mesh import scene_center
    from .sky import read_sky
    learned = read_sky(ws)
    if learned is None:
        raise VoxsplatError(f"{ws}: the run learned no sky ({SKY_PT}); reconstruct with --set "
                            f"sky.mode=on, or export without --sky")
    center = scene_center(splats)
    cams = wsp.cameras_from_record(rec)
    backdrop = sky_splats(learned, center, scene_radius(cams, center), sh_degree_of(splats))
    return {k: torch.cat([v, backdrop[k].to(v)]) for k, v in splats.items()}


def _train_views(rec: dict, scene: Optional[Scene]) -> tuple:
    """Training cameras of a workspace record, and their masks from `scene` (the workspace's
    input as ``app.load_workspace_scene`` reloads it: photos posed by SfM have theirs in
    ws/sfm/masks/), or None where it has none or its views' names or sizes no longer match."""
    cams = wsp.cameras_from_record(rec)
    train = [i for i, im in enumerate(rec["images"]) if im["split"] == "train"] or list(range(len(cams)))
    if scene is None or scene.masks is None or not same_views(scene, rec, cams):
        return cams[train], None
    return cams[train], [scene.masks[i] for i in train]


def check_resumed_views(scene: Scene, rec: dict, out: Path) -> None:
    """Raise unless the reloaded input `scene` of a resumed run has the views its run started
    from (workspace record `rec`): the same names, sizes, splits and input poses. A view
    removed from a transforms.json failed with a KeyError; added or moved ones trained on."""
    if not same_posed_views(scene, rec):
        raise VoxsplatError(f"{rec['input'].get('path')}: its views (names, sizes or poses) "
                            f"changed since the run in {out} started; --resume goes on only with "
                            f"the views it started from: start over without --resume")


def same_posed_views(scene: Scene, rec: dict) -> bool:
    """Whether the reloaded input `scene` has the views of the workspace record `rec`, posed as
    its run started: the same names, sizes and splits, and the input's poses (before any
    refinement) within 1e-4. Another SfM run of the same photos poses them otherwise."""
    if not same_views(scene, rec, wsp.cameras_from_record(rec)):
        return False
    posed = torch.tensor([im.get("cam_from_world_input", im["cam_from_world"])
                          for im in rec["images"]], dtype=torch.float64)
    splits = [next((k for k, ids in scene.splits.items() if i in ids), "none")
              for i in range(len(scene))]
    return splits == [im["split"] for im in rec["images"]] and torch.allclose(
        scene.cameras.cam_from_world.double(), posed, rtol=1e-4, atol=1e-4)


def same_views(scene: Scene, rec: dict, cams) -> bool:
    """Whether the reloaded input `scene` has the views of the workspace record `rec` (whose
    cameras are `cams`): the same names, each image of its camera's size."""
    return (list(scene.names) == [im["name"] for im in rec["images"]]
            and all(tuple(int(x) for x in img.shape[1::-1]) == cams.size(i)
                    for i, img in enumerate(scene.images)))


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return "cpu"
