"""Pose accuracy of an SfM result against ground truth, after a similarity alignment."""

from __future__ import annotations

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ~ s * R @ src + t (Umeyama 1991).

    Args:
        src: [N,3] points, N >= 3 and not collinear.
        dst: [N,3] corresponding points.

    Returns:
        scale s, rotation R [3,3] (det +1), translation t [3].
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    x, y = src - mu_src, dst - mu_dst
    U, S, Vt = np.linalg.svd(y.T @ x / len(src))
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1.0
    R = U @ D @ Vt
    scale = float(np.trace(np.diag(S) @ D) / (x * x).sum(1).mean())
    return scale, R, mu_dst - scale * R @ mu_src


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Rotation angles in degrees of rotation matrices R [...,3,3]."""
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_errors(cam_from_world_est: np.ndarray, cam_from_world_gt: np.ndarray) -> dict:
    """Camera errors after aligning the estimated centres to the ground truth (Umeyama).

    Args:
        cam_from_world_est: [C,4,4] estimated OpenCV poses (any frame and scale).
        cam_from_world_gt: [C,4,4] ground-truth OpenCV poses of the same cameras.

    Returns:
        `rot_err_deg` (mean over cameras) and `rot_err_max_deg`; `center_err` (mean centre
        distance, ground-truth units) and `center_err_frac` (that over the scene extent, the
        diagonal of the ground-truth centres' bounding box); `extent`.
    """
    est = np.linalg.inv(np.asarray(cam_from_world_est, np.float64))  # world_from_cam [C,4,4]
    gt = np.linalg.inv(np.asarray(cam_from_world_gt, np.float64))
    scale, R, t = umeyama(est[:, :3, 3], gt[:, :3, 3])
    centers = scale * est[:, :3, 3] @ R.T + t
    rotations = R[None] @ est[:, :3, :3]  # aligned world_from_cam rotations
    rot_err = rotation_angle_deg(np.swapaxes(gt[:, :3, :3], 1, 2) @ rotations)
    center_err = np.linalg.norm(centers - gt[:, :3, 3], axis=1)
    extent = float(np.linalg.norm(gt[:, :3, 3].max(0) - gt[:, :3, 3].min(0)))
    return {"rot_err_deg": float(rot_err.mean()), "rot_err_max_deg": float(rot_err.max()),
            "center_err": float(center_err.mean()),
            "center_err_frac": float(center_err.mean() / extent), "extent": extent}


def relative_pose_errors(cam_from_world_est: np.ndarray, cam_from_world_gt: np.ndarray) -> dict:
    """Errors of the second camera's pose relative to the first, where two cameras leave a
    similarity alignment undetermined (a turn about their baseline).

    Args:
        cam_from_world_est: [2,4,4] estimated OpenCV poses (any frame and scale).
        cam_from_world_gt: [2,4,4] ground-truth OpenCV poses of the same cameras.

    Returns:
        `rel_rot_err_deg` (the relative rotation's error) and `rel_dir_err_deg` (the angle
        between the baselines, in the first camera's frame).
    """
    def relative(poses):
        poses = np.asarray(poses, np.float64)
        second_from_first = poses[1] @ np.linalg.inv(poses[0])
        baseline = -second_from_first[:3, :3].T @ second_from_first[:3, 3]  # in the first camera
        return second_from_first[:3, :3], baseline / np.linalg.norm(baseline)

    (R_est, d_est), (R_gt, d_gt) = relative(cam_from_world_est), relative(cam_from_world_gt)
    return {"rel_rot_err_deg": float(rotation_angle_deg((R_gt.T @ R_est)[None])[0]),
            "rel_dir_err_deg": float(np.degrees(np.arccos(np.clip(d_est @ d_gt, -1.0, 1.0))))}
