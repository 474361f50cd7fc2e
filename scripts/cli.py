"""`voxsplat` command line: one dataclass per command, each parsing into a library call.

Errors in user input surface as one line (``voxsplat: error: ...``) and exit code 2; set
``VOXSPLAT_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from voxsplat.data.atomic import output_of
from voxsplat.data.errors import VoxsplatError
from voxsplat.scripts.process import DISK_ERRORS, locked, peer_stopped, stop_on_sigterm

MATCHERS = ["auto", "exhaustive", "sequential", "retrieval"]
"""`SfmConfig.matcher`'s choices (recon.sfm.config.MATCHERS; not imported here: --help stays
quick, without torch)."""


@dataclass
class Reconstruct:
    """Optimize a scene (photos, a video, a COLMAP project, transforms.json, poses_bounds.npy,
    cameras_sphere.npz or an OpenMVS scene.mvs) into a workspace."""

    input: Path
    out: Path
    preset: str = "auto"
    device: str = "auto"
    steps: Optional[int] = None
    downscale: Optional[float] = None
    resume: bool = False
    quiet: bool = False
    matcher: str = "auto"
    mask_features: bool = False
    video_frames: int = 150
    model: Optional[str] = None
    overrides: Optional[list[str]] = None
    """`--set section.field=value` (repeatable): single config fields over the preset's."""
    holdout: Optional[int] = None
    view: bool = False
    """Serve the Gaussians to a browser while they train, and after (viser)."""
    port: int = 8080
    refine_poses: bool = False
    """Learn a correction of each training camera's pose (`optim.pose_refine`)."""

    def execute(self) -> None:
        from voxsplat.recon import distributed
        from voxsplat.recon.app import run_reconstruct
        if self.resume and self.refine_poses:
            raise VoxsplatError("--refine-poses with --resume: a resumed run keeps the settings it "
                                "started with; drop --refine-poses, or start over without --resume")
        distributed.init_from_env(self.device)  # under torchrun: one rank per GPU
        live = None
        if self.view and distributed.is_main():
            from voxsplat.recon.viewer import LiveView
            live = LiveView(self.out, port=self.port)
        finished = False
        try:
            with locked(self.out, distributed.is_main()):
                metrics = run_reconstruct(self.input, self.out, self.preset, self.device, self.steps,
                                          self.downscale, self.resume, progress=not self.quiet,
                                          sfm=_sfm_config(self.matcher, self.mask_features,
                                                          self.video_frames, self.overrides),
                                          model=self.model,
                                          overrides=[*_train_overrides(self.overrides),
                                                     *(["optim.pose_refine=true"]
                                                       if self.refine_poses else [])],
                                          holdout=self.holdout, on_step=live)
            if distributed.is_main():
                _report(metrics, self.out)
                _next_steps(self.out)
            finished = True
        finally:
            distributed.shutdown(finished)
            if live is not None and not finished:
                live.stop()
        if live is not None:
            live.finish()


@dataclass
class Poses:
    """Structure-from-motion alone: a folder of photos or a video -> OUT/sfm/sparse/0 (COLMAP)."""

    input: Path
    out: Path
    matcher: str = "auto"
    mask_features: bool = False
    video_frames: int = 150
    quiet: bool = False
    overrides: Optional[list[str]] = None
    """`--set sfm.field=value` (repeatable): single `SfmConfig` fields."""

    def execute(self) -> None:
        from voxsplat.recon.app import run_poses
        others = _train_overrides(self.overrides)
        if others:
            raise VoxsplatError(f"--set {others[0]}: `poses` takes only "
                                f"sfm.* fields, e.g. --set sfm.min_registered_fraction=0.4")
        with locked(self.out):
            scene = run_poses(self.input, self.out,
                              _sfm_config(self.matcher, self.mask_features, self.video_frames,
                                          self.overrides),
                              progress=not self.quiet)
        print(f"registered {len(scene)} images; {0 if scene.points is None else len(scene.points)} "
              f"points; model in {self.out / 'sfm' / 'sparse' / '0'}")


_INPUT_HELP = ("a folder of photos or a video (poses by structure-from-motion), a COLMAP project "
               "(sparse/0 + images/), a transforms.json or its folder, an LLFF folder "
               "(poses_bounds.npy), a DTU/NeuS folder (cameras_sphere.npz) or an OpenMVS scene.mvs "
               "or its folder")
_MASK_FEATURES_HELP = ("SfM matches only inside the photos' masks (alpha or masks/): for an object "
                       "turning in front of a still background (turntable)")


_VIDEO_FRAMES_HELP = ("frames sampled from a video input, the sharpest of each stretch "
                      "(default 150; more for long walks, fewer for short clips)")


SFM_PREFIX = "sfm."
"""`--set` assignments under this prefix set `SfmConfig` fields, the rest `TrainConfig`'s."""


def _train_overrides(overrides: Optional[list[str]]) -> list[str]:
    return [a for a in overrides or () if not a.strip().startswith(SFM_PREFIX)]


def _sfm_config(matcher: str, mask_features: bool, video_frames: int = 150,
                overrides: Optional[list[str]] = None):
    from voxsplat.recon.overrides import set_field
    from voxsplat.recon.sfm import SfmConfig
    if video_frames < 2:
        raise VoxsplatError(f"--video-frames {video_frames}: give at least 2 (structure-from-"
                            f"motion needs 2 or more frames; default 150)")
    config = SfmConfig(matcher=matcher, mask_features=mask_features, video_frames=video_frames)
    for assignment in overrides or ():
        if assignment.strip().startswith(SFM_PREFIX):
            config = set_field(config, assignment.strip(), SFM_PREFIX)
    return config


@dataclass
class Render:
    """Render a camera path through a workspace's Gaussians to an mp4."""

    workspace: Path
    out: Path
    path: str = "auto"
    frames: Optional[int] = None
    depth: bool = False
    device: str = "auto"
    fps: Optional[float] = None
    scale: float = 1.0
    dataparser_transforms: Optional[Path] = None
    save_path: Optional[Path] = None
    quiet: bool = False

    def execute(self) -> None:
        from voxsplat.recon.render_video import run_render
        written = run_render(self.workspace, self.path, self.frames, self.out, self.depth,
                             self.device, self.fps, self.scale, progress=not self.quiet,
                             dataparser_transforms=self.dataparser_transforms,
                             save_path=self.save_path)
        for p in written:
            print(f"wrote {p}")


@dataclass
class Export:
    """Export a workspace's Gaussians as a 3DGS .ply, a SuperSplat compressed .ply, an
    antimatter15 .splat, a Niantic .spz, a coloured mesh, a dense point cloud, or per-view
    depth maps."""

    workspace: Path
    format: str
    out: Path
    voxel_size: Optional[float] = None
    faces: Optional[int] = None
    mesher: str = "tsdf"
    device: str = "auto"
    closed: bool = False
    sky: bool = False
    frame: str = "input"
    sh_degree: Optional[int] = None
    spz_version: Optional[int] = None
    keep_blended: bool = False
    quiet: bool = False

    def execute(self) -> None:
        given = {"--voxel-size": self.voxel_size is not None, "--faces": self.faces is not None,
                 "--mesher": self.mesher != "tsdf", "--closed": self.closed,
                 "--keep-blended": self.keep_blended}
        for flag, formats in _GEOMETRY_OPTIONS.items():
            if given[flag] and self.format not in formats:  # not taken silently
                raise VoxsplatError(f"{flag} is for --format {' or '.join(formats)}, not "
                                    f"{self.format}")
        if self.device != "auto":  # (splat files need none, but a typo is named all the same)
            from voxsplat.recon.engine import parse_device
            parse_device(self.device)
        if self.format == "depth":
            if self.sh_degree is not None:
                raise VoxsplatError("--sh-degree is for splat files (ply, compressed-ply, spz), "
                                    "not depth maps")
            if self.sky:
                raise VoxsplatError("--sky adds the sky to splat files (.ply, .splat, .spz), not to "
                                    "depth maps")
            from voxsplat.recon.app import run_export_depth
            out = run_export_depth(self.workspace, self.out, self.device, self.frame,
                                   progress=not self.quiet, keep_blended=self.keep_blended)
            print(f"wrote {out}")
            return
        from voxsplat.recon.app import run_export
        out = run_export(self.workspace, self.format, self.out, voxel_size=self.voxel_size,
                         faces=self.faces, mesher=self.mesher, device=self.device,
                         closed=self.closed, sky=self.sky, progress=not self.quiet,
                         frame=self.frame, sh_degree=self.sh_degree,
                         spz_version=self.spz_version, keep_blended=self.keep_blended)
        print(f"wrote {out}")


_GEOMETRY_OPTIONS = {"--voxel-size": ("mesh", "points"), "--faces": ("mesh",),
                     "--mesher": ("mesh",), "--closed": ("mesh",),
                     "--keep-blended": ("mesh", "points", "depth")}
"""The export options of the geometry formats, and the formats that take each."""


@dataclass
class View:
    """Show a workspace's Gaussians and cameras, or a splat file, in the browser (viser), until
    Ctrl-C."""

    workspace: Path
    host: str = "127.0.0.1"
    port: int = 8080
    max_gaussians: Optional[int] = None
    no_photos: bool = False
    flat_colors: bool = False
    up: Optional[str] = None
    no_sky: bool = False

    def execute(self) -> None:
        from voxsplat.recon.viewer import run_view
        run_view(self.workspace, self.host, self.port, self.max_gaussians, not self.no_photos,
                 self.flat_colors, self.up, not self.no_sky)


@dataclass
class Eval:
    """Held-out metrics of a workspace, written to DIR/metrics.json."""

    workspace: Path
    split: str = "test"
    device: str = "auto"
    renders: Optional[Path] = None
    masked: bool = False

    def execute(self) -> None:
        from voxsplat.recon.app import run_eval
        _report(run_eval(self.workspace, self.split, self.device, self.renders, self.masked),
                self.workspace)


@dataclass
class Demo:
    """Generate the synthetic sample scene and run reconstruct, eval, export and render on it."""

    out: Path
    device: str = "auto"
    steps: Optional[int] = None
    quiet: bool = False

    def execute(self) -> None:
        from voxsplat.recon.app import run_demo
        with locked(self.out):
            run_demo(self.out, self.device, self.steps, progress=not self.quiet)


def _report(metrics: dict, ws: Path) -> None:
    keys = ("psnr", "ssim", "n_views", "model", "n_voxels", "n_gaussians", "train_seconds")
    shown = {k: metrics.get(k) for k in keys if metrics.get(k) is not None}
    if metrics.get("masked"):  # (inside the views' masks)
        shown = {"masked": True, **shown}
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    from voxsplat.recon.pipeline import empty_mask_views, far_views, open_views
    for line in far_views(metrics) + empty_mask_views(metrics) + open_views(metrics):
        print(f"note: {line}")
    print(f"workspace: {ws}")


def _next_steps(ws: Path) -> None:
    """What a finished reconstruction is for, as commands to paste (the path shell-quoted)."""
    from voxsplat.recon.workspace import SPLATS_PLY, SPLATS_SPLAT
    ws, q = Path(ws), shlex.quote(str(ws))
    print(f"splats: {ws / SPLATS_PLY} (3DGS viewers, e.g. SuperSplat), {ws / SPLATS_SPLAT}")
    print(f"next: voxsplat render {q} --out {shlex.quote(str(ws / 'video.mp4'))}")
    print(f"      voxsplat view {q}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voxsplat", description="Sparse-voxel Gaussian-splat reconstruction")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reconstruct", help=Reconstruct.__doc__,
                       epilog="Several GPUs: torchrun --standalone --nproc_per_node N -m "
                              "voxsplat.scripts.cli reconstruct ... (one process per GPU; each "
                              "step sees N x the batch, so --steps divided by N finishes N times "
                              "sooner).")
    r.add_argument("input", type=Path, help=_INPUT_HELP)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--preset", default="auto",
                   help="sparse (3-12 views, voxel model), dense (GPU), fast (CPU-friendly), or "
                        "auto: sparse settings for <= 12 training views (the voxel model on a GPU, "
                        "explicit Gaussians on a CPU), else dense on a GPU, fast on a CPU")
    r.add_argument("--model", choices=["voxel", "gaussians"],
                   help="scene model (default: the preset's; voxel for sparse)")
    r.add_argument("--device", default="auto", help="cpu, cuda or auto")
    r.add_argument("--steps", type=int, help="override the preset's step count")
    r.add_argument("--downscale", type=float,
                   help="resize input images by this factor (e.g. 0.5; 1 keeps full size); default: "
                        "images longer than 1600 px (GPU) or 1000 px (CPU) are resized to that")
    r.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    r.add_argument("--set", dest="overrides", action="append", metavar="SECTION.FIELD=VALUE",
                   help="change one config field of the preset (repeatable), e.g. "
                        "--set optim.pseudo_weight=0 --set voxel.n_voxels=8000; sfm.* fields set "
                        "structure-from-motion's, e.g. --set sfm.min_registered_fraction=0.4")
    r.add_argument("--holdout", type=int, metavar="N",
                   help="hold out every N-th view (by name) to measure the result; 0 trains on "
                        "every view (metrics then on the training views); default: the input's "
                        "split (every 8th for photos, videos, COLMAP and LLFF scenes)")
    r.add_argument("--refine-poses", action="store_true",
                   help="correct the training cameras' poses while training (poses from a phone, "
                        "or SfM that left blur); the corrected poses go to scene.json")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--view", action="store_true",
                   help="watch the Gaussians train in the browser (viser, as `voxsplat view`), "
                        "refreshed every 2 s; after training it serves them until Ctrl-C")
    r.add_argument("--port", type=int, default=8080, help="--view: default 8080 (the next "
                   "free one if taken)")
    r.add_argument("--matcher", default="auto", choices=MATCHERS,
                   help="feature matching for photos/videos (auto: sequential for videos, "
                        "retrieval for more than 150 photos, else exhaustive)")
    r.add_argument("--mask-features", action="store_true", help=_MASK_FEATURES_HELP)
    r.add_argument("--video-frames", type=int, default=150, metavar="N", help=_VIDEO_FRAMES_HELP)
    r.set_defaults(cls=Reconstruct)
    po = sub.add_parser("poses", help=Poses.__doc__)
    po.add_argument("input", type=Path, help="a folder of photos, a video, or a COLMAP project "
                    "with lens distortion (undistorted)")
    po.add_argument("--out", type=Path, required=True)
    po.add_argument("--matcher", default="auto", choices=MATCHERS)
    po.add_argument("--mask-features", action="store_true", help=_MASK_FEATURES_HELP)
    po.add_argument("--video-frames", type=int, default=150, metavar="N", help=_VIDEO_FRAMES_HELP)
    po.add_argument("--set", dest="overrides", action="append", metavar="sfm.FIELD=VALUE",
                    help="change one structure-from-motion setting (repeatable), e.g. "
                         "--set sfm.min_registered_fraction=0.4 --set sfm.num_threads=1")
    po.add_argument("--quiet", action="store_true")
    po.set_defaults(cls=Poses)
    v = sub.add_parser("render", help=Render.__doc__)
    v.add_argument("workspace", type=Path)
    v.add_argument("--path", default="auto", metavar="auto|orbit|arc|spiral|interp|FILE.json",
                   help="auto (the default: spiral where the training cameras face one way, "
                        "orbit where they surround the scene, else arc), orbit (around the "
                        "scene), arc (there and back over the part of the orbit the training "
                        "cameras cover), spiral (forward-facing captures), interp "
                        "(through the training cameras), or a camera path file in the input's "
                        "frame: transforms.json layout (frames[].transform_matrix) or "
                        "nerfstudio's camera_path.json")
    v.add_argument("--frames", type=int, help="number of frames (default 120; for a file: its "
                   "cameras, or N frames of a smooth path through them)")
    v.add_argument("--out", type=Path, required=True,
                   help="an .mp4 (.mov, .mkv, .m4v) file, or a folder (no suffix) for PNG frames")
    v.add_argument("--depth", action="store_true",
                   help="also write OUT_depth.mp4 (with OUT's suffix; OUT_depth/ for frames)")
    v.add_argument("--device", default="auto")
    v.add_argument("--fps", type=float, help="default: the path file's, else 30")
    v.add_argument("--scale", type=float, default=1.0,
                   help="frame size relative to the training views (2: twice the width and height)")
    v.add_argument("--dataparser-transforms", type=Path, metavar="FILE",
                   help="nerfstudio's dataparser_transforms.json (in its run's output folder): "
                        "maps a nerfstudio camera path from its normalized frame to the data's")
    v.add_argument("--save-path", type=Path, metavar="FILE.json",
                   help="also write the frames' cameras, in the input's frame, as a camera path "
                        "file that --path takes back (edit it, e.g. in Blender, and render again); "
                        "written once the video is, over no .json that it did not write")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(cls=Render)
    e = sub.add_parser("export", help=Export.__doc__)
    e.add_argument("workspace", type=Path)
    e.add_argument("--format", required=True,
                   choices=["ply", "compressed-ply", "splat", "spz", "mesh", "points", "depth"],
                   help="ply/splat: the Gaussians (compressed-ply: SuperSplat's compressed "
                        "PLY, about 4-14x smaller; spz: Niantic's, about 10x smaller); mesh: "
                        "a coloured triangle mesh; points: a dense point cloud of the surfaces "
                        "(normals, colours); depth: every view's depth map (.npy) with its "
                        "camera and photo (transforms.json)")
    e.add_argument("--out", type=Path, required=True,
                   help="for meshes: a .ply, .obj or .glb path; for points: a .ply path; for "
                        "depth: a folder")
    e.add_argument("--voxel-size", type=float, help="mesh: TSDF voxel edge, points: one point "
                   "per voxel of this edge, in the output frame's units (default: one rendered "
                   "pixel at the scene's distance)")
    e.add_argument("--faces", type=int, help="mesh: decimate to about N faces (needs fast-simplification)")
    e.add_argument("--mesher", default="tsdf", choices=["tsdf", "poisson"],
                   help="mesh: sparse TSDF fusion (default) or open3d Poisson")
    e.add_argument("--device", default="auto", help="mesh, points, depth: cpu, cuda or auto")
    e.add_argument("--closed", action="store_true", help="mesh (tsdf): close every surface, "
                   "unseen space counting as inside (objects captured from around)")
    e.add_argument("--keep-blended", action="store_true", help="mesh, points, depth: keep the "
                   "rendered pixels that blend a nearer and a farther surface (at edges, or "
                   "seen through leaves), whose depth lies between the two, in mid-air; left "
                   "out by default")
    e.add_argument("--sky", action="store_true", help="ply/splat/spz: add the learned sky (sky.pt) "
                   "as Gaussians on a far sphere, which viewers show behind the scene")
    e.add_argument("--sh-degree", type=int, metavar="D", help="ply, compressed-ply, spz: write "
                   "SH degree D: higher bands dropped (0: no view-dependent colour; a degree-3 "
                   ".ply shrinks from 248 to 68 bytes a Gaussian), or zero bands added for "
                   "readers that expect degree D")
    e.add_argument("--spz-version", type=int, choices=[3, 2], help="spz: 3 (default, as Niantic's "
                   "library writes: finer rotations) or 2, for readers older than version 3")
    e.add_argument("--frame", default="input", choices=["input", "scene"],
                   help="input (default): the coordinates of the input (its COLMAP model, "
                        "poses or transforms.json); scene: the workspace's normalized frame, "
                        "as its splats.ply")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(cls=Export)
    w = sub.add_parser("view", help=View.__doc__)
    w.add_argument("workspace", type=Path, help="a workspace folder, or a splat file (.ply, "
                   "compressed .ply, .splat, .spz) to look at alone")
    w.add_argument("--port", type=int, default=8080, help="default 8080 (the next free one "
                   "if taken); on a remote machine: ssh -L 8080:localhost:8080 HOST")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this "
                   "machine only; 0.0.0.0 shows the scene to the whole network)")
    w.add_argument("--max-gaussians", type=int, metavar="N",
                   help="show only the N most opaque Gaussians (for slow browsers)")
    w.add_argument("--no-photos", action="store_true",
                   help="cameras without their photos (the input is not loaded)")
    w.add_argument("--no-sky", action="store_true",
                   help="without the run's learned sky (shown by default, as Gaussians on a "
                        "far sphere, as `export --sky` writes it)")
    w.add_argument("--up", choices=["+x", "-x", "+y", "-y", "+z", "-z"],
                   help="a splat file's up axis (default -y, COLMAP's and 3DGS's; +z for "
                        "Blender and nerfstudio frames)")
    w.add_argument("--flat-colors", action="store_true",
                   help="view-independent colours, sent once (by default the splats are "
                        "recoloured for the camera whenever it rests: the whole splat buffer "
                        "again, 32 bytes a Gaussian, heavy over a slow tunnel)")
    w.set_defaults(cls=View)
    ev = sub.add_parser("eval", help=Eval.__doc__)
    ev.add_argument("workspace", type=Path)
    ev.add_argument("--split", default="test", help="test (default: the held-out views, into "
                    "metrics.json) or train (into metrics_train.json)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--renders", type=Path, metavar="DIR",
                    help="also write each evaluated view's render (NAME.png) and photo "
                         "(NAME_gt.png) to DIR")
    ev.add_argument("--masked", action="store_true",
                    help="PSNR and SSIM inside the views' masks only (the object; views whose "
                         "mask is empty are left out), into metrics_masked.json; the input "
                         "must have masks")
    ev.set_defaults(cls=Eval)
    d = sub.add_parser("demo", help=Demo.__doc__)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--device", default="auto")
    d.add_argument("--steps", type=int, help="training steps (default 1200)")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(cls=Demo)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    parsed, extra = parser.parse_known_args(argv)
    args = vars(parsed)
    if extra and isinstance(args.get("input"), Path) and all(Path(e).is_file() for e in extra):
        shown = ", ".join(str(p) for p in [args["input"], *extra][:2])  # a shell's photos/*.jpg
        print(f"voxsplat: error: {len(extra) + 1} inputs ({shown}, ...); give one: the folder "
              f"that holds the photos (a pattern such as photos/*.jpg gives each file; give "
              f"{args['input'].parent}/)", file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    cls = args.pop("cls")
    args.pop("command")
    debug = os.environ.get("VOXSPLAT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    tag = f" (process {rank} of {world})" if rank else ""  # torchrun's other ranks

    def say(line: str, every_rank: bool = False) -> None:
        """One line on stderr: from the first process only where every rank has the same to
        say (a bad option, Ctrl-C), else from each, tagged with its rank."""
        if rank == 0 or every_rank:
            print(line, file=sys.stderr)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, UserWarning):
            return shown(message, category, filename, lineno, file, line)
        say(f"voxsplat: warning: {message}")  # ours and the libraries': no file:line noise

    shown, warnings.showwarning = warnings.showwarning, show_warning
    started = time.time()
    terminate = stop_on_sigterm() if world == 1 else None
    try:
        if cls is not Reconstruct and world > 1:
            raise VoxsplatError(f"torchrun runs `voxsplat reconstruct` on several GPUs; run "
                                f"`voxsplat {cls.__name__.lower()}` as one plain process")
        cls(**args).execute()
    except VoxsplatError as e:
        if debug:
            traceback.print_exc()
        if type(e).__name__ != "PeerFailed":  # (the failed process said why)
            say(f"voxsplat: error: {e}")
        return 2
    except KeyboardInterrupt:
        hint = ""
        if cls in (Reconstruct, Poses):
            from voxsplat.recon.app import interrupted_hint
            hint = "; " + interrupted_hint(args["out"], cls is Reconstruct,
                                           since=None if args.get("resume") else started)
        say(f"voxsplat: interrupted{hint}")
        return 130
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        if debug:
            traceback.print_exc()
        target = os.fsdecode(e.filename) if e.filename else args.get("out")  # (writes name none)
        where = f"{output_of(target)}: " if target else ""
        say(f"voxsplat: error{tag}: {where}{DISK_ERRORS[e.errno]}", every_rank=True)
        return 2
    except MemoryError:
        say(f"voxsplat: error{tag}: out of memory; {_memory_advice(cls, args, gpu=False)}",
            every_rank=True)
        return 3
    except RuntimeError as e:
        if world > 1 and peer_stopped(e):
            if debug:
                traceback.print_exc()
            say(f"voxsplat: error{tag}: another process of the run stopped (its message, or "
                f"torchrun's, says why)", every_rank=True)
            return 2
        gpu = "out of memory" in str(e)
        if not gpu and "can't allocate memory" not in str(e):  # (torch's CPU allocator's words)
            raise
        if debug:
            traceback.print_exc()
        say(f"voxsplat: error{tag}: out of {'GPU ' if gpu else ''}memory; "
            f"{_memory_advice(cls, args, gpu)}", every_rank=True)
        return 3
    finally:
        if cls in (Reconstruct, Demo) and rank == 0:  # a fresh run stopped over a finished one
            from voxsplat.recon.out_folder import kept_previous
            kept = kept_previous(args["out"])
            if kept is not None:
                say(f"voxsplat: the earlier reconstruction stays in {kept} (its splats.ply "
                    f"and metrics.json); this run's replace it when it finishes")
        warnings.showwarning = shown
        if terminate is not None:
            signal.signal(signal.SIGTERM, terminate)
    return 0


def _memory_advice(cls, args: dict, gpu: bool) -> str:
    """What the command that ran out of memory can change (its own options only)."""
    cpu = ", or --device cpu for small scenes" if gpu else ""
    if cls is Reconstruct and args.get("resume"):
        return ("a resumed run keeps its image size: close what else uses the "
                f"{'GPU' if gpu else 'memory'}, or start again with --downscale 0.5")
    if cls in (Reconstruct, Demo):
        return (f"use --downscale 0.5 (a quarter of the pixels){cpu}" if cls is Reconstruct
                else f"close what else uses the {'GPU' if gpu else 'memory'}{cpu}")
    if cls is Render:
        return f"use --scale 0.5 (a quarter of the pixels){cpu}"
    if cls is Poses:
        return "use --set sfm.max_image_size=1000 (smaller images for SfM)"
    return ("use --device cpu" if gpu and "device" in args else
            f"close what else uses the {'GPU' if gpu else 'memory'}")


if __name__ == "__main__":
    sys.exit(main())
