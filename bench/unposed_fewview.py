"""A handful of unposed photos, end to end: DTU scan24's 6 photos of `bench_fewview`'s dtu24_6
set (the 3-view protocol's 22, 25, 28 and 23, 26, 29), posed by SfM on this CPU (pycolmap;
the 6 register through the guided second pass), then trained on a GPU with those poses, and
for comparison with the scene's given poses. Both are scored by masked PSNR on the 3-view
protocol's test views that are not among the 6 (22 views), with their given photos and
intrinsics; in the SfM variant their poses are the given ones brought into the SfM frame by
the similarity that best maps the 6 given camera centres onto SfM's (Umeyama), so that SfM's
errors (poses, and a focal length estimated without EXIF) show as they would to a user.

python3 bench/unposed_fewview.py --stage DIR         # here (pycolmap): DIR/unposed_dtu6.pt
python3 bench/unposed_fewview.py DIR/unposed_dtu6.pt POSES MODEL OUT.json [--steps S]
    [--downscale F] [--set section.field=value ...]   # POSES: sfm | given; MODEL: voxel | gaussians
"""
import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from voxsplat.data.cameras import Cameras
from voxsplat.data.scene import Scene

DTU_TEST = (1, 2, 9, 10, 11, 12, 14, 15, 23, 24, 26, 27, 29, 30, 31, 32, 33, 34, 35, 41, 42, 43,
            45, 46, 47)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _unpng(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data))))


def _aligned(cam_from_world: torch.Tensor, scale: float, R: np.ndarray, t: np.ndarray) -> torch.Tensor:
    """[C,4,4] poses of the given frame moved into the frame x' = scale R x + t."""
    world_from_cam = torch.linalg.inv(cam_from_world.double()).numpy()
    out = np.tile(np.eye(4), (len(world_from_cam), 1, 1))
    out[:, :3, :3] = R @ world_from_cam[:, :3, :3]
    out[:, :3, 3] = scale * world_from_cam[:, :3, 3] @ R.T + t
    return torch.from_numpy(np.linalg.inv(out)).float()


def stage(out_dir: Path) -> Path:
    """Pose the 6 photos with SfM and write both variants' views to `out_dir/unposed_dtu6.pt`."""
    from voxsplat.data.load import load_scene
    from voxsplat.recon.sfm import SfmConfig
    from voxsplat.recon.sfm.bench_fewview import SETS, _stage, run_set
    from voxsplat.recon.sfm.evaluate import umeyama
    from voxsplat.recon.sfm.run import load_or_run_sfm
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    folder, photo_dir, stems, _ = SETS["dtu24_6"]
    given = load_scene(root / folder)
    idx = {n: i for i, n in enumerate(given.names)}
    test = [idx[f"{i:06d}"] for i in DTU_TEST if f"{i:06d}" not in stems]
    with tempfile.TemporaryDirectory() as work:
        _stage(root / folder / photo_dir, stems, Path(work) / "photos")
        sfm = load_or_run_sfm(Path(work) / "photos", Path(work) / "ws", SfmConfig(), progress=False)
        report = json.loads((Path(work) / "ws" / "sfm" / "sfm.json").read_text())
    if len(sfm.names) != len(stems):
        raise SystemExit(f"SfM registered {len(sfm.names)} of {len(stems)}: nothing to compare")
    train = [idx[n] for n in sfm.names]
    centres = lambda cw: torch.linalg.inv(cw.double())[:, :3, 3].numpy()  # noqa: E731
    scale, R, t = umeyama(centres(given.cameras.cam_from_world[train]), centres(sfm.cameras.cam_from_world))
    views = {"given": [], "sfm": []}
    for k, i in enumerate(train + test):
        g = {"name": given.names[i], "split": "train" if k < len(train) else "test",
             "image": _png(given.images[i].numpy()), "mask": _png(given.masks[i].numpy().astype(np.uint8) * 255),
             "K": given.cameras.Ks[i], "cam_from_world": given.cameras.cam_from_world[i]}
        views["given"].append(g)
        if k < len(train):  # SfM's undistorted photo, its camera; the given mask resized
            img = sfm.images[k].numpy()
            mask = np.array(Image.fromarray(given.masks[i].numpy().astype(np.uint8) * 255)
                            .resize(img.shape[1::-1]))
            views["sfm"].append({**g, "image": _png(img), "mask": _png(mask), "K": sfm.cameras.Ks[k],
                                 "cam_from_world": sfm.cameras.cam_from_world[k]})
        else:
            views["sfm"].append({**g, "cam_from_world": _aligned(given.cameras.cam_from_world[i:i + 1],
                                                                  scale, R, t)[0]})
    path = out_dir / "unposed_dtu6.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    sfm_errors = run_set("dtu24_6", root, SfmConfig())  # the same run's errors, for the record
    torch.save({"views": views, "sfm_points": sfm.points, "sfm_point_colors": sfm.point_colors,
                "background": given.background,
                "guided_matching": report["guided_matching"], "sfm_pose_errors": sfm_errors}, path)
    return path


def scene_of(staged: dict, poses: str) -> Scene:
    """The staged variant (`sfm` or `given`) as a Scene with masks (for the masked metric)."""
    views = staged["views"][poses]
    images = tuple(_unpng(v["image"]) for v in views)
    cams = Cameras(cam_from_world=torch.stack([v["cam_from_world"] for v in views]).float(),
                   Ks=torch.stack([v["K"] for v in views]).float(),
                   widths=torch.tensor([im.shape[1] for im in images]),
                   heights=torch.tensor([im.shape[0] for im in images]))
    splits = {s: tuple(i for i, v in enumerate(views) if v["split"] == s) for s in ("train", "test")}
    pts = staged["sfm_points"] if poses == "sfm" else None
    return Scene(images=images, names=tuple(v["name"] for v in views), cameras=cams,
                 masks=tuple(_unpng(v["mask"]) > 127 for v in views), splits=splits,
                 points=pts, point_colors=staged["sfm_point_colors"] if pts is not None else None,
                 background=tuple(staged["background"]), source=f"dtu24_6 ({poses} poses)")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--stage":
        print(stage(Path(sys.argv[2])))
        return 0
    from voxsplat.scripts.bench import environment, train_config
    from voxsplat.scripts.bench_fewview import _train_and_eval
    p = argparse.ArgumentParser()
    p.add_argument("staged", type=Path); p.add_argument("poses", choices=["sfm", "given"])
    p.add_argument("model"); p.add_argument("out", type=Path)
    p.add_argument("--preset", default="sparse")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--downscale", type=float, default=1.0)
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    staged = torch.load(a.staged, weights_only=False)
    scene = scene_of(staged, a.poses)
    if a.downscale != 1.0:  # CPU checks
        from voxsplat.data.transforms import downscale
        scene = downscale(scene, a.downscale)
    cfg = train_config(a.preset, a.steps, (f"downscale={a.downscale}", *a.set), a.model)
    m = _train_and_eval(scene, cfg, "auto", True, {"kind": "bench", "name": scene.source})
    m.update(poses=a.poses, preset=a.preset, sets=a.set, n_train=len(scene.split("train")),
             n_test=len(scene.split("test")), guided_matching=staged["guided_matching"],
             sfm_pose_errors=staged["sfm_pose_errors"], **environment())
    a.out.write_text(json.dumps(m, indent=1) + "\n")
    print(json.dumps({k: m[k] for k in ("poses", "model", "psnr", "ssim", "psnr_train", "train_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
