"""A fresh `reconstruct` keeps what it must not replace: the input's own folder, another
input's workspace, and files of a workspace's names in a folder that is no workspace."""

import json

import numpy as np
import pytest
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.recon.app import run_reconstruct
from voxsplat.recon.checkpoint import save_checkpoint
from voxsplat.recon.out_folder import (check_fresh_out, clean_outputs, kept_previous,
                                       set_aside_outputs)
from testkit import stop_training_at


def _photos(folder, n=3):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def _workspace(ws, input_path, finished=True):
    ws.mkdir(parents=True)
    (ws / "scene.json").write_text(json.dumps({"input": {"kind": "path",
                                                         "path": str(input_path.resolve())}}))
    if finished:
        (ws / "splats.ply").write_bytes(b"ply")
    return ws


def test_another_inputs_workspace_is_refused_before_any_work(tmp_path):
    a, b = _photos(tmp_path / "a"), _photos(tmp_path / "b")
    ws = _workspace(tmp_path / "ws", a)
    with pytest.raises(VoxsplatError, match="another input") as e:
        run_reconstruct(b, ws, progress=False)
    assert str(a.resolve()) in str(e.value) and "choose another --out" in str(e.value)
    assert (ws / "splats.ply").read_bytes() == b"ply"  # untouched
    assert not (ws / "sfm").exists()  # refused before SfM ran


def test_same_input_is_replaced_with_a_note(tmp_path):
    a = _photos(tmp_path / "a")
    ws = _workspace(tmp_path / "ws", a)
    assert "replacing" in check_fresh_out(ws, a)
    (ws / "splats.ply").unlink()
    assert check_fresh_out(ws, a) is None  # scene.json alone: a run that stopped at its start
    save_checkpoint(ws / "checkpoints", 100, {})
    assert "--resume" in check_fresh_out(ws, a)  # an unfinished run's checkpoints
    assert check_fresh_out(tmp_path / "new", a) is None  # a folder still to make
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(VoxsplatError, match="is a file; a workspace is a folder"):
        check_fresh_out(tmp_path / "notes.txt", a)
    with pytest.raises(VoxsplatError, match=r"notes.txt is a file, so no folder can be made in it"):
        check_fresh_out(tmp_path / "notes.txt" / "ws" / "run1", a)  # (a NotADirectoryError)


@pytest.mark.parametrize("inside", [False, True])
def test_the_inputs_own_folder_is_refused(tmp_path, inside):
    a = _photos(tmp_path / "a")
    (a / "transforms.json").write_text("{}")
    with pytest.raises(VoxsplatError, match="input's own folder"):
        check_fresh_out(a, a / "transforms.json" if inside else a)


def test_a_folder_that_is_no_workspace_keeps_its_files(tmp_path):
    """An RGB-D dataset (`export --format depth`) holds depth/: a run into it would delete it."""
    a, rgbd = _photos(tmp_path / "a"), tmp_path / "rgbd"
    (rgbd / "depth").mkdir(parents=True)
    (rgbd / "depth" / "0.npy").write_bytes(b"")
    with pytest.raises(VoxsplatError, match="not a voxsplat workspace but holds depth"):
        check_fresh_out(rgbd, a)
    (rgbd / "depth" / "0.npy").unlink()
    (rgbd / "depth").rmdir()
    (rgbd / "notes.txt").write_text("mine")  # other files stay beside a workspace
    assert check_fresh_out(rgbd, a) is None


def test_clean_outputs_removes_the_products_only(tmp_path):
    ws = tmp_path / "ws"
    (ws / "depth").mkdir(parents=True)
    (ws / "checkpoints").mkdir()
    for name in ("splats.ply", "splats.splat", "metrics.json", "points.ply", "sky.pt", "scene.json",
                 "depth/a.npy", "checkpoints/step_000001.pt"):
        (ws / name).write_bytes(b"x")
    clean_outputs(ws)
    assert sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*")) == [
        "checkpoints", "checkpoints/step_000001.pt", "scene.json"]


def test_a_finished_runs_products_are_set_aside_whole(tmp_path):
    """A fresh run over a finished one moves its products (and a copy of its scene.json) into
    previous/; without a finished run, partial products go and an earlier previous/ stays."""
    ws = tmp_path / "ws"
    (ws / "depth").mkdir(parents=True)
    for name in ("splats.ply", "splats.splat", "metrics.json", "sky.pt", "scene.json",
                 "depth/a.npy", "metrics_train.json", "metrics_masked.json", "notes.json"):
        (ws / name).write_text(name)
    set_aside_outputs(ws)
    assert sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file()) == [
        "notes.json", "previous/depth/a.npy", "previous/metrics.json",
        "previous/metrics_masked.json", "previous/metrics_train.json", "previous/scene.json",
        "previous/sky.pt", "previous/splats.ply", "previous/splats.splat", "scene.json"]
    assert (ws / "previous" / "splats.ply").read_text() == "splats.ply"
    assert kept_previous(ws) == ws / "previous"
    (ws / "metrics.json").write_text("partial")  # a stopped run's leftover, no splats.ply
    set_aside_outputs(ws)
    assert kept_previous(ws) == ws / "previous"
    assert not (ws / "metrics.json").exists()
    assert (ws / "previous" / "metrics.json").read_text() == "metrics.json"  # kept
    (ws / "splats.ply").write_text("newer")  # a finished run replaces the older previous/
    assert kept_previous(ws) is None
    set_aside_outputs(ws)
    assert sorted(p.name for p in (ws / "previous").iterdir()) == ["scene.json", "splats.ply"]
    assert (ws / "previous" / "splats.ply").read_text() == "newer"
    set_aside_outputs(tmp_path / "fresh")  # (no such folder: nothing to do, nothing made)
    assert kept_previous(tmp_path / "fresh") is None and not (tmp_path / "fresh").exists()


def test_poses_keeps_another_inputs_workspace(tmp_path):
    """`poses` writes only sfm/, yet a workspace of photos reloads them through its sfm/: another
    input's SfM there would break it. A folder holding depth/ is no concern of `poses`."""
    from voxsplat.recon.app import run_poses
    a, b = _photos(tmp_path / "a"), _photos(tmp_path / "b")
    ws = _workspace(tmp_path / "ws", a)
    with pytest.raises(VoxsplatError, match="another input"):
        run_poses(b, ws, progress=False)
    with pytest.raises(VoxsplatError, match="input's own folder"):
        run_poses(b, b, progress=False)
    (tmp_path / "rgbd" / "depth").mkdir(parents=True)
    assert check_fresh_out(tmp_path / "rgbd", a, replaced=()) is None


def test_the_poses_of_another_input_are_kept(tmp_path):
    """`voxsplat poses A --out ws` then `reconstruct B --out ws` would replace A's sfm/ with no
    word: refused, as another input's workspace is; the same input (or its images/) reuses it."""
    a, b = _photos(tmp_path / "a"), _photos(tmp_path / "b")
    (tmp_path / "ps" / "sfm").mkdir(parents=True)
    (tmp_path / "ps" / "sfm" / "sfm.json").write_text(json.dumps({"source": str(a.resolve())}))
    with pytest.raises(VoxsplatError, match=r"holds the poses \(sfm/\) of another input"):
        check_fresh_out(tmp_path / "ps", b)
    with pytest.raises(VoxsplatError, match="another input"):
        check_fresh_out(tmp_path / "ps", b, replaced=())
    assert check_fresh_out(tmp_path / "ps", a) is None
    assert check_fresh_out(tmp_path / "ps", tmp_path / "ps" / "sfm") is None  # its own model


def test_a_folder_of_photos_is_no_workspace(tmp_path):
    """`--out scene/images` would write checkpoints and splats among the photos."""
    a = _photos(tmp_path / "scene" / "images")
    with pytest.raises(VoxsplatError, match=r"holds photos \(0.png, ...\)"):
        check_fresh_out(a, tmp_path / "scene")


def test_a_users_checkpoints_and_sfm_folders_are_not_taken_for_ours(tmp_path):
    """A fresh run deleted any checkpoints/ folder of a non-workspace --out (a user's own
    model_epoch10.pt), and SfM replaced an sfm/ folder it had not written (no sfm.json)."""
    a = _photos(tmp_path / "a")
    out = tmp_path / "myproj"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "model_epoch10.pt").write_text("mine")
    with pytest.raises(VoxsplatError, match=r"holds checkpoints/ \(model_epoch10.pt\) of files "
                                            r"voxsplat did not write"):
        check_fresh_out(out, a)
    assert check_fresh_out(out, a, replaced=()) is None  # `poses` leaves checkpoints/ alone
    (out / "checkpoints" / "model_epoch10.pt").unlink()
    save_checkpoint(out / "checkpoints", 100, {})  # ours (a workspace whose scene.json went)
    assert check_fresh_out(out, a) is None
    (out / "sfm").mkdir()
    (out / "sfm" / "notes.txt").write_text("mine")
    with pytest.raises(VoxsplatError, match=r"holds sfm/ of files voxsplat did not write"):
        check_fresh_out(out, a, replaced=())


def test_demo_refuses_another_inputs_workspace_before_writing_to_it(tmp_path, capsys):
    from voxsplat.scripts.cli import main
    ws = _workspace(tmp_path / "ws", _photos(tmp_path / "a"))
    (ws / "video.mp4").write_text("my video")
    assert main(["demo", "--out", str(ws), "--device", "cpu", "--steps", "5"]) != 0
    assert "holds the reconstruction of another input" in capsys.readouterr().err
    assert (ws / "video.mp4").read_text() == "my video"
    assert sorted(p.name for p in ws.iterdir()) == ["scene.json", "splats.ply", "video.mp4"]


def test_poses_does_not_repose_a_finished_reconstruction(tmp_path):
    """`poses` into a reconstruction's workspace whose photos changed replaced its sfm/; eval
    then reloaded the new poses under the Gaussians of the old ones (30.47 -> 25.96 dB)."""
    from voxsplat.recon.app import run_poses
    a = _photos(tmp_path / "a")
    ws = _workspace(tmp_path / "ws", a)
    (ws / "sfm").mkdir()
    (ws / "sfm" / "sfm.json").write_text(json.dumps({"source": str(a.resolve())}))  # not current
    with pytest.raises(VoxsplatError, match="holds a reconstruction made on the poses of its sfm/"):
        run_poses(a, ws, progress=False)
    assert sorted(p.name for p in (ws / "sfm").iterdir()) == ["sfm.json"]


def test_a_second_run_into_a_workspace_in_use_is_refused(tmp_path, capsys):
    """Two runs into one --out mixed their files (one's config, the other's splats) or crashed
    in SfM; the second is now refused while the first holds the folder."""
    import os
    from voxsplat.recon.workspace import workspace_lock
    from voxsplat.scripts.cli import main
    a = _photos(tmp_path / "a")
    with workspace_lock(tmp_path / "ws"):
        for command in (["poses", str(a)], ["reconstruct", str(a)], ["demo"]):
            assert main([*command, "--out", str(tmp_path / "ws")]) == 2
            assert (f"ws: in use by another voxsplat run (process {os.getpid()}); wait for it to "
                    f"end, or give another --out") in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()
    with workspace_lock(tmp_path / "ws"):  # released when the first run ends
        pass


def test_a_rerun_stopped_part_way_keeps_the_finished_reconstruction(tmp_path, monkeypatch, capsys):
    """A plain rerun deleted the finished run's splats before training: Ctrl-C (or an error)
    then left the workspace with none. They now wait in previous/ until the rerun's own are
    written, and every message of the stopped run points there."""
    from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
    from voxsplat.data.writers import write_blender_dataset
    from voxsplat.recon import engine
    from voxsplat.scripts.cli import main
    cfg = SyntheticConfig(width=32, height=24, n_train=6, n_test=2, n_points=400, supersample=1)
    scene = write_blender_dataset(make_synthetic_scene(cfg).scene, tmp_path / "input")
    ws = tmp_path / "ws"
    argv = ["reconstruct", str(scene), "--out", str(ws), "--device", "cpu", "--steps", "20"]
    assert main([*argv, "--quiet"]) == 0
    assert main(["eval", str(ws), "--device", "cpu", "--split", "train"]) == 0
    first = {name: (ws / name).read_bytes()
             for name in ("splats.ply", "metrics.json", "scene.json", "metrics_train.json")}
    real_step = stop_training_at(monkeypatch, 15)
    capsys.readouterr()
    assert main([*argv, "--set", "seed=1"]) == 130
    captured = capsys.readouterr()
    assert f"replacing its earlier reconstruction of the same input (kept in {ws / 'previous'}" \
        in captured.out
    assert f"the earlier reconstruction stays in {ws / 'previous'}" in captured.err
    assert not (ws / "splats.ply").exists() and kept_previous(ws) == ws / "previous"
    assert not (ws / "metrics_train.json").exists()  # (the old Gaussians' figures)
    for name, data in first.items():
        assert (ws / "previous" / name).read_bytes() == data, name
    again = check_fresh_out(ws, scene)  # a fresh run once more
    assert again.endswith(f"; the last finished one stays in {ws / 'previous'} until this run "
                          f"finishes"), again
    assert main(["eval", str(ws), "--device", "cpu"]) == 2
    assert f"the earlier reconstruction's splats are in {ws / 'previous' / 'splats.ply'}" \
        in capsys.readouterr().err
    monkeypatch.setattr(engine.Trainer, "_step", real_step)
    assert main(["reconstruct", str(scene), "--out", str(ws), "--device", "cpu", "--resume",
                 "--quiet"]) == 0
    assert not (ws / "previous").exists() and (ws / "splats.ply").is_file()
    assert "the earlier reconstruction" not in capsys.readouterr().err
