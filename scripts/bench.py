"""Named benchmark cases; each writes one JSON with metrics, timings, memory, GPU and versions.

usage: python -m voxsplat.scripts.bench CASE [--data ../shared/data] [--out bench/results]
       [--steps N] [--preset P] [--device cuda]

Mesh cases: `lego_mesh` trains lego (dense), meshes it (TSDF) and writes the silhouette IoU of
the mesh against the test images' alpha (+ a PNG, mesh render | test image); `tsdf_speed` times
the TSDF fusion of 100 synthetic 400x400 depth maps. Neither needs open3d or pycolmap.

Depth cases: `mvs_depth` times plane-sweep MVS on 20 synthetic 400x300 views and scores it
against exact depth (`--preset` is the MVS preset); `fern_3view_init` trains fern from 3 views
starting from fused MVS points and from random points in the bounds, and reports both PSNRs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch


# case -> (scene folder under the data root, or "synthetic" for the generated scene; preset)
CASES = {
    "lego_dense": ("nerf_synthetic_lego_400", "dense"),
    "synthetic_fast": ("synthetic", "fast"),
    "lego_mesh": ("nerf_synthetic_lego_400", "dense"),
    "tsdf_speed": ("synthetic", None),
    "mvs_depth": ("synthetic", "default"),  # preset: an MVS preset (voxsplat.recon.depth)
    "fern_3view_init": ("llff_fern", "dense"),
}


def load_case_scene(folder: str, data_root: Path, downscale: float = 1.0):
    """The case's scene, resized by `downscale` (the config's, e.g. `--set downscale=0.25`)."""
    if folder == "synthetic":
        from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
        from voxsplat.data.transforms import downscale as downscale_scene
        return downscale_scene(make_synthetic_scene(SyntheticConfig()).scene, downscale)
    from voxsplat.data.load import load_scene
    path = data_root / folder
    if not path.is_dir():
        raise SystemExit(f"{path}: benchmark data not found; pass --data pointing at shared/data")
    return load_scene(path, downscale=downscale)


def source_spec(data_root: Path, folder: str, cfg) -> dict:
    """Where a workspace's scene came from (scene.json), so `render`/`eval` can reload it."""
    return {"kind": "path", "path": str(data_root / folder), "downscale": cfg.downscale}


def environment() -> dict:
    """GPU name and library versions for the result file."""
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "cuda": torch.version.cuda}
    try:
        from importlib.metadata import version
        env["gsplat"] = version("gsplat")
    except Exception:
        env["gsplat"] = None
    return env


def train_config(preset: str, steps: Optional[int], sets: tuple[str, ...], model: Optional[str] = None):
    """The preset's TrainConfig (for `model`, None = the preset's) with `--steps`, no
    intermediate checkpoints and `--set` overrides (`--set downscale=F` resizes the case's
    images, as the CLI's `--downscale F` does)."""
    from voxsplat.recon.app import _config
    scale = [float(a.split("=", 1)[1]) for a in sets if a.startswith("downscale=")]
    rest = [a for a in sets if not a.startswith("downscale=")]
    return _config(preset, steps, scale[-1] if scale else None, model, ["checkpoint_every=0", *rest])


def run_case(case: str, data_root: Path, out_dir: Path, steps: Optional[int], preset: Optional[str],
             device: str, eval_at: tuple[int, ...] = (), sets: tuple[str, ...] = (),
             tag: str = "") -> dict:
    from voxsplat.recon import pipeline
    folder, default_preset = CASES[case]
    cfg = train_config(preset or default_preset, steps, sets)
    t0 = time.perf_counter()
    scene = load_case_scene(folder, data_root, cfg.downscale)
    load_seconds = time.perf_counter() - t0
    curve = []

    def on_step(step: int, info: dict) -> None:
        if step in eval_at:
            splats = info["model"].bake()
            m = pipeline.evaluate(scene, splats, "test", splats["means"].device, cfg.backend)
            curve.append({"step": step, "psnr": m["psnr"], "ssim": m["ssim"],
                          "train_seconds": info["train_seconds"], "n_gaussians": m["n_gaussians"]})
            print(json.dumps(curve[-1]), flush=True)

    with tempfile.TemporaryDirectory() as ws:
        metrics = pipeline.reconstruct(scene, Path(ws), cfg, source_spec(data_root, folder, cfg),
                                       device=device, progress=sys.stderr.isatty(), on_step=on_step)
    result = {"case": case, "scene": folder, "preset": preset or default_preset,
              **{k: metrics[k] for k in ("psnr", "ssim", "train_seconds", "peak_gpu_mem_mb",
                                         "n_gaussians", "n_test_views", "steps", "device")},
              "load_seconds": load_seconds, **environment(), "config": cfg.to_dict(),
              "curve": curve, "psnr_per_view": metrics["psnr_per_view"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_lego_mesh(case: str, data_root: Path, out_dir: Path, steps: Optional[int],
                  preset: Optional[str], device: str, sets: tuple[str, ...] = (), tag: str = "") -> dict:
    """Train, mesh (TSDF) and compare the mesh's silhouettes with the test images' alpha > 0.5."""
    from voxsplat.recon import pipeline
    from voxsplat.recon.engine import resolve_device
    from voxsplat.recon.export.mesh import MeshConfig, mesh_from_splats
    folder, default_preset = CASES[case]
    cfg = train_config(preset or default_preset, steps, sets)
    scene = load_case_scene(folder, data_root, cfg.downscale)
    if scene.masks is None:
        raise SystemExit(f"{folder}: the test images have no alpha; silhouettes need masks")
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as ws:
        spec = source_spec(data_root, folder, cfg)
        metrics = pipeline.reconstruct(scene, Path(ws), cfg, spec, device=device,
                                       progress=sys.stderr.isatty())
        splats = {k: v.to(dev) for k, v in pipeline.load_splats(Path(ws)).items()}
    train, test = list(scene.split("train")), list(scene.split("test"))

    def meshed(mesh_cfg: MeshConfig) -> tuple[dict, list, object]:
        _sync(dev)
        t0 = time.perf_counter()
        mesh = mesh_from_splats(splats, scene.cameras[train], mesh_cfg,
                                [scene.masks[i] for i in train], cfg.backend)
        _sync(dev)
        mesh_seconds = time.perf_counter() - t0
        ious, preview = silhouette_ious(mesh, scene, test, dev)
        return {"silhouette_iou": float(sum(ious) / len(ious)), "silhouette_iou_min": min(ious),
                "n_vertices": int(len(mesh.vertices)), "n_faces": int(len(mesh.faces)),
                "watertight": bool(mesh.is_watertight), "n_components": int(mesh.body_count),
                "mesh_seconds": mesh_seconds}, ious, preview

    figures, ious, preview = meshed(MeshConfig(closed=True))
    kept_blended, _, _ = meshed(MeshConfig(closed=True, max_blend_offset=0.0))  # (--keep-blended)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_png(out_dir / f"{case}{tag}.png", preview)
    result = {"case": case, "scene": folder, "preset": preset or default_preset, **figures,
              **{k: metrics[k] for k in ("psnr", "train_seconds", "n_gaussians", "device")},
              "keep_blended": kept_blended, **environment(), "config": cfg.to_dict(),
              "silhouette_iou_per_view": ious}
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def silhouette_ious(mesh, scene, ids: list[int], dev: torch.device):
    """IoU of the mesh's silhouette and each view's mask [len(ids)], and a uint8 preview
    [H,2W,3] (mesh render | image) of view ids[0]."""
    import numpy as np
    from voxsplat.recon.export.mesh_render import rasterize_mesh
    verts = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=dev)
    faces = torch.as_tensor(mesh.faces, dtype=torch.int64, device=dev)
    colors = torch.as_tensor(mesh.visual.vertex_colors[:, :3] / 255.0, dtype=torch.float32, device=dev)
    cams, ious, preview = scene.cameras.to(dev), [], None
    for i in ids:
        W, H = cams.size(i)
        r = rasterize_mesh(verts, faces, cams.cam_from_world[i], cams.Ks[i], W, H, colors)
        mask = scene.masks[i].to(dev)
        ious.append(float((r.alpha & mask).sum() / (r.alpha | mask).sum().clamp_min(1)))
        if preview is None:
            bg = torch.tensor(scene.background, device=dev)
            img = torch.where(r.alpha[..., None], r.color, bg)
            preview = np.concatenate([(img.cpu().numpy() * 255).round().astype(np.uint8),
                                      scene.images[i].numpy()], 1)
    return ious, preview


def _write_png(path: Path, array) -> None:
    from PIL import Image
    Image.fromarray(array).save(path)


def run_tsdf_speed(case: str, data_root: Path, out_dir: Path, steps: Optional[int],
                   preset: Optional[str], device: str, sets: tuple[str, ...] = (), tag: str = "",
                   n_views: int = 100, size: int = 400) -> dict:
    """Time the TSDF fusion of `n_views` exact synthetic depth maps of size x size (after a warm-up)."""
    from voxsplat.data.synthetic import LOOK_AT, SyntheticConfig, make_synthetic_scene
    from voxsplat.recon.engine import resolve_device
    from voxsplat.recon.export.mesh import MeshConfig, default_voxel_size
    from voxsplat.recon.export.tsdf import extract_mesh, fuse_depth_maps
    dev = resolve_device(device)
    synth = make_synthetic_scene(SyntheticConfig(width=size, height=size, n_train=n_views, n_test=0,
                                                 supersample=1, n_points=0))
    depths, cams = torch.stack(synth.depths).to(dev), synth.scene.cameras.to(dev)
    voxel = default_voxel_size(cams, torch.tensor(LOOK_AT))
    trunc = MeshConfig().trunc_voxels * voxel
    args = (depths, cams.cam_from_world, cams.Ks, voxel, trunc, depths > 0, depths == 0)
    fuse_depth_maps(*args)  # warm-up: CUDA context, kernels, allocator
    _sync(dev)
    t0 = time.perf_counter()
    vol = fuse_depth_maps(*args)
    _sync(dev)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    verts, faces = extract_mesh(vol)
    extract_seconds = time.perf_counter() - t0
    result = {"case": case, "seconds": seconds, "extract_seconds": extract_seconds,
              "n_views": n_views, "width": size, "height": size, "voxel_size": voxel,
              "trunc": trunc, "n_blocks": vol.n_blocks, "n_faces": int(len(faces)),
              "device": str(dev), **environment()}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


MESH_CASES = {"lego_mesh": run_lego_mesh, "tsdf_speed": run_tsdf_speed}
"""Cases that are not a plain training run: name -> runner(case, data, out, steps, preset,
device, sets, tag)."""

def _split_sets(sets: tuple[str, ...], prefix: str) -> tuple[list[str], tuple[str, ...]]:
    """(`--set` values starting with `prefix`, prefix removed; the others)."""
    return ([s[len(prefix):] for s in sets if s.startswith(prefix)],
            tuple(s for s in sets if not s.startswith(prefix)))


def _mvs_config(name: str, assignments: list[str]):
    from voxsplat.recon.overrides import override
    from voxsplat.recon.depth import mvs_preset
    cfg = mvs_preset(name)
    for assignment in assignments:
        cfg = override(cfg, assignment)
    return cfg


def run_mvs_depth(case: str, data_root: Path, out_dir: Path, steps: Optional[int],
                  preset: Optional[str], device: str, sets: tuple[str, ...] = (), tag: str = "") -> dict:
    """Time MVS depth of the synthetic train views (20 of 400x300 unless `--set synthetic.width=`
    etc.) after a warm-up, and score it against exact depth (within 1% of each view's range).

    `--preset` names the MVS preset; `--set field=value` overrides MvsConfig fields.
    """
    from dataclasses import asdict
    from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
    from voxsplat.recon.overrides import override
    from voxsplat.recon.depth import compute_depths, depth_accuracy
    from voxsplat.recon.engine import resolve_device
    dev = resolve_device(device)
    synth_sets, mvs_sets = _split_sets(sets, "synthetic.")
    synth_cfg = SyntheticConfig(width=400, height=300, n_train=20, n_test=0)
    for assignment in synth_sets:
        synth_cfg = override(synth_cfg, assignment)
    mvs_cfg = _mvs_config(preset or CASES[case][1], [s.removeprefix("mvs.") for s in mvs_sets])
    synth = make_synthetic_scene(synth_cfg)
    compute_depths(synth.scene.subset([0, 1, 2]), mvs_cfg, dev)  # warm-up: context, kernels
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    depth = compute_depths(synth.scene, mvs_cfg, dev)
    _sync(dev)
    seconds = time.perf_counter() - t0
    gt = torch.stack([synth.depths[i] for i in depth.view_ids])
    if gt.shape != depth.depths.shape:  # max_image_size below the image size
        gt = torch.nn.functional.interpolate(gt[:, None], size=depth.depths.shape[1:], mode="nearest")[:, 0]
    acc = depth_accuracy(depth.depths, gt, tolerance=0.01)
    result = {"case": case, "seconds": seconds, "accuracy": acc["accuracy"], "coverage": acc["coverage"],
              "median_error": acc["median_error"], "outside_foreground": acc["outside_foreground"],
              "tolerance": acc["tolerance"], "n_points": int(len(depth.points)),
              "n_views": len(depth.view_ids), "width": synth_cfg.width, "height": synth_cfg.height,
              "peak_gpu_mem_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
              "device": str(dev), **environment(), "mvs_config": asdict(mvs_cfg)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def few_view_split(scene, n_train: int = 3):
    """The LLFF few-view protocol: test = the reader's every-8th views; train = `n_train` views
    picked evenly (np.linspace rounded) from the rest in name order."""
    import numpy as np
    rest = sorted(scene.split("train"), key=lambda i: scene.names[i])
    picks = np.round(np.linspace(0, len(rest) - 1, n_train)).astype(int)
    return scene.with_splits({"train": [rest[i] for i in picks], "test": scene.split("test")})


def run_fern_3view_init(case: str, data_root: Path, out_dir: Path, steps: Optional[int],
                        preset: Optional[str], device: str, sets: tuple[str, ...] = (),
                        tag: str = "") -> dict:
    """Fern, 3 train views: held-out PSNR when training starts from (a) the fused MVS points of
    the 3 views, (b) random points in the scene bounds. `--set mvs.field=value` overrides
    MvsConfig (default: max_points=100000); other `--set` values go to the TrainConfig."""
    from dataclasses import asdict, replace
    from voxsplat.recon import pipeline
    from voxsplat.recon.depth import compute_depths, scene_with_points
    from voxsplat.recon.engine import resolve_device
    folder, default_preset = CASES[case]
    mvs_sets, train_sets = _split_sets(sets, "mvs.")
    cfg = train_config(preset or default_preset, steps, train_sets)
    mvs_cfg = _mvs_config("default", ["max_points=100000", *mvs_sets])
    scene = few_view_split(load_case_scene(folder, data_root, cfg.downscale))
    dev = resolve_device(device)
    _sync(dev)
    t0 = time.perf_counter()
    depth = compute_depths(scene, mvs_cfg, dev)
    _sync(dev)
    mvs_seconds = time.perf_counter() - t0
    runs = {}
    for name, init_scene, source in (("mvs", scene_with_points(scene, depth.points, depth.colors), "points"),
                                     ("bounds", scene, "bounds")):
        run_cfg = replace(cfg, init=replace(cfg.init, source=source))
        with tempfile.TemporaryDirectory() as ws:
            m = pipeline.reconstruct(init_scene, Path(ws), run_cfg, source_spec(data_root, folder, run_cfg),
                                     device=device, progress=sys.stderr.isatty())
        runs[name] = {k: m[k] for k in ("psnr", "ssim", "train_seconds", "n_gaussians", "steps", "psnr_per_view")}
    result = {"case": case, "scene": folder, "preset": preset or default_preset,
              "psnr_mvs_init": runs["mvs"]["psnr"], "psnr_bounds_init": runs["bounds"]["psnr"],
              "n_mvs_points": int(len(depth.points)), "mvs_seconds": mvs_seconds,
              "mvs_coverage": float((depth.depths > 0).float().mean()), "runs": runs,
              "train_views": [scene.names[i] for i in scene.split("train")],
              "test_views": [scene.names[i] for i in scene.split("test")], "device": str(dev),
              **environment(), "config": cfg.to_dict(), "mvs_config": asdict(mvs_cfg)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


DEPTH_CASES = {"mvs_depth": run_mvs_depth, "fern_3view_init": run_fern_3view_init}
"""Dense-depth cases, same runner signature as MESH_CASES."""




def _fewview_names() -> tuple[str, ...]:
    from voxsplat.scripts.bench_fewview import FEWVIEW_CASES
    return tuple(FEWVIEW_CASES)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="+", choices=sorted([*CASES, *_fewview_names()]))
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--steps", type=int)
    p.add_argument("--preset")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], help="config override, e.g. optim.batch_size=4")
    p.add_argument("--tag", default="", help="suffix of the result file name")
    p.add_argument("--models", default="voxel,gaussians",
                   help="few-view cases: which models to run (comma-separated)")
    p.add_argument("--eval-at", default="", help="comma-separated steps to also evaluate at (not timed)")
    a = p.parse_args(argv)
    from voxsplat.scripts.bench_fewview import FEWVIEW_CASES, run_fewview_case
    eval_at = tuple(int(x) for x in a.eval_at.split(",") if x)
    for case in a.cases:
        if case in FEWVIEW_CASES:
            r = run_fewview_case(case, a.data, a.out, a.steps, a.preset, a.device, tuple(a.set), a.tag,
                                  tuple(a.models.split(",")))
        elif case in MESH_CASES:
            r = MESH_CASES[case](case, a.data, a.out, a.steps, a.preset, a.device, tuple(a.set), a.tag)
        elif case in DEPTH_CASES:
            r = DEPTH_CASES[case](case, a.data, a.out, a.steps, a.preset, a.device, tuple(a.set), a.tag)
        else:
            r = run_case(case, a.data, a.out, a.steps, a.preset, a.device, eval_at, tuple(a.set), a.tag)
        skip = ("config", "psnr_per_view", "curve", "silhouette_iou_per_view", "mvs_config",
                "voxel", "baseline")
        print(json.dumps({k: v for k, v in r.items() if k not in skip}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
