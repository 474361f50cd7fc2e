"""Typed configuration of the structure-from-motion stage, with named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...data.errors import VoxsplatError

MATCHERS = ("auto", "exhaustive", "sequential", "retrieval")
SINGLE_CAMERA = ("auto", "yes", "no")
GUIDED = ("auto", "yes", "no")
CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


@dataclass(frozen=True)
class SfmConfig:
    """How to pose a folder of photos or a video with COLMAP (through pycolmap)."""

    matcher: str = "auto"
    """Which image pairs to match: `exhaustive` (every pair; best for unordered photos),
    `sequential` (each image with its next `sequential_overlap` neighbours by name; for video
    frames), `retrieval` (the sequential pairs, and each image with its
    `retrieval_neighbours` most similar images by their features: for many photos in any
    order, and loops) or `auto` (sequential for video frames, retrieval for more than
    `exhaustive_max_images` photos, else exhaustive). Default auto."""
    max_image_size: int = 1600
    """Longest image side, in pixels, used for feature extraction (larger images are
    downscaled for SIFT only; keypoints are mapped back). Default 1600."""
    max_num_features: int = 8192
    """Most SIFT features kept per image (default 8192)."""
    single_camera: str = "auto"
    """Shared intrinsics: `auto` shares one camera between images with the same size and EXIF
    make/model/focal length, `yes` shares one camera for all (same size required), `no` gives
    every image its own. EXIF focal lengths are the prior when present. Default auto."""
    camera_model: str = "SIMPLE_RADIAL"
    """COLMAP camera model estimated before undistortion (default SIMPLE_RADIAL: f, cx, cy,
    one radial coefficient)."""
    min_registered_fraction: float = 0.6
    """Smallest fraction of the images the largest model must register; below it SfM fails,
    above it unregistered images are dropped with a warning. Default 0.6."""
    exhaustive_max_images: int = 150
    """With matcher `auto`, sets of photos up to this many images are matched exhaustively
    (n^2/2 pairs) and larger ones by retrieval. Default 150."""
    sequential_overlap: int = 10
    """Neighbours each image is matched with by the sequential matcher (default 10)."""
    retrieval_neighbours: int = 20
    """Most similar images each image is matched with by the retrieval matcher (default 20:
    at most 20 pairs an image beyond the sequential ones, where exhaustive matching of 300
    photos takes 150)."""
    guided_matching: str = "auto"
    """Match image pairs a second time, guided by each verified pair's two-view geometry
    (COLMAP's `guided_matching`): it finds the matches SIFT's ratio test dropped, which a
    handful of photos with wide baselines needs. `yes` (from the start), `no`, or `auto`: a
    second, guided pass when the first leaves any of at most `guided_max_images` photos
    unregistered (the pass with more registered photos is kept). DTU scan24, 6 photos at
    400x300: 2 registered -> 6 of 6 in a second more, rotations within 0.6-1.9 degrees of the
    given poses (pycolmap 4.2.1, seeds 0-2). Not from the start, as it costs: Strecha fountain
    (11 photos of 1536x1024, 8192 features each), matching 6.5 -> 163 s on a 2-core CPU, for
    0.080 -> 0.066 degrees (bench/results/sfm_fewview.json). Default auto."""
    guided_max_images: int = 12
    """With guided_matching `auto`: the largest set that gets the guided second pass
    (default 12, the `sparse` preset's few views: at most 66 pairs, a few minutes on 2 cores
    at fountain's size)."""
    refine_principal_point: bool = True
    """Finish with a bundle adjustment that also refines the principal point of cameras shared
    by at least 10 registered images, unless it moves by more than 2% of the image size
    (default on; COLMAP otherwise keeps it at the image centre)."""
    max_output_size: int = 0
    """Longest side, in pixels, of the undistorted images of the result; 0 keeps the input
    resolution (default 0)."""
    video_frames: int = 150
    """Frames sampled from a video input (default 150)."""
    video_min_sharpness_ratio: float = 0.35
    """Video frames blurrier than this fraction of the median sharpness are dropped (0.35)."""
    video_max_size: int = 1920
    """Longest side, in pixels, of frames extracted from a video (0: native; default 1920)."""
    mask_features: bool = False
    """Extract features only inside the photos' masks (COLMAP's `mask_path`; the masks from
    the photos' alpha or a `masks/` folder, white = the object). For turntable captures,
    where the object turns in front of a still background whose features would pose every
    photo alike. Off by default: a still scene's background helps SfM."""
    seed: int = 0
    """Seed of COLMAP's random sampling (RANSAC, initial pair). Runs repeat exactly only with
    `num_threads` 1: with several threads (feature extraction among them) the poses differ a
    little between runs (DTU scan24's 6 photos: three outcomes in five runs, a few tenths of
    a degree apart; six runs with one thread gave one)."""
    num_threads: int = -1
    """CPU threads for COLMAP (-1: all cores; 1 for runs that repeat exactly, see `seed`)."""

    def __post_init__(self) -> None:
        _choice("matcher", self.matcher, MATCHERS)
        _choice("single_camera", self.single_camera, SINGLE_CAMERA)
        _choice("camera_model", self.camera_model, CAMERA_MODELS)
        _choice("guided_matching", self.guided_matching, GUIDED)
        for name, low in _INT_MINIMA.items():
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise VoxsplatError(f"sfm {name}={getattr(self, name)!r}: expected an integer "
                                    f">= {low}")
        if not 0 <= self.seed < 2 ** 31:
            raise VoxsplatError(f"sfm seed={self.seed!r}: expected an integer in [0, 2^31 - 1]")
        if self.num_threads < -1:  # COLMAP's own check; 0 means all cores, as -1 does
            raise VoxsplatError(f"sfm num_threads={self.num_threads!r}: expected -1 (all cores) "
                                f"or a count >= 1")
        if not 0.0 < self.min_registered_fraction <= 1.0:
            raise VoxsplatError(f"sfm min_registered_fraction={self.min_registered_fraction}: "
                                f"expected a fraction in (0, 1], e.g. 0.6")
        if not 0.0 <= self.video_min_sharpness_ratio < 1.0:
            raise VoxsplatError(f"sfm video_min_sharpness_ratio={self.video_min_sharpness_ratio}: "
                                f"expected a value in [0, 1)")
        for name in ("max_output_size", "video_max_size"):
            value = getattr(self, name)
            if value != 0 and value < MIN_IMAGE_SIZE:
                raise VoxsplatError(f"sfm {name}={value!r}: expected 0 (keep the size) or a "
                                    f"longest side >= {MIN_IMAGE_SIZE} pixels")

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (recorded in `sfm.json`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SfmConfig":
        """The config `to_dict` recorded (fields it does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


MIN_IMAGE_SIZE = 64
"""Smallest longest side (pixels) that the SfM settings of image sizes take: below it SIFT
finds nothing to match (`max_image_size=2` failed as if the photos did not overlap) and the
undistorted images are useless (`max_output_size=1` wrote 1x1 images)."""
_INT_MINIMA = {"max_image_size": MIN_IMAGE_SIZE, "max_num_features": 64, "video_frames": 2,
               "sequential_overlap": 2, "exhaustive_max_images": 2, "retrieval_neighbours": 1,
               "guided_max_images": 2}
"""The integer settings and their smallest values."""


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise VoxsplatError(f"sfm {name}={value!r}: expected one of {', '.join(allowed)}")


SFM_PRESETS: dict[str, SfmConfig] = {
    "default": SfmConfig(),
    "fast": SfmConfig(max_image_size=1024, max_num_features=4096, refine_principal_point=False),
    "video": SfmConfig(matcher="sequential", single_camera="yes"),
}
"""Named configurations: COLMAP's quality defaults, a quicker low-resolution variant, and
one for video frames (sequential matching, one shared camera)."""


def sfm_preset(name: str) -> SfmConfig:
    """The preset `name` (see `SFM_PRESETS`)."""
    if name not in SFM_PRESETS:
        raise VoxsplatError(f"unknown sfm preset '{name}'; use one of {', '.join(SFM_PRESETS)}")
    return SFM_PRESETS[name]
