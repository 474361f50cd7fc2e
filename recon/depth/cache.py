"""The depth stage's result kept in the workspace, so that a resumed run, or a new run on the
same views with other training settings, does not sweep again.

`ws/cache/depth.pt` holds the DepthResult and a key: a digest of everything `compute_depths`
reads (the MVS settings, the training views' pixels, masks, cameras and names, the scene's
points). A result whose key differs is never used. The device is deliberately not part of
the key: a sweep made on the CPU serves a run on a GPU and the other way round (their maps
differ by float rounding in the cost volume, not in what they measure).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional

import torch

from ...data.atomic import atomic_path
from ...data.cameras import Cameras
from ...data.scene import Scene
from .config import MvsConfig
from .mvs import DepthResult

CACHE_FILE = Path("cache") / "depth.pt"
_FORMAT = 1


def depth_key(scene: Scene, view_ids: tuple[int, ...], mvs: MvsConfig) -> str:
    """A digest of the depth stage's inputs: `mvs`, the views' images, masks, cameras and
    names, and the scene's points."""
    h = hashlib.blake2b(digest_size=20)
    h.update(json.dumps([_FORMAT, dataclasses.asdict(mvs), list(view_ids)], sort_keys=True,
                        default=str).encode())

    def add(t: Optional[torch.Tensor]) -> None:
        if t is None:
            h.update(b"-")
        else:
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())

    cams = scene.cameras
    for i in view_ids:
        h.update(scene.names[i].encode())
        add(scene.images[i])
        add(None if scene.masks is None else scene.masks[i])
        add(cams.cam_from_world[i])
        add(cams.Ks[i])
        h.update(str(cams.size(i)).encode())
    add(scene.points)
    return h.hexdigest()


def save_depth(out: Path, key: str, result: DepthResult) -> None:
    """Keep `result` under `out/cache/depth.pt` (atomically) with its key."""
    cams = result.cameras
    payload = {"key": key, **{f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                              if f.name != "cameras"},
               "cameras": (cams.cam_from_world, cams.Ks, cams.widths, cams.heights)}
    from ..checkpoint import torch_save
    with atomic_path(Path(out) / CACHE_FILE) as tmp:
        torch_save(payload, tmp, Path(out) / CACHE_FILE)


def load_depth(out: Path, key: str) -> Optional[DepthResult]:
    """The kept result for `key`, or None (no cache, another key, or an unreadable file)."""
    path = Path(out) / CACHE_FILE
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a cache is never worth a failure: compute again
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:
        return None
    fields = {f.name for f in dataclasses.fields(DepthResult)}
    values = {k: v for k, v in payload.items() if k in fields}
    try:
        values["cameras"] = Cameras(*payload["cameras"])
        values["names"], values["view_ids"] = tuple(values["names"]), tuple(values["view_ids"])
        result = DepthResult(**values)
        C, H, W = result.depths.shape  # one canvas for the views, each at its size top-left
        if C != len(result.cameras) or result.confidence.shape != result.depths.shape or (
                H < int(result.cameras.heights.max()) or W < int(result.cameras.widths.max())):
            return None  # maps that are not the views' (a damaged or foreign file)
        return result
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError):
        return None
