"""A handful of unposed photos, end to end: a set of `bench_fewview` posed by SfM on this CPU
(pycolmap, one PINHOLE camera, so that held-out photos of the same camera share its
intrinsics), then trained on a GPU with those poses, and for comparison with the scene's given
poses. Sets: `dtu24_6`, DTU scan24's 6 photos (the 3-view protocol's 22, 25, 28 and 23, 26,
29; they register through the guided second pass), scored by masked PSNR on the 3-view
protocol's test views that are not among the 6 (22 views); `fern_5` and `fern_2`, 5 or 2 of
fern's photos as the LLFF protocol picks them, scored on its test views (every 8th: 3 views,
no masks). In
the SfM variant the held-out views take SfM's intrinsics and the given poses brought into the
SfM frame by the similarity that best maps the given training camera centres onto SfM's
(Umeyama; for two cameras, the rotation from their orientations). A degree of pose error is about 12 pixels on DTU, so each variant is also scored
after test-time alignment (as pose-free view synthesis is measured): each held-out view's
pose is corrected, the Gaussians frozen, to fit its photo (inside its mask) (`align_poses`).

python3 bench/unposed_fewview.py --stage DIR [SET [CAMERA_MODEL [exif]]]   # here (pycolmap):
    # DIR/unposed_SET.pt; CAMERA_MODEL PINHOLE (default) or SIMPLE_PINHOLE (one focal length,
    # as the default SIMPLE_RADIAL estimates it: two photos leave fx / fy loose); exif: the
    # photos carry the given focal length in EXIF, as a phone's do
python3 bench/unposed_fewview.py DIR/unposed_SET.pt POSES MODEL OUT.json [--steps S]
    [--downscale F] [--align-steps N] [--set section.field=value ...]
    # POSES: sfm | given; MODEL: voxel | gaussians
"""
import argparse
import io
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from voxsplat.data.cameras import Cameras
from voxsplat.data.scene import Scene
from voxsplat.scripts.bench_fewview import DTU_TEST



def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _unpng(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data))))


def _test_ids(set_name: str, given: Scene, stems) -> list[int]:
    """The held-out views: the protocol's test views that are not among the photos."""
    if set_name.startswith("dtu"):
        names = [f"{i:06d}" for i in DTU_TEST]
    else:  # LLFF: every 8th view by name
        names = [n for k, n in enumerate(sorted(given.names)) if k % 8 == 0]
    idx = {n: i for i, n in enumerate(given.names)}
    return [idx[n] for n in names if n not in stems]


def _png_mask(mask) -> bytes | None:
    return None if mask is None else _png(mask.numpy().astype(np.uint8) * 255)


def _similarity(given: Cameras, sfm: Cameras):
    """(scale, R, t) taking the given frame to SfM's, from the same training cameras in
    both: Umeyama on the centres, or for two cameras (whose centres leave the turn about
    their baseline free) R from their orientations, scale and t from their centres."""
    from voxsplat.recon.sfm.evaluate import umeyama
    c_given, c_sfm = given.centers.double().numpy(), sfm.centers.double().numpy()
    if len(c_given) > 2:
        return umeyama(c_given, c_sfm)
    # world_sfm_from_world_given = R_sfm^T R_given per camera; their chordal mean
    R_given = given.cam_from_world[:, :3, :3].double().numpy()
    R_sfm = sfm.cam_from_world[:, :3, :3].double().numpy()
    U, _, Vt = np.linalg.svd(sum(s.T @ g for g, s in zip(R_given, R_sfm)))
    R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    scale = np.linalg.norm(c_sfm[1] - c_sfm[0]) / np.linalg.norm(c_given[1] - c_given[0])
    return scale, R, c_sfm.mean(0) - scale * R @ c_given.mean(0)


def _write_exif_focal(folder: Path, focal_px: float) -> None:
    """Give every photo in `folder` the EXIF a phone writes: make, model and the 35 mm
    equivalent focal length of `focal_px` (COLMAP reads it against the 43.27 mm diagonal)."""
    for path in sorted(folder.iterdir()):
        with Image.open(path) as img:
            img.load()
            exif = Image.Exif()
            exif[0x010F], exif[0x0110] = "voxsplat", "bench"  # make, model
            exif.get_ifd(0x8769)[0xA405] = round(focal_px * 43.27 / float(np.hypot(*img.size)))
            img.save(path, exif=exif)


def stage(out_dir: Path, set_name: str = "dtu24_6", camera_model: str = "PINHOLE",
          exif: str = "") -> Path:
    """Pose the set's photos with SfM and write both variants' views to
    `out_dir/unposed_SET.pt`. `exif` "exif": the photos carry the given focal length in
    their EXIF first, as a phone's would."""
    from voxsplat.data.load import load_scene
    from voxsplat.recon.sfm import SfmConfig
    from voxsplat.recon.sfm.bench_fewview import SETS, stage_photos
    from voxsplat.recon.sfm.evaluate import pose_errors, relative_pose_errors
    from voxsplat.recon.sfm.run import load_or_run_sfm
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    folder, photo_dir, stems, _ = SETS[set_name]
    given = load_scene(root / folder)
    idx = {n: i for i, n in enumerate(given.names)}
    test = _test_ids(set_name, given, stems)
    config = SfmConfig(camera_model=camera_model)
    with tempfile.TemporaryDirectory() as work:
        stage_photos(root / folder / photo_dir, stems, Path(work) / "photos")
        if exif == "exif":
            _write_exif_focal(Path(work) / "photos", float(given.cameras.Ks[idx[stems[0]], 0, 0]))
        sfm = load_or_run_sfm(Path(work) / "photos", Path(work) / "ws", config, progress=False)
        report = json.loads((Path(work) / "ws" / "sfm" / "sfm.json").read_text())
    if len(sfm.names) != len(stems):
        raise SystemExit(f"SfM registered {len(sfm.names)} of {len(stems)}: nothing to compare")
    train = [idx[n] for n in sfm.names]
    scale, R, t = _similarity(given.cameras[train], sfm.cameras)
    sfm_from_given = torch.eye(4, dtype=torch.float64)
    sfm_from_given[:3, :3], sfm_from_given[:3, 3] = torch.from_numpy(scale * R), torch.from_numpy(t)
    moved = given.cameras.transformed(sfm_from_given.float()).cam_from_world
    views = {"given": [], "sfm": []}
    for k, i in enumerate(train + test):
        mask = None if given.masks is None else given.masks[i]
        g = {"name": given.names[i], "split": "train" if k < len(train) else "test",
             "image": _png(given.images[i].numpy()), "mask": _png_mask(mask),
             "K": given.cameras.Ks[i], "cam_from_world": given.cameras.cam_from_world[i]}
        views["given"].append(g)
        if k < len(train):  # SfM's undistorted photo, its camera; the given mask resized
            img = sfm.images[k].numpy()
            if mask is not None:
                mask = torch.from_numpy(np.array(Image.fromarray(mask.numpy().astype(np.uint8) * 255)
                                                 .resize(img.shape[1::-1])) > 127)
            views["sfm"].append({**g, "image": _png(img), "mask": _png_mask(mask),
                                 "K": sfm.cameras.Ks[k], "cam_from_world": sfm.cameras.cam_from_world[k]})
        else:  # the given photo, SfM's camera, the given pose in the SfM frame
            views["sfm"].append({**g, "K": sfm.cameras.Ks[0], "cam_from_world": moved[i]})
    path = out_dir / f"unposed_{set_name}.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = pose_errors if len(train) > 2 else relative_pose_errors
    sfm_errors = errors(sfm.cameras.cam_from_world.double().numpy(),
                        given.cameras.cam_from_world[train].double().numpy())
    torch.save({"set": set_name, "views": views, "sfm_points": sfm.points, "sfm_point_colors": sfm.point_colors,
                "background": given.background,
                "guided_matching": report["guided_matching"], "sfm_pose_errors": sfm_errors,
                "sfm_config": config.to_dict(), "exif_focal": exif == "exif"}, path)
    return path


def scene_of(staged: dict, poses: str) -> Scene:
    """The staged variant (`sfm` or `given`) as a Scene, with masks (for the masked metric)
    where the set has them."""
    views = staged["views"][poses]
    images = tuple(_unpng(v["image"]) for v in views)
    cams = Cameras(cam_from_world=torch.stack([v["cam_from_world"] for v in views]).float(),
                   Ks=torch.stack([v["K"] for v in views]).float(),
                   widths=torch.tensor([im.shape[1] for im in images]),
                   heights=torch.tensor([im.shape[0] for im in images]))
    splits = {s: tuple(i for i, v in enumerate(views) if v["split"] == s) for s in ("train", "test")}
    pts = staged["sfm_points"] if poses == "sfm" else None
    masks = None if views[0]["mask"] is None else tuple(_unpng(v["mask"]) > 127 for v in views)
    return Scene(images=images, names=tuple(v["name"] for v in views), cameras=cams,
                 masks=masks, splits=splits,
                 points=pts, point_colors=staged["sfm_point_colors"] if pts is not None else None,
                 background=tuple(staged["background"]),
                 source=f"{staged.get('set', 'dtu24_6')} ({poses} poses)")


def align_poses(splats: dict, sky, scene: Scene, device: torch.device, backend: str,
                steps: int = 300) -> torch.Tensor:
    """Test-time alignment: each held-out view's `cam_from_world`, corrected by a rigid motion
    in its camera frame (rotation vector and translation, Adam) so that the frozen Gaussians'
    render fits its photo (L1 inside its mask): a third of the steps at a quarter size, then
    full size. Returns the scene's [C,4,4] poses with the held-out ones replaced."""
    from voxsplat.data.cameras import rotvec_to_rotmat
    from voxsplat.recon.gaussians import render_splats, sh_degree_of
    splats = {k: v.detach().to(device) for k, v in splats.items()}
    bg = sky.to(device) if sky is not None else torch.tensor(scene.background, device=device)
    deg, cams = sh_degree_of(splats), scene.cameras.to(device)
    extent = float(cams.centers.std(0).norm())
    poses = cams.cam_from_world.clone()
    for i in scene.split("test"):
        rot = torch.zeros(1, 3, device=device, requires_grad=True)
        move = torch.zeros(3, device=device, requires_grad=True)
        opt = torch.optim.Adam([{"params": [rot], "lr": 2e-3}, {"params": [move], "lr": 2e-3}])
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.1 ** (1 / steps))
        photo = scene.image(i).to(device).permute(2, 0, 1)[None]
        mask = (scene.masks[i].float() if scene.masks is not None
                else torch.ones(photo.shape[-2:]))[None, None].to(device)

        def correction() -> torch.Tensor:  # [4,4], in the camera's frame
            top = torch.cat([rotvec_to_rotmat(rot)[0], extent * move[:, None]], 1)
            return torch.cat([top, torch.eye(4, device=device)[3:]], 0)

        for step in range(steps):
            factor = 0.25 if step < steps // 3 else 1.0
            cam = cams[[i]].scaled(factor) if factor != 1.0 else cams[[i]]
            W, H = cam.size(0)
            gt = torch.nn.functional.interpolate(photo, (H, W), mode="area")[0].permute(1, 2, 0)
            inside = torch.nn.functional.interpolate(mask, (H, W), mode="area")[0, 0] > 0.5
            cam = Cameras(correction()[None] @ cam.cam_from_world, cam.Ks, cam.widths, cam.heights)
            out = render_splats(splats, cam, deg, bg, backend)
            loss = (out.colors[0] - gt).abs()[inside].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            poses[i] = correction() @ cams.cam_from_world[i]
    return poses.cpu()


def train_and_score(scene: Scene, cfg, align_steps: int) -> dict:
    """Train on the views without masks, then masked PSNR on the held-out ones at their poses
    and after `align_poses` (with the correction each view took, in degrees)."""
    from voxsplat.data.cameras import rotation_angles_deg
    from voxsplat.recon import pipeline
    from voxsplat.recon.engine import resolve_device
    from voxsplat.recon.sky import read_sky
    device = resolve_device("auto")
    with tempfile.TemporaryDirectory() as ws:
        m = pipeline.reconstruct(replace(scene, masks=None), Path(ws), cfg,
                                 {"kind": "bench", "name": scene.source}, progress=False)
        splats, sky = pipeline.load_splats(Path(ws)), read_sky(Path(ws))
    at = pipeline.evaluate(scene, splats, "test", device, cfg.backend, masked=True, sky=sky)
    poses = align_poses(splats, sky, scene, device, cfg.backend, align_steps)
    aligned = replace(scene, cameras=replace(scene.cameras, cam_from_world=poses))
    after = pipeline.evaluate(aligned, splats, "test", device, cfg.backend, masked=True, sky=sky)
    test = list(scene.split("test"))
    turn = rotation_angles_deg(poses[test].double(), scene.cameras.cam_from_world[test].double())
    train = pipeline.evaluate(scene, splats, "train", device, cfg.backend, masked=True, sky=sky)
    keys = ("train_seconds", "peak_gpu_mem_mb", "n_gaussians", "n_voxels", "mvs_points", "steps", "model")
    return {"psnr": at["psnr"], "ssim": at["ssim"], "psnr_aligned": after["psnr"],
            "ssim_aligned": after["ssim"], "psnr_train": train["psnr"],
            "psnr_per_view": at["psnr_per_view"], "psnr_aligned_per_view": after["psnr_per_view"],
            "alignment_turn_deg": turn.tolist(), "views": at["views"],
            **{k: m.get(k) for k in keys}}


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--stage":
        print(stage(Path(sys.argv[2]), *sys.argv[3:6]))
        return 0
    from voxsplat.scripts.bench import environment, train_config
    p = argparse.ArgumentParser()
    p.add_argument("staged", type=Path); p.add_argument("poses", choices=["sfm", "given"])
    p.add_argument("model"); p.add_argument("out", type=Path)
    p.add_argument("--preset", default="sparse")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--downscale", type=float, default=1.0)
    p.add_argument("--align-steps", type=int, default=300)
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    staged = torch.load(a.staged, weights_only=False)
    scene = scene_of(staged, a.poses)
    if a.downscale != 1.0:  # CPU checks
        from voxsplat.data.transforms import downscale
        scene = downscale(scene, a.downscale)
    cfg = train_config(a.preset, a.steps, (f"downscale={a.downscale}", *a.set), a.model)
    m = train_and_score(scene, cfg, a.align_steps)
    m.update(poses=a.poses, preset=a.preset, sets=a.set, n_train=len(scene.split("train")),
             n_test=len(scene.split("test")), align_steps=a.align_steps,
             guided_matching=staged["guided_matching"], sfm_config=staged["sfm_config"],
             sfm_pose_errors=staged["sfm_pose_errors"], exif_focal=staged.get("exif_focal", False),
             **environment())
    a.out.write_text(json.dumps(m, indent=1) + "\n")
    print(json.dumps({k: m[k] for k in ("poses", "model", "psnr", "psnr_aligned", "psnr_train",
                                        "train_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
