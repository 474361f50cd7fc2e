"""The workspace folder: scene.json, checkpoints/, splats.ply, splats.splat, metrics.json.

``scene.json`` records the cameras (per image, with split), the normalization and how to reload
the input, so ``render``/``eval``/``export`` work on a workspace alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor

from ..data.atomic import atomic_open
from ..data.cameras import Cameras
from ..data.errors import VoxsplatError

SCENE_JSON = "scene.json"
SPLATS_PLY = "splats.ply"
SPLATS_SPLAT = "splats.splat"
METRICS_JSON = "metrics.json"
PREVIOUS = "previous"
"""Where a fresh run over a finished one keeps that one's products until it finishes itself."""


@contextlib.contextmanager
def workspace_lock(out: Path) -> Iterator[None]:
    """Hold OUT for one run (reconstruct, poses, demo) until the block ends: a second run into
    the same folder on this machine is refused in one line. Two at once mixed their files (the
    config of one, the splats of the other) or crashed in SfM. The lock file lives in the
    temp folder, keyed by OUT's path, so that OUT gets nothing it did not ask for; the system
    releases it when the process ends however it ends. No lock where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # (Windows)
        yield
        return
    key = hashlib.sha1(str(Path(out).resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    with open(Path(tempfile.gettempdir()) / f"voxsplat-{key[:16]}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise VoxsplatError(f"{out}: in use by another voxsplat run (process {pid}); wait "
                                f"for it to end, or give another --out") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise VoxsplatError(f"{path}: not found; is this a workspace made by `voxsplat reconstruct`?") from None
    except json.JSONDecodeError as e:
        raise VoxsplatError(f"{path}: invalid JSON ({e.msg} at line {e.lineno}); re-run reconstruct") from None
    except UnicodeDecodeError:
        raise VoxsplatError(f"{path}: not a text file (damaged?); re-run reconstruct") from None


def scene_record(scene, input_spec: dict, config: dict) -> dict:
    """The scene.json content for `scene` (cameras in the normalized scene frame)."""
    cams = scene.cameras
    split_of = {}
    for name, ids in scene.splits.items():
        for i in ids:
            split_of.setdefault(i, name)
    return {
        "version": 1,
        "input": input_spec,
        "source": scene.source,
        "background": list(scene.background),
        "world_from_input": scene.world_from_input.tolist(),
        "splits": {k: list(v) for k, v in scene.splits.items()},
        "config": config,
        "images": [
            {"name": scene.names[i], "split": split_of.get(i, "none"), "width": int(cams.widths[i]),
             "height": int(cams.heights[i]), "K": cams.Ks[i].tolist(),
             "cam_from_world": cams.cam_from_world[i].tolist()}
            for i in range(len(scene))
        ],
    }


def cameras_from_record(rec: dict) -> Cameras:
    imgs = rec["images"]
    return Cameras(torch.tensor([im["cam_from_world"] for im in imgs], dtype=torch.float32),
                   torch.tensor([im["K"] for im in imgs], dtype=torch.float32),
                   torch.tensor([im["width"] for im in imgs]), torch.tensor([im["height"] for im in imgs]))


def with_refined_poses(rec: dict, names: list[str], cam_from_world: Tensor) -> dict:
    """scene.json's record with the poses of the images `names` set to `cam_from_world
    [n,4,4]` (learned corrections, `OptimConfig.pose_refine`); each image's pose from the
    input stays as `cam_from_world_input`."""
    rec = dict(rec, images=[dict(im) for im in rec["images"]])
    index = {im["name"]: im for im in rec["images"]}
    for name, pose in zip(names, cam_from_world):
        im = index[name]
        im.setdefault("cam_from_world_input", im["cam_from_world"])
        im["cam_from_world"] = pose.tolist()
    return rec


def scene_with_record_poses(scene, rec: dict):
    """`scene` (reloaded from the input) with the poses that training refined, as scene.json
    records them; the scene itself when none was refined."""
    refined = {im["name"]: im["cam_from_world"] for im in rec["images"] if "cam_from_world_input" in im}
    if not refined:
        return scene
    poses = scene.cameras.cam_from_world.clone()
    for i, name in enumerate(scene.names):
        if name in refined:
            poses[i] = torch.tensor(refined[name], dtype=poses.dtype)
    cams = scene.cameras
    return replace(scene, cameras=Cameras(poses, cams.Ks, cams.widths, cams.heights))


def open_workspace(ws: Path) -> dict:
    """Check `ws` is a workspace and return its scene.json record."""
    ws = Path(ws)
    if not ws.is_dir():
        raise VoxsplatError(f"{ws}: no such workspace folder; run `voxsplat reconstruct INPUT --out {ws}` first")
    rec = read_json(ws / SCENE_JSON)
    if not isinstance(rec, dict) or not _RECORD_KEYS <= rec.keys() or not isinstance(
            rec["images"], list) or not all(isinstance(im, dict) and _IMAGE_KEYS <= im.keys()
                                            for im in rec["images"]):
        missing = sorted(_RECORD_KEYS - rec.keys()) if isinstance(rec, dict) else ["everything"]
        raise VoxsplatError(f"{ws / SCENE_JSON}: not a workspace record (no "
                            f"{', '.join(missing) or 'complete images'}); re-run reconstruct")
    return rec


_RECORD_KEYS = frozenset({"input", "config", "images"})
_IMAGE_KEYS = frozenset({"name", "split", "width", "height", "K", "cam_from_world"})


def splats_path(ws: Path) -> Path:
    p = Path(ws) / SPLATS_PLY
    if not p.is_file():
        from .checkpoint import latest_checkpoint
        again = ("--resume" if latest_checkpoint(Path(ws) / "checkpoints") is not None else
                 "(it saved no checkpoint to resume from)")
        kept = Path(ws) / PREVIOUS / SPLATS_PLY
        earlier = (f" (the earlier reconstruction's splats are in {kept})" if kept.is_file()
                   else "")
        raise VoxsplatError(f"{p}: missing; the reconstruction did not finish — run "
                            f"`voxsplat reconstruct ... --out {ws}` {again}{earlier}")
    return p
