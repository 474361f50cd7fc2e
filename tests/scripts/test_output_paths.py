"""Where the outputs of render, export, eval and a resumed reconstruct go: a path that cannot
be written, a suffix the format does not have, a split the workspace lacks, or options that
a resumed run would ignore stop with one line before any work; a killed writer's temp files
do not pile up."""

import json
import os
from pathlib import Path

import pytest
import torch

from voxsplat.data.atomic import atomic_path
from voxsplat.data.load import load_scene
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon.checkpoint import save_checkpoint
from voxsplat.scripts.cli import main
from testkit import untrained_workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("out_ws")
    cfg = SyntheticConfig(width=32, height=24, n_train=4, n_test=2, n_points=400, supersample=1)
    data = write_blender_dataset(make_synthetic_scene(cfg).scene, root / "input")
    untrained_workspace(root / "ws", load_scene(data), data)
    return root / "ws"


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("voxsplat: error: "), err
    return err


@pytest.mark.parametrize("out, words", [
    ("v.png", "render writes an H.264 video (.mp4, .mov, .mkv, .m4v) or, for a name without a "
              "suffix, a folder of PNG frames"),
    ("v.gif", "give {tmp}/v.mp4 or {tmp}/v"),
    ("folder.mp4", "is a folder; give a file name"),
    ("afile/v.mp4", "afile is a file, not a folder"),
    ("afile/frames", "afile is a file, not a folder")])
def test_render_out_that_cannot_be_written(capsys, workspace, tmp_path, out, words):
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "afile").write_text("x")
    err = _error(capsys, ["render", str(workspace), "--out", str(tmp_path / out), "--frames", "2",
                          "--device", "cpu", "--quiet"])
    assert words.format(tmp=tmp_path) in err, err


@pytest.mark.parametrize("fmt, out, words", [
    ("splat", "scene.ply", "--format splat writes a .splat file"),
    ("ply", "scene.splat", "name the output scene.ply"),
    ("spz", "scene", "--format spz writes a .spz file"),
    ("ply", "folder.ply", "is a folder; give a file name"),
    ("splat", "afile/scene.splat", "afile is a file, not a folder"),
    ("depth", "afile/rgbd", "afile is a file, not a folder")])
def test_export_out_that_cannot_be_written(capsys, workspace, tmp_path, fmt, out, words):
    (tmp_path / "folder.ply").mkdir()
    (tmp_path / "afile").write_text("x")
    err = _error(capsys, ["export", str(workspace), "--format", fmt, "--out", str(tmp_path / out),
                          "--device", "cpu", "--quiet"])
    assert words in err, err


def test_sh_degree_messages_say_which_part_is_wrong(capsys, workspace, tmp_path):
    err = _error(capsys, ["export", str(workspace), "--format", "splat", "--sh-degree", "0",
                          "--out", str(tmp_path / "a.splat")])
    assert "--sh-degree with --format splat: it is for ply, compressed-ply or spz" in err, err
    err = _error(capsys, ["export", str(workspace), "--format", "ply", "--sh-degree", "4",
                          "--out", str(tmp_path / "a.ply")])
    assert "--sh-degree 4: give 0-3" in err, err


def test_eval_of_another_split_keeps_the_held_out_metrics(capsys, workspace, tmp_path):
    err = _error(capsys, ["eval", str(workspace), "--split", "tset", "--device", "cpu"])
    assert "--split tset: the workspace has no such views; it has train, test" in err, err
    trained = workspace / "metrics.json"  # as a GPU run leaves it: eval on a CPU keeps that
    recorded = json.loads(trained.read_text()) if trained.is_file() else {}
    trained.write_text(json.dumps(recorded | {"device": "NVIDIA H100 80GB HBM3",
                                              "peak_gpu_mem_mb": 1234.0}))
    assert main(["eval", str(workspace), "--device", "cpu"]) == 0
    held_out = json.loads((workspace / "metrics.json").read_text())
    assert (held_out["device"], held_out["peak_gpu_mem_mb"]) == ("NVIDIA H100 80GB HBM3", 1234.0)
    assert held_out["eval_device"] == "cpu" and held_out["masked"] is False
    assert len(held_out["ssim_per_view"]) == len(held_out["psnr_per_view"]) == 2
    assert held_out["ssim"] == pytest.approx(sum(held_out["ssim_per_view"]) / 2)
    assert main(["eval", str(workspace), "--split", "train", "--device", "cpu"]) == 0
    train = json.loads((workspace / "metrics_train.json").read_text())
    assert json.loads((workspace / "metrics.json").read_text()) == held_out
    assert (train["split"], train["n_views"], held_out["n_test_views"]) == ("train", 4, 2)


@pytest.mark.parametrize("extra, words", [
    (["--steps", "40", "--model", "voxel"], "--steps, --model with --resume"),
    (["--preset", "fast"], "--preset with --resume"),
    (["--holdout", "0"], "--holdout with --resume")])
def test_resume_refuses_options_it_would_ignore(capsys, tmp_path, extra, words):
    err = _error(capsys, ["reconstruct", str(tmp_path), "--out", str(tmp_path / "ws"), "--resume",
                          "--device", "cpu", *extra])
    assert words in err and "a resumed run keeps the settings it started with" in err, err


def test_resume_refuses_another_input(capsys, workspace, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    err = _error(capsys, ["reconstruct", str(other), "--out", str(workspace), "--resume",
                          "--device", "cpu"])
    assert f"is the run of {workspace.parent / 'input'}" in err, err
    assert f"give that input, or a new --out for {other}" in err, err


def test_a_killed_writers_temp_files_are_cleared(tmp_path):
    """SIGKILL leaves `.NAME.XXXXXXXX.part.SUFFIX` files no `except` removes: the next write
    of that file (or any checkpoint) clears them, and nobody else's."""
    stale = tmp_path / ".video.ab12cd34.part.mp4"
    other = tmp_path / ".video2.ab12cd34.part.mp4"
    for p in (stale, other):
        p.write_bytes(b"cut off")
    with atomic_path(tmp_path / "video.mp4") as tmp:
        tmp.write_bytes(b"whole")
    assert not stale.exists() and other.exists()
    assert (tmp_path / "video.mp4").read_bytes() == b"whole"
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / ".step_000040.k3j2h1g0.part.pt").write_bytes(b"cut off")
    save_checkpoint(ckpt, 60, {"step": 60})
    assert sorted(p.name for p in ckpt.iterdir()) == ["step_000060.pt"]


def test_renders_folder_names_never_collide():
    """`eval --renders` writes NAME.png and NAME_gt.png: views whose files would be the same
    file get their index appended, the others keep their names."""
    from voxsplat.recon.eval_renders import render_stems
    stems = render_stems(["cam", "cam_gt", "a/b", "a_b", "x", "sub/y"])
    assert stems == ["cam_0", "cam_gt_1", "a_b_2", "a_b_3", "x", "sub_y"]
    files = [f"{s}{suffix}" for s in stems for suffix in ("", "_gt")]
    assert len(set(files)) == len(files)


def test_export_never_overwrites_the_workspace_state(capsys, workspace):
    before = (workspace / "splats.ply").read_bytes()
    err = _error(capsys, ["export", str(workspace), "--format", "ply", "--out",
                          str(workspace / "splats.ply"), "--sh-degree", "0"])
    assert "is the workspace's own splats.ply" in err, err
    assert (workspace / "splats.ply").read_bytes() == before


@pytest.mark.parametrize("fmt, out", [("ply", "e.ply"), ("splat", "e.splat"), ("spz", "e.spz"),
                                      ("points", "p.ply"), ("mesh", "m.ply"), ("depth", "rgbd")])
def test_a_workspace_without_gaussians_says_so_for_every_format(capsys, tmp_path, fmt, out):
    """Training that pruned every Gaussian: no 0-byte .splat, no traceback from the mesher."""
    import torch
    cfg = SyntheticConfig(width=32, height=24, n_train=2, n_test=0, n_points=50, supersample=1)
    data = write_blender_dataset(make_synthetic_scene(cfg).scene, tmp_path / "input")
    empty = {"means": torch.zeros(0, 3), "quats": torch.zeros(0, 4), "scales": torch.zeros(0, 3),
             "opacities": torch.zeros(0), "sh0": torch.zeros(0, 1, 3), "shN": torch.zeros(0, 0, 3)}
    untrained_workspace(tmp_path / "ws", load_scene(data), data, splats=empty)
    err = _error(capsys, ["export", str(tmp_path / "ws"), "--format", fmt, "--out",
                          str(tmp_path / out), "--device", "cpu"])
    assert "the workspace has no Gaussians" in err, err
    assert not (tmp_path / out).exists()


def test_sh_degree_above_the_workspace_pads_with_zero_bands(workspace, tmp_path):
    """A degree-0 workspace exported with --sh-degree 3 has the 45 f_rest properties that
    Inria's load_ply asserts, all zero: the same colours."""
    from voxsplat.recon.export.ply import read_ply
    assert main(["export", str(workspace), "--format", "ply", "--sh-degree", "3", "--out",
                 str(tmp_path / "d3.ply")]) == 0
    header = (tmp_path / "d3.ply").read_bytes().split(b"end_header")[0].decode()
    assert sum(line.startswith("property float f_rest_") for line in header.splitlines()) == 45
    padded, original = read_ply(tmp_path / "d3.ply"), read_ply(workspace / "splats.ply")
    assert float(padded["shN"].abs().max()) == 0 and original["shN"].shape[1] == 0
    for key in ("means", "sh0", "opacities", "scales", "quats"):
        torch.testing.assert_close(padded[key], original[key], rtol=0, atol=0)


def test_a_killed_folder_writer_leaves_nothing_behind_for_long(workspace, tmp_path):
    """What SIGKILL leaves of a frames folder's temp copy goes at the next write."""
    stale = tmp_path / ".frames.abcd1234"
    stale.mkdir()
    (stale / "frame_00000.png").write_bytes(b"")
    assert main(["render", str(workspace), "--out", str(tmp_path / "frames"), "--frames", "2",
                 "--device", "cpu", "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_a_full_or_read_only_disk_is_one_line_naming_the_output(capsys, workspace, monkeypatch,
                                                                  tmp_path):
    """The machine's errors name the file asked for (not its hidden temp copy) and the fix."""
    import errno
    from voxsplat.recon import workspace as wsp
    from voxsplat.data.atomic import output_of
    assert output_of("/w/.metrics.r1m2jr6g.part.json") == Path("/w/metrics.json")
    assert output_of("/w/.frames.abcd1234/frame_00001.png") == Path("/w/frames")
    assert output_of("/w/plain.ply") == Path("/w/plain.ply")
    for code, words in ((errno.ENOSPC, "no space left on the disk"),
                        (errno.EROFS, "the file system is read-only")):
        def full(path, *args, code=code, **kwargs):
            raise OSError(code, os.strerror(code), str(Path(path).parent / ".metrics.abcd1234.part.json"))
        monkeypatch.setattr(wsp, "write_json", full)
        err = _error(capsys, ["eval", str(workspace), "--device", "cpu"])
        assert f"{workspace / 'metrics.json'}: {words}" in err, err
    from voxsplat.recon import app

    def nameless(*args, **kwargs):  # (a failed write names no file: the --out is named)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(app, "run_export", nameless)
    err = _error(capsys, ["export", str(workspace), "--format", "ply", "--out", str(tmp_path / "e.ply")])
    assert f"{tmp_path / 'e.ply'}: no space left on the disk" in err, err


@pytest.mark.parametrize("damage, words", [
    (b"\x89\xfe\x00garbage", "not a text file"),
    (b"{}", "not a workspace record (no config, images, input)")])
def test_a_damaged_scene_json_is_one_line_for_every_command(capsys, workspace, tmp_path, damage,
                                                            words):
    """No UnicodeDecodeError or KeyError traceback, and no export in the wrong frame."""
    import shutil
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    (ws / "scene.json").write_bytes(damage)
    for argv in (["eval", str(ws)], ["render", str(ws), "--out", str(tmp_path / "v"), "--frames", "2"],
                 ["export", str(ws), "--format", "splat", "--out", str(tmp_path / "e.splat")]):
        assert words in _error(capsys, argv + ["--device", "cpu"])
    assert not (tmp_path / "e.splat").exists()


def test_a_damaged_sky_and_missing_splats_say_what_to_do(capsys, workspace, tmp_path):
    import shutil
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    (ws / "sky.pt").write_bytes(b"\x00" * 3000)
    assert "sky.pt: cannot read the learned sky" in _error(capsys, ["eval", str(ws), "--device", "cpu"])
    (ws / "sky.pt").unlink()
    (ws / "splats.ply").unlink()  # a run stopped before its first checkpoint: no --resume
    err = _error(capsys, ["eval", str(ws), "--device", "cpu"])
    assert "(it saved no checkpoint to resume from)" in err and "--resume" not in err, err
    save_checkpoint(ws / "checkpoints", 10, {"step": 10})
    assert f"--out {ws}` --resume" in _error(capsys, ["eval", str(ws), "--device", "cpu"])


def test_the_interrupt_hint_does_not_resume_an_earlier_run(tmp_path):
    """Ctrl-C while a fresh run into a finished workspace loads its input: the checkpoints
    there are the earlier run's, and --resume would finish that run instead."""
    import time
    from voxsplat.recon.app import interrupted_hint
    save_checkpoint(tmp_path / "checkpoints", 30, {"step": 30})
    assert interrupted_hint(tmp_path, True) == "continue with `--resume`"
    assert "--resume" not in interrupted_hint(tmp_path, True, since=time.time() + 1)


@pytest.mark.parametrize("argv, words", [(["--downscale", "0"], "--downscale 0: give a factor in (0, 1]"),
                                         (["--preset", "bogus"], "choose one of auto, dense")])
def test_reconstruct_options_are_checked_in_cli_terms_before_any_work(capsys, tmp_path, argv, words):
    err = _error(capsys, ["reconstruct", str(tmp_path), "--out", str(tmp_path / "ws"),
                          "--device", "cpu", *argv])
    assert words in err, err
    assert not (tmp_path / "ws").exists()


def test_render_depth_never_pairs_with_an_older_video(capsys, workspace, tmp_path, monkeypatch):
    """A run killed while writing the depth frames leaves the new colour frames and no depth
    ones, not the earlier run's depth beside them."""
    import voxsplat.recon.render_video as render_video
    out = tmp_path / "frames"
    argv = ["render", str(workspace), "--out", str(out), "--frames", "2", "--depth",
            "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    assert len(list((tmp_path / "frames_depth").glob("*.png"))) == 2
    colour = (out / "frame_00000.png").stat().st_mtime_ns

    def killed(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(render_video, "depth_to_rgb", killed)
    assert main(argv) != 0
    assert (out / "frame_00000.png").stat().st_mtime_ns != colour  # the new colour frames
    assert not (tmp_path / "frames_depth").exists()
    monkeypatch.undo()
    assert main(argv) == 0 and (tmp_path / "frames_depth").is_dir()
    capsys.readouterr()
    assert main(argv[:-4] + argv[-3:]) == 0  # without --depth: the earlier depth is named
    assert f"{tmp_path / 'frames_depth'} is an earlier render's depth" in capsys.readouterr().err


@pytest.mark.parametrize("fmt, out, option", [("ply", "e.ply", ["--faces", "2"]),
                                              ("splat", "e.splat", ["--voxel-size", "-1"]),
                                              ("points", "p.ply", ["--closed"]),
                                              ("depth", "rgbd", ["--mesher", "poisson"]),
                                              ("spz", "e.spz", ["--device", "gpu"])])
def test_geometry_options_of_other_formats_are_refused(capsys, workspace, tmp_path, fmt, out,
                                                        option):
    """--faces, --mesher and --closed (meshes) and --voxel-size (meshes, points) were taken
    and ignored by the formats they do not apply to, invalid values included."""
    err = _error(capsys, ["export", str(workspace), "--format", fmt, "--out", str(tmp_path / out),
                          *option])
    if option[0] == "--device":  # (taken by every format, but not a typo)
        assert "unknown device 'gpu'; use cpu, cuda (or cuda:N) or auto" in err, err
    else:
        assert f"{option[0]} is for --format mesh" in err and f"not {fmt}" in err, err
    assert not (tmp_path / out).exists()
