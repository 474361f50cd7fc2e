"""Synthetic cameras and scene files for the data tests (no downloads)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

# OpenGL/Blender camera axes (x right, y up, z back) <-> OpenCV (x right, y down, z forward).
FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at(eye, target, world_up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """[4,4] OpenCV world_from_cam for a camera at `eye` looking at `target`."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, world_up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, z], axis=1)
    pose[:3, 3] = eye
    return pose


def ring_poses(n: int, radius: float = 4.0, height: float = 1.0, target=(0.0, 0.0, 0.0)):
    """n OpenCV world_from_cam [4,4] on a ring around `target`, all looking at it."""
    target = np.asarray(target, float)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.3
    return [look_at(target + [radius * np.cos(a), radius * np.sin(a), height], target)
            for a in angles]


def project_opencv(world_from_cam: np.ndarray, K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of world point X [3] with the OpenCV convention."""
    x_cam = np.linalg.inv(world_from_cam) @ np.append(X, 1.0)
    uvw = K @ x_cam[:3]
    return uvw[:2] / uvw[2]


def project_opengl(c2w_gl: np.ndarray, fx, fy, cx, cy, X: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of X for an OpenGL camera-to-world (camera looks down -z, y up)."""
    x, y, z = (np.linalg.inv(c2w_gl) @ np.append(X, 1.0))[:3]
    return np.array([cx + fx * x / -z, cy - fy * y / -z])


def project_scene(scene, i: int, X) -> np.ndarray:
    """Pixel (u, v) of world point X [3] seen by camera i of a Scene."""
    cam_from_world = scene.cameras.cam_from_world[i].double().numpy()
    K = scene.cameras.Ks[i].double().numpy()
    return project_opencv(np.linalg.inv(cam_from_world), K, np.asarray(X, float))


def save_rgb(path: Path, width: int, height: int, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    """Write a random image (RGB or RGBA) and return its array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 4 if mode == "RGBA" else 3
    array = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    Image.fromarray(array).save(path)
    return array


def write_blender(root: Path, poses_cv, *, width=16, height=12, angle_x=0.8, split=None,
                  extension=".png", mode="RGBA", frame_extra=None, meta_extra=None) -> Path:
    """A NeRF-synthetic style transforms file with images; returns the JSON path."""
    folder = split or "images"
    frames = []
    for i, pose in enumerate(poses_cv):
        save_rgb(root / folder / f"r_{i}.png", width, height, seed=i, mode=mode)
        file_path = f"./{folder}/r_{i}" + ("" if extension is None else extension)
        frames.append({"file_path": file_path, "transform_matrix": (pose @ FLIP_YZ).tolist(),
                       **(frame_extra or {})})
    meta = {"camera_angle_x": angle_x, "frames": frames, **(meta_extra or {})}
    path = root / (f"transforms_{split}.json" if split else "transforms.json")
    path.write_text(json.dumps(meta))
    return path


def llff_rows(poses_cv, h_full: float, w_full: float, focal: float,
              bounds=(1.0, 10.0)) -> np.ndarray:
    """[N,17] poses_bounds rows (LLFF down/right/back columns) from OpenCV world_from_cam."""
    rows = []
    for pose in poses_cv:
        right, down, forward, t = pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3]
        mat = np.stack([down, right, -forward, t, [h_full, w_full, focal]], axis=1)  # [3,5]
        rows.append(np.concatenate([mat.reshape(-1), bounds]))
    return np.array(rows)


def write_llff(root: Path, poses_cv, *, width=24, height=18, scale_to_full=8.0, focal=150.0,
               folder="images_8") -> np.ndarray:
    """An LLFF scene whose hwf describes images `scale_to_full` times larger than saved."""
    for i in range(len(poses_cv)):
        save_rgb(root / folder / f"img{i:03d}.png", width, height, seed=i)
    rows = llff_rows(poses_cv, height * scale_to_full, width * scale_to_full, focal)
    np.save(root / "poses_bounds.npy", rows)
    return rows


def neus_matrices(poses_cv, K_full: np.ndarray, scale_mat: np.ndarray, *, sign=-2.5):
    """NeuS world_mat_i (= sign * K [R|t] in the input frame) for cameras given in the
    normalized frame, so that world_mat @ scale_mat projects normalized points."""
    mats = {}
    scale = abs(np.linalg.det(scale_mat[:3, :3])) ** (1.0 / 3.0)
    Q = scale_mat[:3, :3] / scale  # rotation part of the similarity
    for i, pose_norm in enumerate(poses_cv):
        R_input = pose_norm[:3, :3].T @ Q.T
        center_input = scale_mat[:3, :3] @ pose_norm[:3, 3] + scale_mat[:3, 3]
        P = K_full @ np.concatenate([R_input, (-R_input @ center_input)[:, None]], axis=1)
        world_mat = np.eye(4)
        world_mat[:3] = sign * P
        mats[f"world_mat_{i}"] = world_mat
        mats[f"scale_mat_{i}"] = scale_mat
    return mats


def write_neus(root: Path, poses_cv, *, K_full, scale_mat, width=40, height=30,
               masks=True) -> dict:
    """A NeuS scene: image/ + mask/ + cameras_sphere.npz; returns the matrices."""
    mats = neus_matrices(poses_cv, K_full, scale_mat)
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "cameras_sphere.npz", **mats)
    for i in range(len(poses_cv)):
        save_rgb(root / "image" / f"{i:06d}.png", width, height, seed=i)
        if masks:
            mask = np.zeros((height, width, 3), np.uint8)
            mask[: height // 2] = 255
            (root / "mask").mkdir(exist_ok=True)
            Image.fromarray(mask).save(root / "mask" / f"{i:03d}.png")
    return mats


def _s15(v: float) -> bytes:  # ICC s15Fixed16Number
    return struct.pack(">i", round(v * 65536))


def _icc_xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def rgb_icc_profile(name: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix and gamma curves), as bytes: colorants
    `red`, `green`, `blue` are XYZ adapted to D50, as ICC profiles carry them."""
    text = name.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [(b"desc", desc), (b"wtpt", _icc_xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _icc_xyz(*red)),
            (b"gXYZ", _icc_xyz(*green)), (b"bXYZ", _icc_xyz(*blue)), (b"rTRC", curve),
            (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text" + bytes(4) + b"none" + bytes(4))]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"lcms" + struct.pack(">I", 0x02100000)
              + b"mntrRGB XYZ " + bytes(12) + b"acsp" + bytes(28)
              + _icc_xyz(0.9642, 1.0, 0.8249)[8:] + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


P3_D50 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
"""Display P3's red, green and blue in XYZ adapted to D50 (Apple's profile)."""
SRGB_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def p3_to_srgb(rgb: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """The reference conversion of [...,3] uint8 values in `rgb_icc_profile("...", *P3_D50,
    gamma)` to sRGB uint8, by its matrices and curves (no colour-management library)."""
    linear = (np.asarray(rgb, np.float64) / 255.0) ** gamma
    xyz = linear @ np.array(P3_D50)
    srgb = np.clip(np.linalg.solve(np.array(SRGB_D50).T, xyz.reshape(-1, 3).T).T, 0, 1)
    encoded = np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)
    return np.round(encoded * 255).reshape(np.shape(rgb)).astype(np.uint8)
