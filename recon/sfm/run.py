"""Photos or a video in, a posed `Scene` out: the SfM stages, their checks and the workspace.

Workspace layout (inside `out_dir`):

    frames/                 frames sampled from a video input (video only)
    sfm/images/             undistorted pinhole images of the registered views
    sfm/sparse/0/           their COLMAP model (PINHOLE cameras, binary), readable by COLMAP
                            tools and by `voxsplat.data.readers.colmap.read_colmap`
    sfm/distorted/sparse/0  the model before undistortion
    sfm/database.db         COLMAP's features and matches
    sfm/sfm.json            what ran: input, config, registered images, timings

Everything is built in a hidden temporary folder and renamed to `sfm/` at the end, so a
failed or interrupted run leaves no partial workspace. A run stopped by anything but its input
(Ctrl-C, a crash) keeps that folder's COLMAP database, and the next run on the same photos
and settings goes on from its features and matches (`resume`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...data.atomic import atomic_open, replace_folder
from ...data.errors import VoxsplatError, shortened_list
from ...data.images import list_images
from ...data.readers.colmap import (DistortedCameraError, find_colmap_model, find_image_folder,
                                    read_colmap)
from ...data.readers.common import folder_masks, mask_folder
from ...data.scene import Scene
from ...data.transforms import normalize
from ...data.video import extract_frames, is_video_file
from . import colmap_steps as steps
from . import resume
from .config import SfmConfig
from .inputs import (InputImage, camera_groups, choose_matcher, scan_images, stage_images,
                     stage_masks, use_guided_matching)
from .progress import Progress, StageProgress

SFM_DIR = "sfm"
FRAMES_DIR = "frames"
REPORT_FILE = "sfm.json"
TWO_VIEW_MIN_POINTS = 100
"""Fewest points a model mapped with two-view tracks must have to be kept: COLMAP's own
support for an initial pair (`init_min_num_inliers`). Below it the two photos' focal length
and poses are guesses: DTU scan24's photos 25 and 28 gave 31 points, a focal length 2.6x the
true one and a relative rotation 20 degrees off. Pairs of fern's photos (no EXIF) gave 104-213
points and focal lengths 0.84-1.22x the true one; two neighbours in its sequence do not pose
(too little parallax to start)."""
PARALLAX_MATCHES = 100
"""Matches a verified pair has when a failure to start a model is its parallax, not its
matches: COLMAP's `init_min_num_inliers`. Fern's neighbouring photos 3 and 4 match with 387,
DTU scan24's photos 22, 25 and 28 (which do not pose) with at most 43 (after the guided pass)."""
_IMAGE_SUB_FOLDERS = ("images", "image", "input", "rgb")


class PartialRegistrationWarning(UserWarning):
    """SfM registered enough images to go on, but not all of them."""


def check_registration(image_dir: Path, names: Sequence[str], registered: Sequence[str],
                       matcher: str, config: SfmConfig, masked: bool = False,
                       files: Optional[dict[str, str]] = None) -> Optional[str]:
    """Judge how many images the model registered; `files` maps the names SfM saw to the
    user's files where they differ (photos re-encoded for COLMAP: IMG.webp -> IMG.jpg).

    Returns:
        None when all are registered, else a warning message (the fraction is at least
        `config.min_registered_fraction`).

    Raises:
        VoxsplatError: fewer than `min_registered_fraction` of the images are registered.
    """
    missing = sorted(set(names) - set(registered))
    if not missing:
        return None
    missing = sorted((files or {}).get(name, name) for name in missing)
    fraction = len(registered) / len(names)
    hint = ("try --matcher exhaustive (sequential matching only pairs images with nearby "
            "names), or take more photos overlapping them" if matcher == "sequential" else
            "try --matcher exhaustive (retrieval matching pairs each image with the "
            "few most like it), or take more photos overlapping them" if matcher == "retrieval" else
            "take more photos overlapping them (each view should share ~60% with a "
            "neighbour)")
    message = (f"{image_dir}: SfM registered only {len(registered)} of {len(names)} images "
               f"({fraction:.0%}; not registered: {shortened_list(missing)}); {hint}"
               f"{_turntable_hint(masked, config)}")
    if fraction < config.min_registered_fraction:
        raise VoxsplatError(f"{message} (at least {config.min_registered_fraction:.0%} needed; "
                            f"--set sfm.min_registered_fraction={max(0.01, math.floor(fraction * 100) / 100):g} "
                            f"accepts as few)")
    return message


def _shown_name(source: Path, image_dir: Path) -> str:
    """A photo's file as the user knows it: relative to the photo folder where it is inside."""
    try:
        return Path(source).relative_to(image_dir).as_posix()
    except ValueError:
        return Path(source).name


def _turntable_hint(masked: bool, config: SfmConfig) -> str:
    """What to try when photos with masks fail to register: the masks may hide a turntable."""
    if not masked or config.mask_features:
        return ""
    return ("; if the object turns in front of a still background (a turntable), pass "
            "--mask-features so that SfM matches only what the masks keep")


def _no_model_error(image_dir: Path, inliers: Sequence[int], n_images: int, matcher: str,
                    hint: str = "") -> VoxsplatError:
    """Why no model started, from the verified pairs' inlier counts `inliers`, and what to
    retake: no overlap, too few matches, or (a pair with COLMAP's own initial-pair support of
    matches) too little parallax, where more photos from the same spots would not help."""
    hint = ("; or use --matcher exhaustive" if matcher in ("sequential", "retrieval") else "") + hint
    if matcher in ("sequential", "retrieval"):  # only some pairs were tried
        matched = f"{len(inliers)} image pairs matched in a consistent geometry"
    else:
        total = n_images * (n_images - 1) // 2
        matched = f"{len(inliers)} of the {total} image pairs matched in a consistent geometry"
    if not inliers:
        why = (f"({matched}); the photos do not overlap enough: retake them so neighbours share "
               f"~60% of the view")
    elif max(inliers) >= PARALLAX_MATCHES:
        why = (f"({matched}, up to {max(inliers)} matches a pair, but none could start a model: "
               f"too little parallax, the camera hardly moved between shots or only turned); "
               f"take the photos from further apart, stepping sideways between shots by about "
               f"a tenth of the distance to the subject")
    else:
        why = (f"({matched}, but none could start a model: at most {max(inliers)} matches a "
               f"pair, too few); add photos taken between and around these, with neighbours "
               f"sharing ~60% of the view and the camera moving between shots")
    return VoxsplatError(f"{image_dir}: SfM could not build a model from the {n_images} images "
                         f"{why}{hint}")


def _match_and_map(database: Path, stage_dir: Path, models_dir: Path, n: int, matcher: str,
                   config: SfmConfig, report: StageProgress, guided: bool, seconds: dict):
    """Match (guided or not) and map the `n` images; the largest model or None. Adds the
    stages' seconds to `seconds["matching"]` and `seconds["mapping"]`."""
    report.note(f"{matcher}{' guided' if guided else ''} matching of {n} images")
    t0 = time.perf_counter()
    # (its total: blocks of image pairs, or images for sequential, once COLMAP names them)
    report.start("matching", 1, unit={"sequential": "image", "retrieval": "%"}.get(matcher, "block"))
    steps.match_features(database, matcher, config, guided, report=report.set)
    t1 = time.perf_counter()
    report.start("mapping", n)
    model = steps.map_incremental(database, stage_dir, models_dir, config, report.set)
    seconds["matching"] = seconds.get("matching", 0.0) + t1 - t0
    seconds["mapping"] = seconds.get("mapping", 0.0) + time.perf_counter() - t1
    return model


def _map(images: Sequence[InputImage], image_dir: Path, tmp: Path, matcher: str,
         config: SfmConfig, report: StageProgress, info: dict,
         mask_dir: Optional[Path]) -> tuple:
    """Stage, extract, match and map (with a guided second pass where the first leaves photos
    unregistered, see `SfmConfig.guided_matching`); returns (model, registration warning or
    None).

    `mask_dir`: the staged masks, or None. Stage timings go to info["seconds"];
    info["principal_point_refined"], info["guided_matching"] ("yes", "no", "retry": the
    model came from the second pass, or "tried": it ran and registered no more) and info["two_view_tracks"] (no model started until the
    points seen by only two photos were kept, as two photos need) are set.
    """
    stage_dir, database = tmp / "input", tmp / "database.db"
    stage_images(images, stage_dir)
    t0 = time.perf_counter()
    report.start("features", len(images))
    steps.extract_features(database, stage_dir, camera_groups(images, config.single_camera),
                           config, report.set,
                           mask_dir if config.mask_features else None)
    seconds = {"features": time.perf_counter() - t0}
    guided = use_guided_matching(config, len(images), first_pass_short=False)
    model = _match_and_map(database, stage_dir, tmp / "models", len(images), matcher, config,
                           report, guided, seconds)
    info["guided_matching"] = "yes" if guided else "no"
    first = 0 if model is None else model.num_reg_images()
    if first < len(images) and use_guided_matching(config, len(images), first_pass_short=True):
        report.note(f"only {first} of {len(images)} images registered; matching again, guided "
                    f"by each pair's two-view geometry")
        steps.clear_matches(database)
        retry = _match_and_map(database, stage_dir, tmp / "models_guided", len(images), matcher,
                               config, report, True, seconds)
        info["guided_matching"] = "tried"  # (its timings are in the stages' seconds)
        if retry is not None and retry.num_reg_images() > first:
            model, info["guided_matching"] = retry, "retry"
    info["two_view_tracks"] = False
    inliers = steps.verified_pair_inliers(database) if model is None else []
    if model is None and inliers:
        report.note("no model could start; mapping again with the points only two photos see")
        t0 = time.perf_counter()
        # Two photos hardly fix a focal length, so EXIF's is kept where every photo has one:
        # fern's four pairs with the true focal length in EXIF posed 0.82 / 0.33 / 0.33 / 0.54
        # degrees off, against 0.87 / 1.48 / 1.03 / 2.59 refined (to 0.77-1.27x). Three or
        # more photos keep COLMAP's refinement: kept, fern's 3 / 5 and DTU's 6 / 9 photos
        # posed 3.08 / 0.78 / 0.77-1.06 / 1.14-1.37 degrees off (one of DTU's 6 unregistered
        # once), against 1.92 / 0.84-0.94 / 0.67-0.91 / 1.10-1.36 refined.
        model = steps.map_incremental(database, stage_dir, tmp / "models_two_view", config,
                                      report.set, two_view_tracks=True,
                                      fixed_focal=steps.focal_priors(database))
        seconds["mapping"] += time.perf_counter() - t0
        if model is not None and model.num_points3D() < TWO_VIEW_MIN_POINTS:
            model = None  # too little support to trust its focal length and poses
        info["two_view_tracks"] = model is not None
    if model is None:  # (every photo decoded in full when staged: none is corrupt)
        raise _no_model_error(image_dir, inliers, len(images), matcher,
                              _turntable_hint(mask_dir is not None, config))
    registered = steps.model_summary(model)["registered"]
    report.set(len(registered))
    warning = check_registration(image_dir, [im.name for im in images], registered, matcher,
                                 config, mask_dir is not None,
                                 {im.name: _shown_name(im.source, image_dir) for im in images})
    refined = False
    if config.refine_principal_point:
        model, refined = steps.refine_principal_points(model)
    info["principal_point_refined"] = refined
    info["seconds"] = seconds
    return model, warning


def _undistort(model, tmp: Path, config: SfmConfig, report: StageProgress) -> None:
    """Write the distorted model, then undistorted images and model as images/, sparse/0/."""
    distorted = tmp / "distorted" / "sparse" / "0"
    distorted.mkdir(parents=True)
    model.write(distorted)
    report.start("undistortion", model.num_reg_images())
    steps.undistort(distorted, tmp / "input", tmp / "undistorted", config, report=report.set)
    os.replace(tmp / "undistorted" / "images", tmp / "images")
    (tmp / "sparse").mkdir()
    os.replace(tmp / "undistorted" / "sparse", tmp / "sparse" / "0")
    for leftover in ("undistorted", "input", "models", "models_guided", "models_two_view"):
        shutil.rmtree(tmp / leftover, ignore_errors=True)


def _file_stamps(paths) -> list:
    """[name, size, mtime_ns] of each file (a symlink's target): a photo replaced or edited
    under its name changes it."""
    stamps = []
    for p in paths:
        stat = p.stat()
        stamps.append([p.name, stat.st_size, stat.st_mtime_ns])
    return stamps


def _stamp(source: Path) -> dict:
    """What identifies the input's content: a file's size and time, a folder's images' and
    masks' names, sizes and times."""
    if source.is_file():
        stat = source.stat()
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    folder = _image_folder(source)
    stamp = {"images": _file_stamps(list_images(folder)) if folder else []}
    model = find_colmap_model(source)
    if model is not None:  # a COLMAP scene undistorted into the workspace
        stamp["model"] = {p.name: [p.stat().st_size, p.stat().st_mtime_ns]
                          for p in sorted(model.iterdir()) if p.is_file()}
    masks = mask_folder(folder) if folder else None
    if masks is not None:  # (a key only then: runs made without masks stay valid)
        stamp["masks"] = _file_stamps(sorted(p for p in masks.iterdir() if p.is_file()))
    return stamp


def _report(images: Sequence[InputImage], image_dir: Path, source: Path, config: SfmConfig,
            matcher: str, model, warning: Optional[str], info: dict) -> dict:
    """The content of `sfm.json`."""
    summary = steps.model_summary(model)
    names = [im.name for im in images]
    return {"source": str(source.resolve()), "source_stamp": _stamp(source),
            "image_dir": str(image_dir.resolve()), "images": names, "config": config.to_dict(),
            "matcher": matcher, **summary,
            "unregistered": sorted(set(names) - set(summary["registered"])), "warning": warning,
            **info, "pycolmap": steps.version()}


def _write_report(path: Path, report: dict) -> None:
    with atomic_open(path, "w") as f:
        json.dump(report, f, indent=1)


def _scene(sfm_dir: Path, warning: Optional[str]) -> Scene:
    """The normalized scene of a finished SfM folder; re-issues its registration warning."""
    if warning:
        warnings.warn(warning, PartialRegistrationWarning, stacklevel=3)
    return normalize(read_colmap(sfm_dir))


def run_sfm(image_dir: Path, out_dir: Path, config: SfmConfig = SfmConfig(),
            progress: Progress = True, *, from_video: bool = False,
            source: Optional[Path] = None) -> Scene:
    """Pose a folder of photos with COLMAP and return the undistorted, normalized scene.

    Args:
        image_dir: folder with the photos (directly inside; mixed sizes and cameras allowed).
        out_dir: workspace; the result goes to `out_dir/sfm/` (see the module doc).
        config: SfM options.
        progress: True for progress bars on stderr, False for none, or a callback
            progress(stage, done, total).
        from_video: the images are video frames in order (matcher `auto` -> sequential).
        source: what the images came from (e.g. the video), recorded in `sfm.json`.

    Returns:
        Scene of the registered images (undistorted, OpenCV pinhole cameras), with SfM points
        and colours, "test" = every 8th image by name, normalized by
        `voxsplat.data.transforms.normalize`.

    Raises:
        VoxsplatError: fewer than 2 images, pycolmap missing, no model (images do not
            overlap), or fewer than `config.min_registered_fraction` of the images registered.
    """
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    images = scan_images(image_dir)
    steps.import_pycolmap()  # fail before creating anything
    matcher = choose_matcher(config, len(images), from_video)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=resume.WORK_PREFIX, dir=out_dir))
    report = StageProgress(progress)
    info: dict = {}
    t0 = time.perf_counter()
    try:
        masked = stage_masks(images, image_dir, tmp / "input_masks")
        if config.mask_features and not masked:
            raise VoxsplatError(f"{image_dir}: --mask-features needs masks, and the photos have "
                                f"none; give them an alpha channel or put NAME.png masks (white "
                                f"= the object) in {image_dir / 'masks'}")
        feature_masks = tmp / "input_masks" if masked and config.mask_features else None
        resumed = resume.start(tmp, resume.resume_key(images, config, matcher, feature_masks,
                                                      steps.version()))
        if resumed is not None:
            report.note(f"going on from the features and matches of the run that stopped in "
                        f"{resumed}")
        with steps.colmap_logging():
            model, warning = _map(images, image_dir, tmp, matcher, config, report, info,
                                  tmp / "input_masks" if masked else None)
            t1 = time.perf_counter()
            _undistort(model, tmp, config, report)
        if masked:  # the masks follow their photos through undistortion, into masks/
            steps.undistort_masks(tmp / "distorted" / "sparse" / "0", tmp / "sparse" / "0",
                                  tmp / "input_masks", tmp / "masks")
            shutil.rmtree(tmp / "input_masks")
        info["seconds"].update(undistortion=time.perf_counter() - t1,
                               total=time.perf_counter() - t0)
        _write_report(tmp / REPORT_FILE, _report(images, image_dir, Path(source or image_dir),
                                                 config, matcher, model, warning, info))
        replace_folder(tmp, out_dir / SFM_DIR)
    except BaseException as e:
        report.close()
        # the input's own failures (no model, too few images) would come back on a rerun
        if not isinstance(e, VoxsplatError) and resume.keep(tmp):
            print(f"sfm: stopped; the features and matches so far are kept in {tmp}, and the "
                  f"same command goes on from them", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    finally:
        report.close()
    return _scene(out_dir / SFM_DIR, warning)


def undistort_colmap(source: Path, out_dir: Path, config: SfmConfig = SfmConfig(),
                     progress: Progress = True) -> Scene:
    """A COLMAP scene whose cameras are distorted (or not pinhole), made pinhole by pycolmap's
    undistorter into `out_dir/sfm/` (images/, sparse/0/, masks/ when the scene has masks,
    sfm.json) and read from there, in the model's own frame. A finished run for the same
    model and images is reused.

    Args:
        source: the COLMAP scene (folder with sparse/0 and images/, or the model folder).

    Raises:
        VoxsplatError: no model or images folder, pycolmap missing, or undistortion failed.
    """
    source, out_dir = Path(source), Path(out_dir)
    if source.is_file():
        source = source.parent
    model_dir = find_colmap_model(source)
    image_dir = find_image_folder(model_dir) if model_dir is not None else None
    if image_dir is None:
        raise VoxsplatError(f"{source}: no COLMAP model with an images/ folder beside it")
    if _cached(workdir=out_dir, source=source, config=config) is not None:
        return read_colmap(out_dir / SFM_DIR)
    steps.import_pycolmap()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SFM_DIR}.", dir=out_dir))
    report = StageProgress(progress)
    try:
        report.note(f"undistorting the images of {model_dir} (lens distortion)")
        report.start("undistortion", 0)
        with steps.colmap_logging():
            steps.undistort(model_dir, image_dir, tmp / "undistorted", config, report=report.set)
        os.replace(tmp / "undistorted" / "images", tmp / "images")
        (tmp / "sparse").mkdir()
        os.replace(tmp / "undistorted" / "sparse", tmp / "sparse" / "0")
        shutil.rmtree(tmp / "undistorted")
        if mask_folder(image_dir) is not None:
            _undistort_scene_masks(model_dir, image_dir, tmp)
        _write_report(tmp / REPORT_FILE, {
            "source": str(source.resolve()), "source_stamp": _stamp(source),
            "config": config.to_dict(), "undistorted_from": str(model_dir.resolve()),
            "pycolmap": steps.version()})
        replace_folder(tmp, out_dir / SFM_DIR)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        report.close()
    return read_colmap(out_dir / SFM_DIR)


def _undistort_scene_masks(model_dir: Path, image_dir: Path, tmp: Path) -> None:
    """The scene's masks (see `data.readers.common.mask_folder`) warped like their images,
    into `tmp/masks/NAME.png`."""
    from PIL import Image
    names = sorted(p.relative_to(tmp / "images").as_posix()
                   for p in (tmp / "images").rglob("*") if p.is_file())
    sizes = []
    for name in names:
        with Image.open(image_dir / name) as img:
            sizes.append(img.size)
    masks = folder_masks([image_dir / n for n in names], image_dir, sizes)
    for name, mask in zip(names, masks):
        target = tmp / "input_masks" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).save(target)
    steps.undistort_masks(model_dir, tmp / "sparse" / "0", tmp / "input_masks", tmp / "masks")
    shutil.rmtree(tmp / "input_masks")


def _cached(workdir: Path, source: Path, config: SfmConfig) -> Optional[dict]:
    """The report of a finished SfM run in `workdir` for the same input and config, if any."""
    path = workdir / SFM_DIR / REPORT_FILE
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = (report.get("source") == str(source.resolve())
            and report.get("source_stamp") == _stamp(source)
            and report.get("config") == config.to_dict())
    return report if same and find_colmap_model(workdir / SFM_DIR) is not None else None


def is_current(workdir: Path, source: Path, config: SfmConfig) -> bool:
    """Whether `workdir` holds a finished SfM run of `source` as it is now (the same photos,
    names, sizes and times) with `config`: what `load_or_run_sfm` reuses."""
    return _cached(Path(workdir), Path(source), config) is not None


def recorded_source(workdir: Path) -> Optional[Path]:
    """The input that the SfM run kept in `workdir` posed (its `sfm/sfm.json`), if any."""
    try:
        return Path(json.loads((Path(workdir) / SFM_DIR / REPORT_FILE).read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def recorded_config(workdir: Path) -> Optional[SfmConfig]:
    """The settings of the SfM run kept in `workdir` (its `sfm/sfm.json`), if any."""
    try:
        return SfmConfig.from_dict(json.loads((Path(workdir) / SFM_DIR / REPORT_FILE).read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError, VoxsplatError):
        return None


def _image_folder(path: Path) -> Optional[Path]:
    """`path` if it holds images, else its first `images/`-like sub-folder that does."""
    if list_images(path):
        return path
    return next((path / s for s in _IMAGE_SUB_FOLDERS
                 if (path / s).is_dir() and list_images(path / s)), None)


def _video_sfm(video: Path, workdir: Path, config: SfmConfig, progress: Progress) -> Scene:
    """Sample the video's frames into `workdir/frames/` and pose them. Where SfM fails on
    them, the frames go (a rerun samples the same ones again) with `workdir` if this made it,
    and the message names the video and says that its camera must move."""
    created = not workdir.exists()

    def remove_created() -> None:
        if created and workdir.is_dir() and not any(workdir.iterdir()):
            workdir.rmdir()

    report = StageProgress(progress)
    report.start("frames", 0)
    try:
        extract_frames(video, workdir / FRAMES_DIR, config.video_frames,
                       min_sharpness_ratio=config.video_min_sharpness_ratio,
                       max_size=config.video_max_size, progress=report.set)
    except BaseException:
        remove_created()
        raise
    finally:
        report.close()
    try:
        return run_sfm(workdir / FRAMES_DIR, workdir, config, progress, from_video=True,
                       source=video)
    except VoxsplatError as e:
        shutil.rmtree(workdir / FRAMES_DIR, ignore_errors=True)
        remove_created()
        message = str(e).replace(str(workdir / FRAMES_DIR), f"{video} (its frames)")
        raise VoxsplatError(f"{message}; in a video the camera must move around the scene "
                            f"(one that stands still or only turns cannot be posed)") from None


def load_or_run_sfm(input_path: Path, workdir: Path, config: SfmConfig = SfmConfig(),
                    progress: Progress = True) -> Scene:
    """A posed scene from a COLMAP model, or by running SfM on photos or a video.

    - a COLMAP scene (`sparse/0/` with `images/`, or a model file): read, no SfM;
    - a video file: frames sampled into `workdir/frames/` (see `data.video`), then SfM;
    - a folder of photos (directly or in `images/`): SfM.
    A finished SfM run in `workdir` for the same input (same video file, or same image names)
    and config is reused.

    Returns:
        The scene, normalized by `voxsplat.data.transforms.normalize`.

    Raises:
        VoxsplatError: the input is missing or not one of the above, or SfM fails.
    """
    path, workdir = Path(input_path), Path(workdir)
    if not path.exists():
        raise VoxsplatError(f"{path}: no such file or folder; check the path")
    colmap_root = path.parent if path.is_file() and path.stem in ("cameras", "images") else path
    if colmap_root.is_dir() and find_colmap_model(colmap_root) is not None:
        try:
            return normalize(read_colmap(colmap_root))
        except DistortedCameraError:
            return normalize(undistort_colmap(colmap_root, workdir, config, progress))
    cached = _cached(workdir, path, config)
    if cached is not None:
        if progress:
            print(f"sfm: reusing the poses in {workdir / SFM_DIR} (same photos and settings)",
                  flush=True)
        return _scene(workdir / SFM_DIR, cached.get("warning"))
    if path.is_file() and is_video_file(path):
        return _video_sfm(path, workdir, config, progress)
    folder = _image_folder(path) if path.is_dir() else None
    if folder is None:
        raise VoxsplatError(f"{path}: not a folder of photos, a video or a COLMAP model; give a "
                            f"folder of .jpg/.png photos, a video (.mp4, .mov, ...) or a folder "
                            f"with sparse/0 and images/")
    return run_sfm(folder, workdir, config, progress, source=path)
