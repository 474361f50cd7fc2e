"""Pose refinement (`optim.pose_refine`) on the synthetic scene whose training poses are off:
held-out PSNR (exact held-out poses) with and without it, and how close the corrected training
poses come to the truth. The figures of bench/results/explore/pose_refine_synthetic_cpu_*.json.

    python bench/pose_refine_synthetic.py --degrees 1 --steps 600 [--width 96 --height 72]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

from voxsplat.data.cameras import Cameras, perturbed_poses, rotation_angles_deg
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.recon.config import preset, with_steps
from voxsplat.recon.engine import Trainer
from voxsplat.recon.gaussians import scene_extent
from voxsplat.recon.pipeline import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=72)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--degrees", type=float, default=1.0)
    ap.add_argument("--lr-pose", type=float)
    ap.add_argument("--pose-from", type=float)
    args = ap.parse_args()
    truth = make_synthetic_scene(SyntheticConfig(width=args.width, height=args.height, n_train=12,
                                                 n_test=3, n_points=3000, supersample=1)).scene
    train = list(truth.split("train"))
    exact = truth.cameras.cam_from_world
    poses = exact.clone()  # held-out views keep their exact poses
    poses[train] = perturbed_poses(exact[train], args.degrees,
                                   0.005 * args.degrees * scene_extent(truth.cameras[train]),
                                   torch.Generator().manual_seed(0))
    scene = replace(truth, cameras=Cameras(poses, truth.cameras.Ks, truth.cameras.widths,
                                           truth.cameras.heights))
    result = {"degrees": args.degrees, "steps": args.steps, "rotation_error_deg_input":
              float(rotation_angles_deg(poses[train], exact[train]).mean())}
    for refine in (False, True):
        cfg = with_steps(preset("fast"), args.steps)
        optim = replace(cfg.optim, pose_refine=refine)
        if args.lr_pose is not None:
            optim = replace(optim, lr_pose=args.lr_pose)
        if args.pose_from is not None:
            optim = replace(optim, pose_from=args.pose_from)
        cfg = replace(cfg, backend="torch", checkpoint_every=0, optim=optim)
        run = Trainer(scene, cfg, f"/tmp/pose_refine_{int(refine)}", torch.device("cpu")).fit(progress=False)
        key = "with" if refine else "without"
        result[f"psnr_{key}"] = evaluate(truth, run.splats, "test", torch.device("cpu"), "torch")["psnr"]
        if refine:
            result["lr_pose"], result["pose_from"] = cfg.optim.lr_pose, cfg.optim.pose_from
            result["rotation_error_deg_refined"] = float(rotation_angles_deg(
                run.train_cameras.cam_from_world, exact[train]).mean())
            result["pose_refinement"] = run.pose_refinement
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
