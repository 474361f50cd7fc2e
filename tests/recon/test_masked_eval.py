"""Masks after training: `eval --masked` scores inside the views' masks (views whose mask is
empty left out and counted), and the mesh and points exports of photos posed by SfM carve
with the undistorted masks that SfM left in ws/sfm/masks/."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.load import load_scene
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon import pipeline
from voxsplat.scripts.cli import main
from testkit import untrained_workspace

SMALL = SyntheticConfig(width=32, height=24, n_train=4, n_test=2, n_points=400, supersample=1)


@pytest.fixture(scope="module")
def synth():
    return make_synthetic_scene(SMALL).scene


def _workspace(root, scene):
    data = write_blender_dataset(scene, root / "input")
    untrained_workspace(root / "ws", load_scene(data), data)
    return root / "ws", data


def test_masked_eval_leaves_views_with_empty_masks_out(synth, tmp_path, capsys):
    """`eval --masked` scores inside the masks into metrics_masked.json ("masked": true; the
    run's metrics.json stays); a held-out view whose mask is empty has no score (null), is
    counted and named, and the means are those of the other views (not NaN)."""
    ws, data = _workspace(tmp_path, synth)
    empty = synth.names[synth.split("test")[0]]
    Image.fromarray(np.zeros((SMALL.height, SMALL.width), np.uint8)).save(
        data / "masks" / f"{empty}.png")
    assert main(["eval", str(ws), "--device", "cpu"]) == 0
    whole = json.loads((ws / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(ws), "--device", "cpu", "--masked"]) == 0
    out = capsys.readouterr().out
    masked = json.loads((ws / "metrics_masked.json").read_text())
    assert json.loads((ws / "metrics.json").read_text()) == whole
    assert masked["masked"] is True and masked["n_empty_masks"] == 1
    assert masked["views"][0] == empty and masked["psnr_per_view"][0] is None
    assert masked["ssim_per_view"][0] is None
    other = masked["psnr_per_view"][1]
    assert np.isfinite(other) and masked["psnr"] == pytest.approx(other)
    assert masked["ssim"] == pytest.approx(masked["ssim_per_view"][1])
    assert other != pytest.approx(whole["psnr_per_view"][1])  # inside the mask only
    assert "masked=True" in out and f"1 of the 2 views ({empty}) have empty masks" in out
    assert whole["masked"] is False and whole["n_empty_masks"] == 0


def test_masked_eval_of_an_input_without_masks_says_so(synth, tmp_path, capsys):
    ws, _ = _workspace(tmp_path, replace(synth, masks=None))
    capsys.readouterr()
    assert main(["eval", str(ws), "--device", "cpu", "--masked"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("voxsplat: error: --masked: the input ")
    assert "has no masks; drop --masked, or reconstruct from photos with masks" in err
    assert not (ws / "metrics.json").exists()


def test_a_mask_of_another_size_counts_the_whole_view(synth):
    """A mask whose size is not its view's is not passed to PSNR (which would raise): the
    whole view counts, as it does for the open fraction."""
    from voxsplat.recon.gaussians import splats_from_points
    splats = {k: v.detach() for k, v in
              splats_from_points(synth.points, synth.point_colors, 0, 0.95, 1.2).items()}
    i, j = synth.split("test")
    masks = list(synth.masks)
    masks[i] = torch.ones(SMALL.height // 2, SMALL.width // 2, dtype=torch.bool)
    odd = replace(synth, masks=tuple(masks))
    cpu = torch.device("cpu")
    masked = pipeline.evaluate(odd, splats, "test", cpu, "torch", masked=True)
    whole = pipeline.evaluate(synth, splats, "test", cpu, "torch")
    assert masked["psnr_per_view"][0] == pytest.approx(whole["psnr_per_view"][0])
    assert masked["psnr_per_view"][1] != pytest.approx(whole["psnr_per_view"][1])
    assert masked["n_empty_masks"] == 0


def _rectangle(k: int, H: int, W: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[H // 6 + k: H - H // 5, W // 5: W - W // 6 - k] = 255
    return mask


def test_mesh_and_points_of_photos_posed_by_sfm_use_their_masks(tmp_path, monkeypatch):
    """Cut-out photos (alpha) posed by SfM: `export --format points` (and mesh, which takes
    the same views) carves with the undistorted masks in ws/sfm/masks/, those that training
    and `eval` read, not without masks."""
    pytest.importorskip("pycolmap")
    from sfm_scene import FAST, H, W, render_corner
    from voxsplat.recon.export import points as points_module
    from voxsplat.recon.sfm import run_sfm
    corner = tmp_path / "corner"
    render_corner(corner, 8)
    photos = tmp_path / "cutouts"
    photos.mkdir()
    for k, src in enumerate(sorted(corner.iterdir())):
        rgb = np.asarray(Image.open(src).convert("RGB"))
        Image.fromarray(np.dstack([rgb, _rectangle(k, H, W)])).save(photos / src.name)
    ws = tmp_path / "ws"
    scene = run_sfm(photos, ws, FAST, progress=False)  # a non-default config: eval reuses it
    assert scene.masks is not None and (ws / "sfm" / "masks").is_dir()
    untrained_workspace(ws, scene, photos)
    report = (ws / "sfm" / "sfm.json").stat().st_mtime_ns
    seen = {}

    class Stop(Exception):
        pass

    def spy(splats, cams, cfg, masks, *args):
        seen["cams"], seen["masks"] = cams, masks
        raise Stop

    monkeypatch.setattr(points_module, "points_from_splats", spy)
    with pytest.raises(Stop):
        main(["export", str(ws), "--format", "points", "--out", str(tmp_path / "p.ply"),
              "--device", "cpu", "--quiet"])
    train = scene.split("train")
    assert seen["masks"] is not None and len(seen["masks"]) == len(seen["cams"]) == len(train)
    for mask, i in zip(seen["masks"], train):
        assert torch.equal(mask, scene.masks[i]) and not bool(mask.all())
    assert (ws / "sfm" / "sfm.json").stat().st_mtime_ns == report  # SfM did not run again
    rec = json.loads((ws / "scene.json").read_text())
    cams, masks = pipeline._train_views(rec, replace(scene, names=tuple(f"x{n}" for n in scene.names)))
    assert masks is None  # other views than the workspace's: no masks
