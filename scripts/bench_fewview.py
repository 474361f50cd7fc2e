"""Few-view benchmark cases of the voxel model, each run side by side with `--model gaussians`.

Protocols of ../shared/data/README.md: lego 8-view (25 test views, white background), fern
3-view (LLFF), DTU scan24 3-view (masked metrics, masks not used for training), and lego dense
with the voxel model. Each JSON has top-level `psnr`, `train_seconds`, `peak_gpu_mem_mb`,
`n_voxels`, `n_gaussians` of the voxel run and `baseline_psnr` (+ `baseline`) of the
explicit-Gaussian run with the same preset.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional

LEGO_8VIEW_TRAIN = ("r_26", "r_86", "r_2", "r_55", "r_75", "r_93", "r_16", "r_73")
DTU_TRAIN = (25, 22, 28)
DTU_TEST = (1, 2, 9, 10, 11, 12, 14, 15, 23, 24, 26, 27, 29, 30, 31, 32, 33, 34, 35, 41, 42, 43,
            45, 46, 47)

# case -> (scene folder, preset, masked metrics)
FEWVIEW_CASES = {
    "lego_8view": ("nerf_synthetic_lego_400", "sparse", False),
    "fern_3view": ("llff_fern", "sparse", False),
    "dtu24_3view": ("dtu_scan24_400x300", "sparse", True),
    "lego_dense_voxel": ("nerf_synthetic_lego_400", "dense", False),
}


def lego_8view(scene):
    """Train on the 8 protocol views; test on every 8th test view (r_0, r_8, ..., r_192)."""
    idx = {n: i for i, n in enumerate(scene.names)}
    train = [idx[f"train/{n}"] for n in LEGO_8VIEW_TRAIN]
    test = [idx[f"test/r_{k}"] for k in range(0, 200, 8)]
    return scene.with_splits({"train": train, "test": test})


def dtu_3view(scene):
    """Train ids 25, 22, 28; the protocol's 25 test ids; masks kept only for the metrics."""
    idx = {int(n): i for i, n in enumerate(scene.names)}
    return scene.with_splits({"train": [idx[i] for i in DTU_TRAIN], "test": [idx[i] for i in DTU_TEST]})


def case_scene(case: str, data_root: Path, downscale: float = 1.0):
    from voxsplat.scripts.bench import few_view_split, load_case_scene
    folder = FEWVIEW_CASES[case][0]
    scene = load_case_scene(folder, data_root, downscale)
    if case == "lego_8view":
        return lego_8view(scene)
    if case == "fern_3view":
        return few_view_split(scene)
    if case == "dtu24_3view":
        return dtu_3view(scene)
    return scene


def _train_and_eval(scene, cfg, device: str, masked: bool, source: dict) -> dict:
    from voxsplat.recon import pipeline
    from voxsplat.recon.engine import resolve_device
    from voxsplat.recon.sky import read_sky
    eval_masks = scene.masks
    train_scene = replace(scene, masks=None) if masked else scene  # masks: metrics only
    with tempfile.TemporaryDirectory() as ws:
        m = pipeline.reconstruct(train_scene, Path(ws), cfg, source,
                                 device=device, progress=sys.stderr.isatty())
        splats, sky = pipeline.load_splats(Path(ws)), read_sky(Path(ws))
        mscene = replace(scene, masks=eval_masks)
        if masked:
            mm = pipeline.evaluate(mscene, splats, "test", resolve_device(device), cfg.backend,
                                   masked=True, sky=sky)
            m.update(psnr=mm["psnr"], ssim=mm["ssim"], psnr_per_view=mm["psnr_per_view"],
                     psnr_unmasked=m["psnr"])
        # fit of the training views: low = the model underfits, high with a low test PSNR = it
        # overfits (few views)
        m["psnr_train"] = pipeline.evaluate(mscene, splats, "train", resolve_device(device),
                                            cfg.backend, masked=masked, sky=sky)["psnr"]
    keys = ("psnr", "ssim", "train_seconds", "peak_gpu_mem_mb", "n_gaussians", "n_voxels",
            "mvs_points", "mvs_matched_points", "steps", "psnr_per_view", "psnr_unmasked",
            "psnr_train", "model")
    return {k: m.get(k) for k in keys}


_SUMMARY_KEYS = ("psnr", "ssim", "train_seconds", "peak_gpu_mem_mb", "n_voxels", "n_gaussians",
                 "mvs_points", "steps")
"""Top-level fields of a case's JSON, taken from the voxel run."""


def run_fewview_case(case: str, data_root: Path, out_dir: Path, steps: Optional[int],
                     preset: Optional[str], device: str, sets: tuple[str, ...] = (),
                     tag: str = "", models: tuple[str, ...] = ("voxel", "gaussians")) -> dict:
    """Voxel run, then the same preset and `--set` overrides with `--model gaussians`; one JSON
    with both. `models` leaves either out (explorations of one model; its PSNR fields are then
    None)."""
    from voxsplat.scripts.bench import environment, source_spec, train_config
    folder, default_preset, masked = FEWVIEW_CASES[case]
    cfg = train_config(preset or default_preset, steps, sets, "voxel")
    base_cfg = train_config(preset or default_preset, steps, sets, "gaussians")
    scene = case_scene(case, data_root, cfg.downscale)
    source = source_spec(data_root, folder, cfg)
    none = dict.fromkeys(_SUMMARY_KEYS)
    voxel = _train_and_eval(scene, cfg, device, masked, source) if "voxel" in models else none
    base = (_train_and_eval(scene, base_cfg, device, masked, source)
            if "gaussians" in models else none)
    result = {"case": case, "scene": folder, "preset": preset or default_preset,
              **{k: voxel[k] for k in _SUMMARY_KEYS},
              "baseline_psnr": base["psnr"],
              "delta_psnr": None if None in (voxel["psnr"], base["psnr"]) else voxel["psnr"] - base["psnr"],
              "masked_metrics": masked, "voxel": voxel, "baseline": base,
              "train_views": [scene.names[i] for i in scene.split("train")],
              "n_test_views": len(scene.split("test")), **environment(), "config": cfg.to_dict(),
              "baseline_config": base_cfg.to_dict()}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{case}{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
