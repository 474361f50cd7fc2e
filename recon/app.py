"""Command implementations: load inputs, call the pipeline, write the workspace."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..data.errors import VoxsplatError, shortened_list
from ..data.load import folder_video, input_of_folder, load_scene, needs_poses
from ..data.readers.colmap import DistortedCameraError
from ..data.readers.common import decode_downscale, decode_max_side
from ..data.transforms import (cap_size, check_downscale, downscale as downscale_scene,
                               is_off_frame, normalize, split_every)
from . import distributed, out_folder, pipeline
from . import workspace as wsp
from .checkpoint import remove_checkpoints, require_checkpoints
from .config import TrainConfig, check_steps, preset as get_preset, with_steps
from .eval_renders import RenderFolder
from .presets import auto_preset, auto_sparse_model
from .overrides import assigned_key, override, steps_note
from .engine import resolve_device
from .sizing import capped_to_device, device_cap, resized_copy, say_capped
from .sky import read_sky


def run_reconstruct(input_path: Path, out: Path, preset: str = "auto", device: str = "auto",
                    steps: Optional[int] = None, downscale: Optional[float] = None,
                    resume: bool = False, progress: bool = True, sfm=None,
                    model: Optional[str] = None, overrides: Sequence[str] = (),
                    holdout: Optional[int] = None, on_step=None) -> dict:
    """`voxsplat reconstruct`: load INPUT (posing photos/videos by SfM), optimize, write OUT.

    `on_step(step, info)`: called after every training step (``Trainer.fit``), e.g. a
    ``viewer.LiveView``.

    `holdout` re-splits the views (see `with_holdout`); None keeps the input's own split.
    preset "auto": `sparse` for at most 12 training views (with `presets.auto_sparse_model`), else
    `dense` on a GPU, `fast` on a CPU. `model` ("gaussians" | "voxel") overrides the preset's model;
    `overrides` ("section.field=value", `--set`) change single config fields after that.
    """
    device_type = resolve_device(device).type  # fail before loading images
    if model is not None and model not in ("gaussians", "voxel"):
        raise VoxsplatError(f"unknown model '{model}'; use gaussians or voxel")
    if downscale is not None and not 0 < downscale <= 1:
        raise VoxsplatError(f"--downscale {downscale:g}: give a factor in (0, 1], e.g. 0.5 (half "
                            f"the width and height)")
    if steps is not None:  # (before SfM runs on photos)
        check_steps(steps)
    if preset != "auto":
        get_preset(preset)  # an unknown name fails before loading images
    if resume:
        given = [flag for flag, value in (("--steps", steps), ("--downscale", downscale),
                                          ("--model", model), ("--holdout", holdout),
                                          ("--set", overrides or None)) if value is not None]
        given += ["--preset"] if preset != "auto" else []
        if given:
            raise VoxsplatError(f"{', '.join(given)} with --resume: a resumed run keeps the "
                                f"settings it started with; drop {'them' if len(given) > 1 else 'it'}, "
                                f"or start over without --resume")
    for assignment in overrides:  # a bad --set fails before the images load
        override(TrainConfig(), assignment)
    if resume:
        _check_resumable(Path(out))
        rec = wsp.open_workspace(out)
        cfg = TrainConfig.from_dict(rec["config"])
        input_path = _resumed_input(Path(input_path), Path(rec["input"]["path"]), Path(out))
        holdout = rec["input"].get("holdout")
        sfm = _resumed_sfm(Path(out), sfm)
        _check_same_photos(input_path, Path(out), sfm)
        require_checkpoints(Path(out) / "checkpoints")  # (before SfM and MVS run)
        missing = TrainConfig.missing_fields(rec["config"])
        if missing and distributed.is_main():  # (a record of an older voxsplat)
            print(f"voxsplat: note: the run's recorded config lacks {len(missing)} setting"
                  f"{'s' if len(missing) > 1 else ''} ({shortened_list(missing, 4)}), made "
                  f"by an older voxsplat: "
                  f"{'they take' if len(missing) > 1 else 'it takes'} this version's defaults, "
                  f"which may differ from what the run started with", file=sys.stderr)
    else:
        input_path = _video_of_folder(input_path, progress)
        note = out_folder.check_fresh_out(Path(out), input_path)  # before SfM and MVS run
        if note and progress and distributed.is_main():
            print(note)
    check_holdout(holdout)
    posed_by_sfm = not resume and needs_poses(input_path)
    if resume:
        scale, folder, max_side = (cfg.downscale, rec["input"].get("image_folder"),
                                   rec["input"].get("max_side"))
    else:
        folder, downscale = resized_copy(input_path, downscale, device_type, progress)
        scale, max_side = (downscale if downscale is not None else 1.0), None
    # without --downscale, the images of COLMAP, LLFF and transforms.json scenes (and photos
    # through SfM) are capped at the device's size as decoded, each on its own; others' after
    auto_cap = None if resume or downscale is not None else device_cap(device_type)
    sfm_before = None if resume else out_folder.sfm_report(out)  # (SfM may replace it next)
    with distributed.main_first():  # SfM runs once, on rank 0; the other ranks reuse it
        with decode_max_side(auto_cap) as capped:
            scene = load_input(input_path, Path(out), scale, sfm, progress and distributed.is_main(),
                               image_folder=folder, max_side=max_side)
    if capped:
        max_side = auto_cap
        if progress and distributed.is_main():
            say_capped(max(max(size) for size in capped), len(capped), len(scene), auto_cap)
    scene = with_holdout(scene, holdout)
    if not resume and holdout is None:
        if len(scene.split("train")) < MIN_TRAIN_VIEWS <= len(scene):  # e.g. two photos
            holdout, scene = 0, with_holdout(scene, 0)
            if progress and distributed.is_main():
                print(f"only {len(scene)} views: all of them train, none is held out (the "
                      f"metrics are then those of the training views)")
        elif progress and distributed.is_main():
            _say_holdout(scene)
    if not resume and downscale is None and not capped:  # the other readers': after loading
        max_side, scene = capped_to_device(scene, device_type, progress and distributed.is_main())
    if not resume:
        auto, n_train = preset == "auto", len(scene.split("train"))
        if auto:
            preset = auto_preset(n_train, device_type)
            if preset == "sparse" and model is None:
                model = auto_sparse_model(device_type)
        if refines_sfm_poses(preset, posed_by_sfm, overrides):
            overrides = [f"{POSE_REFINE}=true", *overrides]
            if progress and distributed.is_main():
                print(f"poses from SfM on few views: the training cameras' poses are refined "
                      f"with the Gaussians (--set {POSE_REFINE}=false keeps SfM's)")
        cfg = _config(preset, steps, downscale, model, overrides)
        note = steps_note(overrides)
        if note and progress and distributed.is_main():
            print(f"note: {note}")
        if auto and progress and distributed.is_main():
            print(f"auto: {n_train} training views on {device_type}: the {preset} preset with "
                  f"the {cfg.model} model (--preset and --model choose otherwise)")
    spec = {"kind": "path", "path": str(Path(input_path).resolve()), "downscale": cfg.downscale,
            "holdout": holdout, "image_folder": folder, "max_side": max_side}
    if not resume and distributed.is_main():
        remove_checkpoints(Path(out) / "checkpoints")
        out_folder.set_aside_outputs(out, sfm_before)  # in previous/ until this run's are written
    distributed.barrier()
    return pipeline.reconstruct(scene, out, cfg, spec, device, resume, progress, on_step)


MIN_TRAIN_VIEWS = 2
"""Where the input's own split would train on fewer views, every view trains (`holdout` 0)."""


def check_holdout(holdout: Optional[int]) -> None:
    """Raise a VoxsplatError unless `holdout` is None, 0 or at least 2."""
    if holdout is not None and (holdout < 0 or holdout == 1):
        raise VoxsplatError(f"--holdout {holdout}: use 0 (train on every view) or N >= 2 (every "
                            f"N-th view, by name, held out for evaluation)")


def with_holdout(scene, holdout: Optional[int]):
    """`scene` with every `holdout`-th view (by name, the first included) held out for
    evaluation, or with every view training for 0; None keeps the input's split."""
    check_holdout(holdout)
    if holdout is None:
        return scene
    if holdout == 0:
        return scene.with_splits({"train": tuple(range(len(scene)))})
    return split_every(scene, holdout)


def _say_holdout(scene) -> None:
    """With few views, say which are held out and how to train on them too."""
    test, n = scene.splits.get("test", ()), len(scene)
    if test and len(scene.split("train")) <= 12:
        names = ", ".join(scene.names[i] for i in test)
        print(f"{len(test)} of the {n} views ({names}) held out to measure the result; "
              f"--holdout 0 trains on all of them")


def _resumed_input(given: Path, recorded: Path, out: Path) -> Path:
    """The input a resumed run reloads: the one it started from (`recorded`), which `given`
    must name (or be the folder of its video).

    Raises:
        VoxsplatError: `given` is another input.
    """
    started = recorded.resolve()
    if given.resolve() != started:
        try:
            video = folder_video(given)
        except VoxsplatError:
            video = None
        if video is None or video.resolve() != started:
            raise VoxsplatError(f"{out} is the run of {recorded}; --resume continues it from "
                                f"there: give that input, or a new --out for {given}")
    return recorded


def load_input(input_path: Path, workdir: Path, downscale: float = 1.0, sfm=None,
               progress: bool = True, image_folder: Optional[str] = None,
               max_side: Optional[int] = None):
    """A posed Scene from any input: scene files through `data.load` (COLMAP scenes with lens
    distortion undistorted by pycolmap into `workdir/sfm/`); photo folders and videos through
    structure-from-motion (pycolmap), whose model goes to `workdir/sfm/`. `image_folder`: a
    resized copy of a posed scene's photos to read (`data.load.resized_input`); `max_side`: each
    image resized to at most that many pixels on its own (as decoded for COLMAP's and LLFF's
    readers, `decode_max_side`; after loading for the others, `cap_size`); `downscale` alike
    (`decode_downscale`, `transforms.downscale`)."""
    check_downscale(downscale)
    # COLMAP's, LLFF's and transforms.json's images (photos through SfM too) are resized as
    # each is decoded: a folder of large photos is never all in memory at full size
    if max_side:
        capping = decode_max_side(max_side)
    elif image_folder is None and downscale != 1.0:
        capping = decode_downscale(downscale)
    else:
        capping = contextlib.nullcontext([])
    with warnings.catch_warnings(record=True) as caught, capping as resized:
        # ours and the libraries' user warnings (not Python's own ResourceWarnings, say, about
        # the video decoder's pipes, which the default filters hide)
        warnings.simplefilter("always", UserWarning)
        try:
            scene, downscale = _load_posed(Path(input_path), Path(workdir), sfm, progress,
                                           downscale, image_folder)
        finally:  # also where loading failed: a warning (dropped frames) may explain why
            for w in caught:  # e.g. partial registration, empty masks: once, no traceback
                if distributed.is_main():  # (every rank loads the same input)
                    print(f"voxsplat: warning: {w.message}", file=sys.stderr)
    if downscale != 1.0 and (max_side or not resized):  # not resized as decoded: the other
        scene = downscale_scene(scene, downscale)      # readers' images, or a capped load's
    return cap_size(scene, max_side) if max_side else scene


def _load_posed(input_path: Path, workdir: Path, sfm, progress: bool, downscale: float = 1.0,
                image_folder: Optional[str] = None):
    """The scene of a posed input in its own frame, unless that frame is far from the one
    training assumes (`is_off_frame`: then centred and scaled as SfM's scenes always are; the
    exports' input frame undoes it); photos and videos through SfM. Returns it and the factor
    it is still to be resized by (1 where `image_folder`'s copies were read at their size)."""
    from .sfm import SfmConfig, load_or_run_sfm
    if needs_poses(input_path):
        return load_or_run_sfm(input_path, workdir, sfm or SfmConfig(), progress), downscale
    try:
        if image_folder is not None:
            scene, downscale = load_scene(input_path, downscale=downscale,
                                          image_folder=image_folder), 1.0
        else:
            scene = load_scene(input_path)
    except DistortedCameraError:  # a COLMAP scene with lens distortion: undistort it
        from .sfm import undistort_colmap
        scene = undistort_colmap(input_path, workdir, sfm or SfmConfig(), progress)
    return (normalize(scene) if is_off_frame(scene) else scene), downscale


def interrupted_hint(out: Path, can_resume: bool, since: Optional[float] = None) -> str:
    """What to run after Ctrl-C stopped `reconstruct` (`can_resume`) or `poses` writing to
    OUT, from what OUT holds: a checkpoint (`--resume`; written at or after the time `since`,
    where given: an earlier run's would resume that run, not the one stopped), structure-from-
    motion's kept features and matches (the same command goes on from them, `sfm.resume`), a
    finished SfM or depth stage (reused by the same command), or nothing yet."""
    from .checkpoint import latest_checkpoint
    from .depth.cache import CACHE_FILE
    from .sfm import recorded_config, resume
    out = Path(out)
    latest = latest_checkpoint(out / "checkpoints") if can_resume else None
    if latest is not None and (since is None or latest.stat().st_mtime >= since):
        return "continue with `--resume`"
    if resume.kept(out):
        return ("run the same command again: structure-from-motion goes on from the features "
                "and matches it kept")
    done = [what for what, there in (("structure-from-motion", recorded_config(out) is not None),
                                     ("depth maps", (out / CACHE_FILE).is_file())) if there]
    if done:
        return f"run the same command again: it reuses the finished {' and '.join(done)}"
    return "nothing was saved yet; run the same command again"


def _check_resumable(out: Path) -> None:
    """Refuse --resume before any work (SfM, the depth stage) where OUT's run stopped before
    training began (no scene.json): there is nothing to resume."""
    if out.is_dir() and not (out / wsp.SCENE_JSON).is_file():
        raise VoxsplatError(f"{out}: --resume, but its run stopped before training began, so "
                            f"there is nothing to resume; drop --resume and "
                            f"{interrupted_hint(out, False)}")


def _resumed_sfm(out: Path, sfm):
    """The SfM settings a resumed run keeps: those of the SfM run in its workspace."""
    from .sfm import SfmConfig, recorded_config
    recorded = recorded_config(out)
    if recorded is None:
        return sfm
    if sfm is not None and sfm != SfmConfig() and sfm != recorded:
        raise VoxsplatError("SfM options with --resume: a resumed run keeps the SfM settings it "
                            "started with; drop --matcher/--mask-features/--video-frames, or "
                            "start over without --resume")
    return recorded


def _check_same_photos(input_path: Path, out: Path, sfm) -> None:
    """Raise a VoxsplatError where the photos (or video) that a resumed run's SfM posed have
    changed since: SfM would run again, and the checkpoint's Gaussians not fit its poses."""
    from .sfm import SfmConfig, is_current, recorded_config
    if (needs_poses(input_path) and recorded_config(out) is not None
            and not is_current(out, input_path, sfm or SfmConfig())):
        raise VoxsplatError(f"{input_path}: its photos changed (added, removed, replaced or "
                            f"edited) since this run posed them; --resume would train the "
                            f"Gaussians of the old poses on new ones: start over without --resume")


def _video_of_folder(input_path: Path, progress: bool) -> Path:
    """`input_path`, or the only video of a folder that holds nothing else to pose."""
    input_path, note = input_of_folder(input_path)
    if note and progress and distributed.is_main():
        print(note)
    return input_path


def run_poses(input_path: Path, out: Path, sfm=None, progress: bool = True):
    """`voxsplat poses`: structure-from-motion alone; the model lands in OUT/sfm/sparse/0.
    A COLMAP project with lens distortion is undistorted there instead."""
    input_path = _video_of_folder(input_path, progress)
    out_folder.check_fresh_out(Path(out), input_path, replaced=())
    if (Path(out) / wsp.SCENE_JSON).is_file() and (Path(out) / "sfm").is_dir():
        from .sfm import SfmConfig, is_current
        if not is_current(Path(out), input_path, sfm or SfmConfig()):  # (the same: reused)
            raise VoxsplatError(f"--out {out} holds a reconstruction made on the poses of its "
                                f"sfm/, which new poses would leave its Gaussians off; give "
                                f"another --out, or reconstruct again")
    if not needs_poses(input_path):
        from ..data.load import find_reader
        from ..data.readers.colmap import find_colmap_model
        find_reader(input_path)  # a missing path, an empty folder, ...: their own message
        model = find_colmap_model(Path(input_path).parent if Path(input_path).is_file()
                                  else Path(input_path))
        if model is None or not _distorted(model):
            from ..data.video import VIDEO_EXTENSIONS
            raise VoxsplatError(f"{input_path}: already has poses; `voxsplat poses` takes a "
                                f"folder of photos or a video ({', '.join(VIDEO_EXTENSIONS)})")
    return load_input(input_path, out, 1.0, sfm, progress)


def _distorted(model_dir: Path) -> bool:
    """Whether a COLMAP model has a camera that `data.readers.colmap` cannot read as pinhole."""
    from ..data.readers.colmap import camera_intrinsics, read_colmap_model
    try:
        for camera in read_colmap_model(model_dir).cameras.values():
            camera_intrinsics(camera, model_dir)
    except DistortedCameraError:
        return True
    except VoxsplatError:
        return False
    return False


POSE_REFINE = "optim.pose_refine"


def refines_sfm_poses(preset: str, posed_by_sfm: bool, overrides: Sequence[str]) -> bool:
    """Whether a run turns `optim.pose_refine` on by itself: the `sparse` preset on poses that
    SfM has just estimated (photos, a video), unless `--set optim.pose_refine=...` decides.

    On an H100, a handful of photos posed by SfM (DTU scan24's 6, seeds 0 and 1; fern's 5),
    held-out PSNR after test-time pose alignment: explicit Gaussians +0.20 / +0.31 / +0.31 dB,
    the voxel model +0.25 / -0.02 / +0.19, for 10-15% more time
    (`bench/results/explore/unposed_fewview_pose_refine_h100_2026-12-06.json`).
    """
    named = any(assigned_key(a) == POSE_REFINE for a in overrides)
    return preset == "sparse" and posed_by_sfm and not named


def _config(preset: str, steps: Optional[int], downscale: Optional[float],
            model: Optional[str] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    cfg = get_preset(preset, model)
    if steps is not None:
        cfg = with_steps(cfg, steps)
    if downscale is not None:  # (checked by run_reconstruct before any work)
        from dataclasses import replace
        cfg = replace(cfg, downscale=downscale)
    for assignment in overrides:  # last: a field set by name wins
        cfg = override(cfg, assignment)
    return cfg


def load_workspace_scene(ws: Path):
    """Reload the scene a workspace was made from (its input path and options): photos and
    videos from the SfM run in ws/sfm/ (undistorted, with their masks; OUT/sfm/ for the
    earlier reconstruction in OUT/previous/), which this never runs again. Returns (scene,
    the workspace's record).

    Raises:
        VoxsplatError: the input is gone, or its photos changed since the workspace posed them,
            or they load now as other views or poses than its Gaussians were trained on.
    """
    from .sfm import SfmConfig, is_current
    rec = wsp.open_workspace(ws)
    spec = rec["input"]
    if not spec.get("path"):
        raise VoxsplatError(f"{Path(ws) / wsp.SCENE_JSON}: records no input path")
    path = Path(spec["path"])
    home = out_folder.previous_sfm_home(ws)  # OUT for OUT/previous/ (a stopped rerun's)
    sfm = _resumed_sfm(home, None)  # the settings of the SfM run whose poses the workspace has
    if needs_poses(path) and not is_current(home, path, sfm or SfmConfig()):
        raise VoxsplatError(f"{path}: its photos changed (added, removed, replaced or edited) "
                            f"since this workspace posed them, or {home / 'sfm'} is gone; its "
                            f"Gaussians fit those poses only: reconstruct again")
    scene = load_input(path, home, spec.get("downscale", 1.0), sfm, progress=False,
                       image_folder=spec.get("image_folder"), max_side=spec.get("max_side"))
    scene = with_holdout(scene, spec.get("holdout"))
    if not pipeline.same_posed_views(scene, rec):
        why = (f"the structure-from-motion run in {home / 'sfm'} is another than the one they "
               f"were trained on (a rerun with other SfM settings replaced it and stopped "
               f"before it trained: run it again, which reuses that SfM run)" if needs_poses(path) else
               "the input was edited since")
        raise VoxsplatError(f"{path}: its views load now with other names, sizes or poses than "
                            f"{ws}'s Gaussians were trained on: {why}; the Gaussians still "
                            f"render and export alone (render, export --format ply/splat), or "
                            f"reconstruct again")
    return wsp.scene_with_record_poses(scene, rec), rec


def input_scene(ws: Path, without: str):
    """`load_workspace_scene`'s scene, or None with a note on stderr (the input is gone or no
    longer loads) saying what is written `without` it."""
    try:
        scene, _ = load_workspace_scene(ws)
    except VoxsplatError as e:
        print(f"voxsplat: note: the photos are not at hand ({e}); {without}", file=sys.stderr)
        return None
    return scene


def run_eval(ws: Path, split: str = "test", device: str = "auto",
             renders: Optional[Path] = None, masked: bool = False) -> dict:
    """`voxsplat eval`: metrics of the workspace's Gaussians on `split`, into DIR/metrics.json
    (the views the run is measured on; another split's go to DIR/metrics_SPLIT.json, e.g. the
    training views' for `--split train`); with `renders`, each view's render (NAME.png) and
    photo (NAME_gt.png) go to that folder. `masked`: inside the views' masks only (see
    `pipeline.evaluate`), which the input must have, into metrics_masked.json (or
    metrics_SPLIT_masked.json): the run's own figures stay."""
    dev = resolve_device(device)
    scene, rec = load_workspace_scene(ws)
    if split == "test":  # or the training views, for a run that held none out (--holdout 0)
        split = pipeline.measured_split(scene)
    if not scene.splits.get(split):
        have = ", ".join(k for k, v in scene.splits.items() if v)
        raise VoxsplatError(f"--split {split}: the workspace has no such views; it has {have}")
    if masked and scene.masks is None:
        raise VoxsplatError(f"--masked: the input {rec['input'].get('path')} has no masks; drop "
                            f"--masked, or reconstruct from photos with masks (transparent "
                            f"backgrounds, or a masks/ folder beside them)")
    name = "metrics" + ("" if split == pipeline.measured_split(scene) else f"_{split}")
    target = Path(ws) / (name + ("_masked" if masked else "") + ".json")
    splats = pipeline.load_splats(ws)
    saved = RenderFolder(Path(renders), scene.names) if renders is not None else None
    try:
        metrics = pipeline.evaluate(scene, splats, split, dev, rec["config"].get("backend", "auto"),
                                    masked, read_sky(ws), saved)
        recorded = Path(ws) / wsp.METRICS_JSON
        old = wsp.read_json(recorded) if recorded.is_file() else {}
        for k, v in old.items():  # what training recorded (model, steps, seconds, device, ...) stays
            if k != "n_test_views" or split == "test":  # (the held-out views' count)
                metrics.setdefault(k, v)
        metrics["eval_device"] = pipeline._device_name(dev)
        metrics.setdefault("device", metrics["eval_device"])
        wsp.write_json(target, metrics)
    except BaseException:
        if saved is not None:
            saved.discard()
        raise
    if saved is not None:
        saved.finish()
    return metrics


def run_export_depth(ws: Path, out: Path, device: str = "auto", frame: str = "input",
                     progress: bool = True, keep_blended: bool = False) -> Path:
    """`voxsplat export --format depth`: each view's depth map and camera, with its photo and
    mask when the workspace's input can still be loaded, as an RGB-D dataset (``export.rgbd``).
    `keep_blended`: keep the pixels that blend a nearer and a farther surface
    (``MeshConfig.max_blend_offset``)."""
    from .export.frame import input_from_world, is_identity, similarity_parts
    from .export.mesh import MeshConfig
    from .export.rgbd import check_output_folder, write_rgbd
    if frame not in pipeline.FRAMES:
        raise VoxsplatError(f"unknown frame '{frame}'; use {' or '.join(pipeline.FRAMES)}")
    check_output_folder(Path(out))
    dev = resolve_device(device)
    rec = wsp.open_workspace(ws)
    out_from_world = input_from_world(rec) if frame == "input" else torch.eye(4, dtype=torch.float64)
    if not is_identity(out_from_world):
        similarity_parts(out_from_world, Path(ws) / wsp.SCENE_JSON)
    splats = {k: v.to(dev) for k, v in pipeline.exportable_splats(ws).items()}
    cams = wsp.cameras_from_record(rec)
    names = [im["name"] for im in rec["images"]]
    images = masks = None
    scene = input_scene(ws, "writing depth maps and cameras only")
    if scene is not None:  # (the views of the record: `load_workspace_scene` checks)
        images, masks = scene.images, scene.masks
    splits = {k: [int(i) for i in v] for k, v in rec.get("splits", {}).items()}
    return write_rgbd(Path(out), splats, cams, names, splits, out_from_world, images, masks,
                      MeshConfig(max_blend_offset=0.0) if keep_blended else MeshConfig(),
                      backend=rec["config"].get("backend", "auto"), progress=progress)


def run_export(ws: Path, fmt: str, out: Path, **options) -> Path:
    """`voxsplat export` but for depth maps (`run_export_depth`): `pipeline.export`, meshes and
    points carved by the masks of the training views (`load_workspace_scene`, loaded when
    needed: SfM's undistorted ones for photos and videos)."""
    def scene():
        return input_scene(ws, "exporting without the training views' masks")
    return pipeline.export(ws, fmt, out, input_scene=scene, **options)


DEMO_STEPS = 1200
"""Steps of the demo's `fast` run: ~3 minutes on 2 CPU cores, > 30 dB on the synthetic scene."""


DEMO_PRODUCTS = ("video.mp4", "video_depth.mp4", "mesh.ply")
"""What `demo` writes beyond a workspace's own products."""


def run_demo(out: Path, device: str = "auto", steps: Optional[int] = None, progress: bool = True) -> dict:
    """`voxsplat demo`: synthetic scene -> reconstruct -> eval -> export -> orbit video -> mesh."""
    from ..data.synthetic import SyntheticConfig, make_synthetic_scene, save_ground_truth
    from ..data.writers import write_blender_dataset
    out = Path(out)
    if steps is not None:  # before the scene is made
        check_steps(steps, f"the demo's default: {DEMO_STEPS}")
    out_folder.check_fresh_out(out, out / "input")  # before anything is written to it
    t0 = time.perf_counter()
    synth = make_synthetic_scene(SyntheticConfig())
    save_ground_truth(synth, out / "ground_truth")
    data_dir = write_blender_dataset(synth.scene, out / "input")
    print(f"generated the synthetic scene in {out / 'input'} ({time.perf_counter() - t0:.1f}s)")
    if (out / wsp.SCENE_JSON).is_file():  # an earlier demo's: none of its results may outlive
        for name in DEMO_PRODUCTS:       # this run's, should it stop half-way
            (out / name).unlink(missing_ok=True)
    metrics = run_reconstruct(data_dir, out, "fast", device, DEMO_STEPS if steps is None else steps,
                              None, False, progress)
    print(f"held-out PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} on "
          f"{metrics['n_views']} views; {metrics['n_gaussians']} Gaussians")
    from .render_video import run_render
    written = run_render(out, "orbit", 120, out / "video.mp4", depth=True, device=device,
                         progress=progress)
    t0 = time.perf_counter()
    mesh = run_export(out, "mesh", out / "mesh.ply", device=device, progress=progress)
    print(f"meshed the Gaussians (TSDF) in {time.perf_counter() - t0:.1f}s")
    for p in [out / wsp.SPLATS_PLY, out / wsp.SPLATS_SPLAT, out / wsp.METRICS_JSON, *written, mesh]:
        print(f"wrote {p}")
    return metrics
