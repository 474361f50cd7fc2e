"""The SfM tests' scene: the inside corner of a box whose three walls carry multi-scale noise
textures (SIFT needs texture), rendered by exact ray casting from cameras on an arc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from voxsplat.recon.sfm import SfmConfig

FAST = SfmConfig(max_num_features=1024)
W, H = 256, 192


def _texture(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """[size,size,3] float texture: random colours at three scales, bicubically smoothed."""
    out = np.zeros((size, size, 3))
    for cells, weight in ((16, 0.5), (48, 0.35), (128, 0.15)):
        small = (rng.random((cells, cells, 3)) * 255).astype(np.uint8)
        out += weight * np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), float)
    return out


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[4,4] OpenCV cam_from_world looking from `eye` at `target`, z up."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, np.cross(forward, right), forward])
    pose[:3, 3] = -pose[:3, :3] @ eye
    return pose


def _render(cam_from_world: np.ndarray, K: np.ndarray, textures: list,
            size: tuple[int, int] = (W, H)) -> np.ndarray:
    """uint8 [H,W,3] view of the walls x=-2, y=-2 and floor z=0 (each 4x4, centred)."""
    v, u = np.mgrid[0:size[1], 0:size[0]] + 0.5
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    return _cast(cam_from_world, rays.reshape(-1, 3), textures).reshape(size[1], size[0], 3)


def _cast(cam_from_world: np.ndarray, rays: np.ndarray, textures: list) -> np.ndarray:
    """uint8 [R,3] colours of camera rays [R,3] (camera frame) on the corner's walls."""
    dirs = rays @ cam_from_world[:3, :3]  # world directions [R,3]
    center = -cam_from_world[:3, :3].T @ cam_from_world[:3, 3]
    depth, color = np.full(len(dirs), np.inf), np.full((len(dirs), 3), 255.0)
    for axis, offset, tex in ((2, 0.0, textures[0]), (0, -2.0, textures[1]), (1, -2.0, textures[2])):
        safe = np.where(np.abs(dirs[:, axis]) < 1e-9, 1e-9, dirs[:, axis])
        t = (offset - center[axis]) / safe
        uv = np.delete(center + t[:, None] * dirs, axis, 1)
        hit = (t > 0) & (t < depth) & np.all(np.abs(uv) <= 2.0, 1)
        ij = np.clip(np.round((uv[hit] + 2.0) / 4.0 * 511).astype(int), 0, 511)
        color[hit], depth[hit] = tex[ij[:, 1], ij[:, 0]], t[hit]
    return color.astype(np.uint8)


def render_corner(folder: Path, n_views: int, seed: int = 0, prefix: str = "") -> np.ndarray:
    """Write n views as PNGs into `folder`; returns their cam_from_world [n,4,4]."""
    rng = np.random.default_rng(seed)
    textures = [_texture(rng) for _ in range(3)]
    K = np.array([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1]])
    folder.mkdir(parents=True, exist_ok=True)
    poses = []
    for k, azimuth in enumerate(np.radians(np.linspace(15, 75, n_views))):
        elevation = 0.5 + 0.25 * np.sin(2.3 * k)
        eye = 5.0 * np.array([np.cos(azimuth) * np.cos(elevation),
                              np.sin(azimuth) * np.cos(elevation), np.sin(elevation)])
        poses.append(_look_at(eye, np.array([-0.5, -0.5, 0.5])))
        Image.fromarray(_render(poses[-1], K, textures)).save(folder / f"{prefix}{k:02d}.png")
    return np.stack(poses)


def _save_unrelated(path: Path, seed: int) -> None:
    """A textured image that overlaps nothing else."""
    tex = _texture(np.random.default_rng(1000 + seed))[:H, :W]
    Image.fromarray(tex.astype(np.uint8)).save(path)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _rectangle_mask(k: int) -> np.ndarray:
    """[H,W] bool: a rectangle that differs a little from view `k` to view `k`+1."""
    mask = np.zeros((H, W), bool)
    mask[20 + 3 * k:150, 40:200 - 5 * k] = True
    return mask
