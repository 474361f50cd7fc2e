"""Each COLMAP stage as one function over pycolmap; the one module that imports pycolmap.

pycolmap is imported lazily (importing voxsplat never needs it); a missing install raises a
VoxsplatError that says what to install. COLMAP's own log is silenced unless VOXSPLAT_DEBUG
is set.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from ...data.errors import VoxsplatError
from .config import SfmConfig
from .inputs import InputImage

PRINCIPAL_POINT_MIN_IMAGES = 10
"""A camera's principal point is refined only when this many registered images share it."""
PRINCIPAL_POINT_MAX_SHIFT = 0.02
"""Largest accepted principal-point move, as a fraction of the image's longest side."""
MATCH_BLOCK = 16
"""Images per block of exhaustive matching (COLMAP's default 50): COLMAP checks for a
cancelled run between blocks, so Ctrl-C waits for at most a block of 16 x 16 image pairs,
not 50 x 50 (kitchen's 25 photos on 2 cores: 43 s with either size, where 8 took 54 s)."""

POLL_SECONDS = 0.1
"""How often the main thread looks up from a running COLMAP stage (for Ctrl-C, and progress)."""
Report = Callable[[int, int], None]
"""Called as report(done, total)."""
_PROCESSING = re.compile(
    r"(?:Processing|Matching) (?:block|image) \[(\d+)/(\d+)(?:, (\d+)/(\d+))?\]")
"""COLMAP's log line as its matcher starts a block of image pairs ("Processing block [2/3,
1/3]", exhaustive) or an image's pairs ("Processing image [4/12]", sequential); "Matching"
instead of "Processing" in COLMAP after pycolmap 4.2. Every block holds about the same number
of pairs (COLMAP splits each pair of blocks by the images' places in them), so the count of
blocks tracks the work."""
_PROCESSED = re.compile(r"Processed file \[(\d+)/(\d+)\]")
"""COLMAP's log line as its feature extractor finishes an image ("Processed file [3/25]")."""
_UNDISTORTING = re.compile(r"Undistorting image \[(\d+)/(\d+)\]")
"""COLMAP's log line as its undistorter waits for an image's result ("Undistorting image
[3/25]": the images before it are done)."""


def import_pycolmap():
    """The pycolmap module.

    Raises:
        VoxsplatError: pycolmap is not installed.
    """
    # COLMAP's log (glog) holds INFO lines in a buffer for up to 30 s unless told otherwise as
    # it loads; the stages' progress reads them as they come (`_ProgressLog`). The variable is
    # set for the import only, and not over the user's own.
    preset = "GLOG_logbuflevel" not in os.environ and "pycolmap" not in sys.modules
    if preset:
        os.environ["GLOG_logbuflevel"] = "-1"
    try:
        import pycolmap
    except ImportError:
        raise VoxsplatError("structure-from-motion needs pycolmap, which is not installed; run "
                            "`pip install pycolmap` (or `pip install 'voxsplat[sfm]'`)") from None
    finally:
        if preset:
            os.environ.pop("GLOG_logbuflevel", None)
    return pycolmap


@contextlib.contextmanager
def colmap_logging() -> Iterator[None]:
    """Silence COLMAP's log below FATAL (kept with VOXSPLAT_DEBUG=1; its ERROR lines, such as
    "Failed to create any sparse model", say less than the one-line error that follows them);
    restores it after."""
    pycolmap = import_pycolmap()
    previous = pycolmap.logging.minloglevel
    if not os.environ.get("VOXSPLAT_DEBUG"):
        pycolmap.logging.minloglevel = 3
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


class _ProgressLog:
    """COLMAP's log during a stage that names each unit of its work as it starts it (matching's
    blocks of image pairs, or images; undistortion's images) or ends it (feature extraction's
    images: `finished`): written to a file under `log_dir` while open, off the terminal
    (unless VOXSPLAT_DEBUG), and read by `poll` into report(done, total). `pattern`'s groups:
    the unit's number and the count of units, and for matching's blocks the second index and
    count ("[2/3, 1/3]").

    COLMAP reports no progress to Python while these stages run; its log is the one place that
    says how far it got. The log file (not stderr, which the progress bars write to) is read
    as it grows; glog's flags are restored on exit, and the file is removed.
    """

    def __init__(self, log_dir: Path, report: Report, pattern: re.Pattern = _PROCESSING,
                 total: int = 1, finished: bool = False) -> None:
        self.log_dir, self.report, self.pattern = Path(log_dir), report, pattern
        self.total, self.finished = total, finished
        self._text, self._file = "", None

    def __enter__(self) -> "_ProgressLog":
        logging = import_pycolmap().logging
        self._flags = {name: getattr(logging, name) for name in
                       ("minloglevel", "alsologtostderr", "stderrthreshold")}
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        logging.set_log_destination(logging.INFO, str(self.log_dir / "colmap."))
        logging.minloglevel = 0
        if not os.environ.get("VOXSPLAT_DEBUG"):
            logging.alsologtostderr = False
            logging.stderrthreshold = 3
        return self

    def run(self, call: Callable[..., Any]) -> Any:
        """`cancellable(call)`, the stage's log read into `report` while it runs."""
        with self:
            return cancellable(call, poll=self.poll)

    def poll(self) -> None:
        """Read what the log gained since the last call; report each unit it names."""
        if self._file is None:
            found = sorted(self.log_dir.glob("colmap.*"))
            if not found:
                return
            self._file = open(found[0], encoding="utf-8", errors="replace")
        self._text += self._file.read()
        *lines, self._text = self._text.split("\n")
        for line in lines:
            m = self.pattern.search(line)
            if m is None:
                continue
            a, n, b, k = (int(g) if g else 1 for g in (*m.groups(), None, None)[:4])
            self.total = n * k
            self.report((a - 1) * k + b - (0 if self.finished else 1), self.total)

    def __exit__(self, *exc) -> None:
        logging = import_pycolmap().logging
        logging.set_log_destination(logging.INFO, "")  # (closes the file)
        for name, value in self._flags.items():
            setattr(logging, name, value)
        try:
            if exc[0] is None:
                self.poll()
                self.report(self.total, self.total)
        finally:
            if self._file is not None:
                self._file.close()
            shutil.rmtree(self.log_dir, ignore_errors=True)


def cancellable(call: Callable[..., Any], poll: Optional[Callable[[], None]] = None) -> Any:
    """`call(cancellation_token=...)`: a pycolmap stage that Ctrl-C (or SIGTERM) stops.

    COLMAP's stages hold Python's main thread until they end, so a KeyboardInterrupt waited
    for the whole stage (exhaustive matching of 100 photos: minutes). The stage runs in a
    worker thread instead; an interrupt cancels it through pycolmap's token, which COLMAP
    checks between chunks of its work, and is raised once the stage has stopped (what it
    wrote so far, features and matches, is kept). A second Ctrl-C raises at once.
    `poll`, if given, is called every POLL_SECONDS while the stage runs; an error it raises
    cancels the stage the same way before it is raised.
    Outside the main thread (where no signal arrives) the stage runs in place.
    """
    if threading.current_thread() is not threading.main_thread():
        return call()
    token = import_pycolmap().CancellationToken()
    outcome: dict = {}
    done = threading.Event()  # (not Thread.join: one interrupted may report the thread ended)

    def work() -> None:
        try:
            outcome["result"] = call(cancellation_token=token)
        except BaseException as e:  # (re-raised in the main thread)
            outcome["error"] = e
        finally:
            done.set()

    threading.Thread(target=work, name="colmap", daemon=True).start()
    try:
        while not done.wait(POLL_SECONDS):
            if poll is not None:
                poll()
    except BaseException as e:  # Ctrl-C, or an error of `poll`'s: COLMAP stops first
        token.cancel()
        if isinstance(e, KeyboardInterrupt):
            print("\nsfm: stopping at COLMAP's next check (Ctrl-C again stops at once)",
                  file=sys.stderr, flush=True)
        while not done.wait(0.1):  # a second KeyboardInterrupt leaves from here
            pass
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def _device(pycolmap):
    return pycolmap.Device.auto if pycolmap.has_cuda else pycolmap.Device.cpu


def extract_features(database: Path, image_dir: Path, groups: Sequence[Sequence[InputImage]],
                     config: SfmConfig, report: Callable[[int], None],
                     mask_dir: Optional[Path] = None) -> None:
    """SIFT features of every image into `database`, one COLMAP camera per group; `report(n)`
    with the number of images done so far, as COLMAP's log names them.

    Each group is one extraction, whose first image creates the group's camera (from EXIF
    when present, else a focal length of 1.2 x the longest side), or, resumed after a stop
    part-way, reuses the camera that its images already in `database` have (COLMAP skips
    those). With `mask_dir` (COLMAP's layout, `NAME.png` per image NAME), no feature is taken
    where the mask is black.
    """
    pycolmap = import_pycolmap()
    options = pycolmap.FeatureExtractionOptions()
    options.max_image_size = config.max_image_size
    options.num_threads = config.num_threads
    options.sift.max_num_features = config.max_num_features
    before = 0  # images of the groups done
    for group in groups:
        names = [im.name for im in group]
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = config.camera_model
        reader.existing_camera_id = _camera_of(database, names) if database.exists() else -1
        if mask_dir is not None:
            reader.mask_path = str(mask_dir)
        mode = pycolmap.CameraMode.SINGLE if len(group) > 1 else pycolmap.CameraMode.PER_IMAGE
        log = _ProgressLog(Path(database).parent / "extraction_log",
                           lambda done, _, before=before: report(before + done), _PROCESSED,
                           len(names), finished=True)
        log.run(functools.partial(
            pycolmap.extract_features, database, image_dir, image_names=names,
            camera_mode=mode, reader_options=reader, extraction_options=options,
            device=_device(pycolmap)))
        before += len(names)


def _camera_of(database: Path, names: Sequence[str]) -> int:
    """The camera id of the first of `names` that COLMAP could read, or -1 if none."""
    pycolmap = import_pycolmap()
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        for name in names:
            image = db.read_image_with_name(name)  # None when COLMAP could not read the file
            if image is not None:
                return int(image.camera_id)
    return -1


def focal_priors(database: Path) -> bool:
    """Whether every camera in `database` starts from a focal length its photos' EXIF gave."""
    pycolmap = import_pycolmap()
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        cameras = db.read_all_cameras()
    return bool(cameras) and all(camera.has_prior_focal_length for camera in cameras)


def match_features(database: Path, matcher: str, config: SfmConfig, guided: bool = False,
                   report: Optional[Report] = None) -> None:
    """Match and geometrically verify image pairs (`exhaustive`, `sequential`, or `retrieval`:
    the sequential pairs, then each image with its `config.retrieval_neighbours` most similar
    images, `retrieval.retrieval_pairs`); `guided`: each verified pair is matched again under
    its two-view geometry. `report(done, total)` follows the blocks of image pairs
    (exhaustive) or images (sequential) matched so far, as COLMAP's log names them (see
    `_ProgressLog`), or the percent done (retrieval); it ends with (total, total)."""
    pycolmap = import_pycolmap()
    report = report or (lambda *_: None)
    restore_names(database)  # (before any pairing: the sequential pairs follow the names)
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = config.num_threads
    matching.guided_matching = guided
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = config.seed
    if matcher == "retrieval":
        # COLMAP skips the pairs already matched: the second pass matches only those it adds
        match_features(database, "sequential", config, guided,
                       lambda done, total: report(50 * done // max(total, 1), 100))
        _match_listed(database, config, matching, verification,
                      lambda done, total: report(50 + 50 * done // max(total, 1), 100))
        return
    if matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = config.sequential_overlap
        match = pycolmap.match_sequential
    else:
        pairing = pycolmap.ExhaustivePairingOptions()
        pairing.block_size = MATCH_BLOCK
        match = pycolmap.match_exhaustive
    log = _ProgressLog(Path(database).parent / "matching_log", report)
    log.run(functools.partial(
        match, database, matching_options=matching, pairing_options=pairing,
        verification_options=verification, device=_device(pycolmap)))


_RENAMED = "renamed_images.json"
"""Beside the database while `_match_listed` runs: {temporary name: photo name} of the photos
whose names it changed (COLMAP's pair list splits names at spaces), for `restore_names`."""


def _match_listed(database: Path, config: SfmConfig, matching, verification,
                  report: Report) -> None:
    """Match the pairs of `retrieval.retrieval_pairs` (through COLMAP's pair list, in blocks)."""
    from .retrieval import retrieval_pairs, write_pairs
    pycolmap = import_pycolmap()
    pairs = retrieval_pairs(database, config.retrieval_neighbours, config.seed)
    if not pairs:
        report(1, 1)
        return
    renamed = Path(database).parent / _RENAMED
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        images = [im for im in db.read_all_images() if any(c.isspace() for c in im.name)]
        temporary = {im.name: f"voxsplat_image_{im.image_id}" for im in images}
        if temporary:  # (the file first: a stop half-way can still undo it)
            renamed.write_text(json.dumps({v: k for k, v in temporary.items()}))
        for im in images:
            im.name = temporary[im.name]
            db.update_image(im)
    listing = Path(database).parent / "retrieval_pairs.txt"
    try:
        write_pairs(listing, [(temporary.get(a, a), temporary.get(b, b)) for a, b in pairs])
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = str(listing)
        pairing.block_size = MATCH_BLOCK * MATCH_BLOCK
        log = _ProgressLog(Path(database).parent / "matching_log", report)
        log.run(functools.partial(
            pycolmap.match_image_pairs, database, matching_options=matching,
            pairing_options=pairing, verification_options=verification,
            device=_device(pycolmap)))
    finally:
        listing.unlink(missing_ok=True)
        restore_names(database)


def restore_names(database: Path) -> None:
    """Give back the photos' names that a stopped `_match_listed` left changed (if any)."""
    renamed = Path(database).parent / _RENAMED
    if not renamed.is_file():
        return
    names = json.loads(renamed.read_text())
    pycolmap = import_pycolmap()
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        for im in db.read_all_images():
            if im.name in names:
                im.name = names[im.name]
                db.update_image(im)
    renamed.unlink()


def clear_matches(database: Path) -> None:
    """Forget every pair's matches and two-view geometry (the matchers skip matched pairs)."""
    pycolmap = import_pycolmap()
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        db.clear_matches()
        db.clear_two_view_geometries()


def verified_pair_inliers(database: Path) -> list[int]:
    """Inlier match counts of the image pairs that passed geometric verification with a usable
    geometry (not the degenerate or watermark verdicts, which COLMAP also records)."""
    pycolmap = import_pycolmap()
    bad = {pycolmap.TwoViewGeometryConfiguration.UNDEFINED,
           pycolmap.TwoViewGeometryConfiguration.DEGENERATE,
           pycolmap.TwoViewGeometryConfiguration.WATERMARK}
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        _, geometries = db.read_two_view_geometries()
        return [len(g.inlier_matches) for g in geometries
                if g.config not in bad and len(g.inlier_matches) > 0]


def map_incremental(database: Path, image_dir: Path, work_dir: Path, config: SfmConfig,
                    on_registered: Callable[[int], None], two_view_tracks: bool = False,
                    fixed_focal: bool = False):
    """Incremental mapping with bundle adjustment; the model with the most images, or None.

    Args:
        on_registered: called with the running count of registered images.
        two_view_tracks: also triangulate points that only two photos see. COLMAP ignores
            them by default, which leaves two photos (or a set where only one pair matches)
            without a single point: "bad initial pair" whatever the thresholds.
        fixed_focal: keep the cameras' focal lengths as they start (their EXIF prior)
            instead of refining them.
    """
    pycolmap = import_pycolmap()
    pycolmap.set_random_seed(config.seed)
    options = pycolmap.IncrementalPipelineOptions()
    options.min_model_size = 2  # small sets too; the caller judges the registered fraction
    options.triangulation.ignore_two_view_tracks = not two_view_tracks
    options.ba_refine_focal_length = not fixed_focal
    options.mapper.abs_pose_refine_focal_length = not fixed_focal
    options.num_threads = config.num_threads
    options.random_seed = config.seed
    count = [0, 0]  # [images in the model being built, the most in any model so far]

    def registered(n: Optional[int]) -> None:
        """COLMAP registered `n` more images, or (None) started a new model with two."""
        count[0] = 2 if n is None else count[0] + n
        count[1] = max(count)
        on_registered(count[1])  # the largest model's count, not a sum over partial models

    models = cancellable(functools.partial(
        pycolmap.incremental_mapping, database, image_path=image_dir, output_path=work_dir,
        options=options, initial_image_pair_callback=lambda: registered(None),
        next_image_callback=lambda: registered(1)))
    if not models:
        return None
    return max(models.values(), key=lambda rec: rec.num_reg_images())


def refine_principal_points(reconstruction):
    """A global bundle adjustment that also refines shared cameras' principal points.

    Only cameras shared by at least `PRINCIPAL_POINT_MIN_IMAGES` registered images are
    refined (the others keep their intrinsics); with fewer views the principal point trades
    off against the camera tilt and drifts. A result that moves a principal point by more
    than `PRINCIPAL_POINT_MAX_SHIFT` of the image size is taken as such a drift and dropped.

    Returns:
        (model, refined): the refined copy and True, or the input model unchanged and False.
    """
    pycolmap = import_pycolmap()
    counts: dict[int, int] = {}
    for image_id in reconstruction.reg_image_ids():
        camera_id = reconstruction.images[image_id].camera_id
        counts[camera_id] = counts.get(camera_id, 0) + 1
    refined_ids = [cid for cid, n in counts.items() if n >= PRINCIPAL_POINT_MIN_IMAGES]
    if not refined_ids:
        return reconstruction, False
    model = pycolmap.Reconstruction(reconstruction)
    ba_config = pycolmap.BundleAdjustmentConfig()
    for image_id in model.reg_image_ids():
        ba_config.add_image(image_id)
    for camera_id in set(counts) - set(refined_ids):
        ba_config.set_constant_cam_intrinsics(camera_id)
    ba_config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_principal_point = True
    options.print_summary = False
    options.ceres.solver_options.max_num_iterations = 50  # converges in ~15 on real scenes
    pycolmap.create_default_bundle_adjuster(options, ba_config, model).solve()
    for camera_id in refined_ids:
        before, after = reconstruction.cameras[camera_id], model.cameras[camera_id]
        shift = math.hypot(after.principal_point_x - before.principal_point_x,
                           after.principal_point_y - before.principal_point_y)
        if not shift <= PRINCIPAL_POINT_MAX_SHIFT * max(before.width, before.height):
            return reconstruction, False
    return model, True


FISHEYE_NUDGE = 1e-6
"""The first distortion coefficient given to a fisheye camera that has none, so that COLMAP's
undistorter (which copies the images of a camera whose extra parameters are all ~0, as if it
were pinhole) resamples it; it moves no pixel by a thousandth."""


def _undistortable_model(reconstruction_dir: Path, work_dir: Path) -> tuple[Path, int]:
    """`reconstruction_dir`, or where fisheye cameras have no distortion (OPENCV_FISHEYE with
    k = 0, SIMPLE_FISHEYE, FISHEYE: the equidistant projection, no pinhole), a copy in
    `work_dir` (inside the undistorter's output, removed with it) whose cameras carry
    `FISHEYE_NUDGE` so that the undistorter resamples them; and its number of registered
    images."""
    pycolmap = import_pycolmap()
    reconstruction = pycolmap.Reconstruction(str(reconstruction_dir))
    nudged = False
    for camera in reconstruction.cameras.values():
        if not camera.is_perspective_fisheye() or not camera.is_undistorted():
            continue
        if camera.extra_params_idxs():
            params = camera.params.copy()
            params[camera.extra_params_idxs()[0]] = FISHEYE_NUDGE
            camera.params = params
        else:  # SIMPLE_FISHEYE (f, cx, cy) or FISHEYE (fx, fy, cx, cy): equidistant
            p = list(camera.params)
            fx, fy, cx, cy = (p[0], p[0], p[1], p[2]) if len(p) == 3 else p
            camera.model = pycolmap.CameraModelId.OPENCV_FISHEYE
            camera.params = [fx, fy, cx, cy, FISHEYE_NUDGE, 0.0, 0.0, 0.0]
        nudged = True
    n_images = reconstruction.num_reg_images()
    if not nudged:
        return Path(reconstruction_dir), n_images
    work_dir.mkdir(parents=True, exist_ok=True)
    reconstruction.write(str(work_dir))
    return work_dir, n_images


def undistort(reconstruction_dir: Path, image_dir: Path, out_dir: Path, config: SfmConfig,
              report: Optional[Report] = None) -> None:
    """Undistorted pinhole images and model of every registered image into
    `out_dir/images` and `out_dir/sparse`. `report(done, total)` follows the images done, as
    COLMAP's log names them; it starts with (0, total) and ends with (total, total).

    Raises:
        VoxsplatError: a camera is left not pinhole (a model the undistorter cannot resample).
    """
    pycolmap = import_pycolmap()
    options = pycolmap.UndistortCameraOptions()
    if config.max_output_size > 0:
        options.max_image_size = config.max_output_size
    model, n_images = _undistortable_model(reconstruction_dir, out_dir / "nudged_model")
    report = report or (lambda *_: None)
    report(0, n_images)
    log = _ProgressLog(Path(out_dir).parent / "undistortion_log", report, _UNDISTORTING, n_images)
    log.run(functools.partial(pycolmap.undistort_images, out_dir, model, image_dir,
                              undistort_options=options, num_threads=config.num_threads))
    for camera in pycolmap.Reconstruction(str(out_dir / "sparse")).cameras.values():
        if camera.model_name not in ("SIMPLE_PINHOLE", "PINHOLE") and not (
                camera.is_perspective_pinhole() and camera.is_undistorted()):
            raise VoxsplatError(f"{reconstruction_dir}: camera {camera.camera_id} "
                                f"({camera.model_name}) could not be undistorted by COLMAP; "
                                f"undistort its images with the tool that calibrated the lens, "
                                f"and give them with a PINHOLE model")


def undistort_masks(distorted_dir: Path, undistorted_dir: Path, mask_dir: Path,
                    out_dir: Path) -> int:
    """Warp each registered image's mask `mask_dir/NAME.png` (white = object, on the photo as
    SfM read it) onto its undistorted image, as `out_dir/NAME.png` (COLMAP's mask layout),
    by nearest lookup through the two models' cameras. Returns how many were written."""
    import numpy as np
    from PIL import Image
    from ...data.images import read_mask
    pycolmap = import_pycolmap()
    before = pycolmap.Reconstruction(str(distorted_dir))
    after = pycolmap.Reconstruction(str(undistorted_dir))
    cameras = {im.name: before.cameras[im.camera_id] for im in before.images.values()}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for image in after.images.values():
        source = mask_dir / f"{image.name}.png"
        if image.name not in cameras or not source.is_file():
            continue
        mask = read_mask(source).numpy()
        cam = after.cameras[image.camera_id]
        W, H = int(cam.width), int(cam.height)
        xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)  # COLMAP: centres at +0.5
        rays = cam.cam_from_img(np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64))
        rays = np.concatenate([rays, np.ones((len(rays), 1))], -1)
        pixels = cameras[image.name].img_from_cam(rays)
        u, v = (np.floor(np.nan_to_num(pixels[:, i], nan=-1.0)).astype(np.int64) for i in (0, 1))
        h, w = mask.shape
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        warped = np.zeros(H * W, bool)
        warped[inside] = mask[v[inside], u[inside]]
        target = out_dir / f"{image.name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)  # names may hold folders (cam0/a.jpg)
        Image.fromarray((warped.reshape(H, W) * 255).astype(np.uint8)).save(target)
        written += 1
    return written


def model_summary(reconstruction) -> dict:
    """Registered image names and model statistics, for the report and messages."""
    names = sorted(reconstruction.images[i].name for i in reconstruction.reg_image_ids())
    return {"registered": names, "n_points": int(reconstruction.num_points3D()),
            "n_cameras": int(reconstruction.num_cameras()),
            "mean_reprojection_error_px": float(reconstruction.compute_mean_reprojection_error())}


def version() -> Optional[str]:
    """pycolmap's version, or None when it is not installed."""
    try:
        return import_pycolmap().__version__
    except VoxsplatError:
        return None
