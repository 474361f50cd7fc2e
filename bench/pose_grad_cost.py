"""What the camera-pose gradient costs in gsplat's rasterizer: one training step's forward and
backward of N random Gaussians (SH degree 3) seen by C cameras, with and without
``cam_from_world.requires_grad`` (pose refinement, `optim.pose_refine`). GPU only.

usage: python bench/pose_grad_cost.py [--n 800000] [--cams 4] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from voxsplat.render.rasterize import rasterize


def _scene(n: int, cams: int, device: torch.device, log_scale: float = -4.0) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)
    z = 3 + 3 * torch.rand(n, 1, generator=g)  # in front of every camera, inside its view
    means = torch.cat([(torch.rand(n, 2, generator=g) - 0.5) * torch.tensor([1.1, 0.6]) * z, z], 1)
    cam_from_world = torch.eye(4).repeat(cams, 1, 1)
    cam_from_world[:, 0, 3] = torch.linspace(-0.3, 0.3, cams)
    K = torch.tensor([[800.0, 0, 490], [0, 800.0, 272], [0, 0, 1]])
    return {"means": means, "quats": torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=1),
            "scales": torch.full((n, 3), log_scale) + 0.3 * torch.randn(n, 3, generator=g),
            "opacities": torch.sigmoid(torch.randn(n, generator=g)),
            "colors": 0.3 * torch.randn(n, 16, 3, generator=g),
            "cam_from_world": cam_from_world, "Ks": K.repeat(cams, 1, 1)} | {"device": device}


def step_seconds(s: dict, pose_grad: bool, iters: int = 30) -> float:
    dev = s["device"]
    params = {k: s[k].to(dev).requires_grad_(True) for k in ("means", "quats", "scales",
                                                             "opacities", "colors")}
    viewmats = s["cam_from_world"].to(dev).requires_grad_(pose_grad)
    Ks = s["Ks"].to(dev)
    for i in range(iters + 5):
        if i == 5:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        out = rasterize(params["means"], params["quats"], params["scales"], params["opacities"],
                        params["colors"], viewmats, Ks, 980, 545, sh_degree=3, backend="gsplat")
        out.colors.square().mean().backward()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def pose_ops_ms(views: int = 21, batch: int = 4, iters: int = 200) -> float:
    """One step's pose-correction work alone (ViewPoses forward and backward through a toy
    loss, the Adam step, the gauge removal), in ms on the GPU."""
    from voxsplat.recon.appearance import ViewPoses
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(views, 3, generator=g).to(dev)
    cam_from_world = torch.eye(4).repeat(views, 1, 1).to(dev)
    poses = ViewPoses(centers, 1.0)
    opt = torch.optim.Adam(poses.parameters(), lr=1e-4)
    for i in range(iters + 10):
        if i == 10:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        ids = [(i * batch + k) % views for k in range(batch)]
        out = poses(torch.stack([cam_from_world[i] for i in ids]), ids)
        out.square().sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        poses.remove_gauge()
    torch.cuda.synchronize()
    return 1e3 * (time.perf_counter() - t0) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=800_000)
    p.add_argument("--cams", type=int, default=4)
    p.add_argument("--log-scale", type=float, default=-4.0, help="the Gaussians' log size")
    p.add_argument("--only", choices=["with", "without"], help="one case (twice)")
    p.add_argument("--pose-ops", action="store_true", help="time the pose-correction work alone")
    p.add_argument("--out")
    a = p.parse_args()
    if a.pose_ops:
        print(json.dumps({f"pose_ops_ms_batch{b}": pose_ops_ms(batch=b) for b in (4, 1)}))
        return
    s = _scene(a.n, a.cams, torch.device("cuda"), a.log_scale)
    rows = {}
    cases = {"with": (True, True), "without": (False, False)}.get(a.only, (False, True, False, True))
    for pose_grad in cases:  # twice each: warm-up order effects show
        rows.setdefault(str(pose_grad), []).append(step_seconds(s, pose_grad))
    out = {"n": a.n, "cams": a.cams,
           "ms_without_pose_grad": [1e3 * t for t in rows.get("False", [])],
           "ms_with_pose_grad": [1e3 * t for t in rows.get("True", [])],
           "gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    print(json.dumps(out, indent=1))
    if a.out:
        json.dump(out, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
