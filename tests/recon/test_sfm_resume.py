"""An interrupted structure-from-motion run goes on from its features and matches
(`recon/sfm/resume.py`), and the CLI says which command to run after an interrupt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sfm_scene import FAST, _leftovers, render_corner
from voxsplat.recon.sfm import run as sfm_run
from voxsplat.recon.sfm import run_sfm
from voxsplat.recon.sfm.evaluate import pose_errors
from testkit import need_pycolmap

need_pycolmap()


@pytest.fixture(scope="module")
def corner(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corner") / "images"
    return folder, render_corner(folder, 8)


def _interrupt(stage: str, after: int):
    """A progress callback that stops the run as Ctrl-C would, once `stage` has `after` done."""
    def progress(s, done, total):
        if s == stage and done >= after:
            raise KeyboardInterrupt
    return progress


def _spy_on_resumed_work(monkeypatch) -> dict:
    """Record how many images had features before extraction and how many pairs were
    verified before matching (what a resumed run did not have to compute again)."""
    import contextlib
    import pycolmap
    seen = {}
    extract, match = sfm_run.steps.extract_features, sfm_run.steps.match_features

    def spy_extract(database, *a, **k):
        if "images_before" not in seen:
            seen["images_before"] = 0
            if Path(database).exists():
                with contextlib.closing(pycolmap.Database.open(database)) as db:
                    seen["images_before"] = len(db.read_all_images())
        return extract(database, *a, **k)

    def spy_match(database, *a, **k):
        seen["pairs_before"] = len(sfm_run.steps.verified_pair_inliers(database))
        return match(database, *a, **k)
    monkeypatch.setattr(sfm_run.steps, "extract_features", spy_extract)
    monkeypatch.setattr(sfm_run.steps, "match_features", spy_match)
    return seen


def test_an_interrupted_run_goes_on_from_its_features_and_matches(corner, tmp_path, monkeypatch,
                                                                   capsys):
    """Stopped during mapping, a run keeps its COLMAP database (and nothing else) in its hidden
    folder; the same command then starts with every pair matched and ends as a fresh run,
    leaving only sfm/. Other settings do not take the database and remove it."""
    ws = tmp_path / "ws"
    with pytest.raises(KeyboardInterrupt):
        run_sfm(corner[0], ws, FAST, progress=_interrupt("mapping", 0))
    kept = _leftovers(ws)
    assert len(kept) == 1 and kept[0].startswith(".sfm.")
    assert _leftovers(ws / kept[0]) == ["database.db", "resume.json"]
    assert f"kept in {ws / kept[0]}" in capsys.readouterr().err
    seen = _spy_on_resumed_work(monkeypatch)
    scene = run_sfm(corner[0], ws, FAST, progress=False)
    assert seen == {"images_before": 8, "pairs_before": 28}  # all 8 x 7 / 2 pairs verified
    assert _leftovers(ws) == ["sfm"] and len(scene.names) == 8
    errors = pose_errors(scene.cameras.cam_from_world.double().numpy(), corner[1])
    assert errors["rot_err_deg"] < 0.5 and errors["center_err_frac"] < 0.01

    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt):
        run_sfm(corner[0], other, FAST, progress=_interrupt("mapping", 0))
    seen.clear()
    run_sfm(corner[0], other, replace(FAST, max_num_features=900), progress=False)
    assert seen == {"images_before": 0, "pairs_before": 0}
    assert _leftovers(other) == ["sfm"]


def test_the_cli_says_how_to_go_on_after_an_interrupt(corner, tmp_path, monkeypatch, capsys):
    """`voxsplat poses` (and `reconstruct`) stopped during SfM: the message names the same
    command, not `--resume` (no workspace exists yet), and the same command then finishes.
    Stopped after SfM and the depth stage, before a checkpoint: the same command, which
    reuses them."""
    from voxsplat.scripts.cli import main
    real = sfm_run.steps.map_incremental

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(sfm_run.steps, "map_incremental", stop)
    ws = tmp_path / "ws"
    for command in ("poses", "reconstruct"):
        assert main([command, str(corner[0]), "--out", str(ws), "--quiet"]) == 130
        err = capsys.readouterr().err
        assert ("voxsplat: interrupted; run the same command again: structure-from-motion goes "
                "on from the features and matches it kept") in err, err
    monkeypatch.setattr(sfm_run.steps, "map_incremental", real)
    seen = _spy_on_resumed_work(monkeypatch)
    assert main(["poses", str(corner[0]), "--out", str(ws), "--quiet"]) == 0
    assert seen["pairs_before"] == 28 and _leftovers(ws) == ["sfm"]
    # stopped in training before its first checkpoint: the finished stages are reused
    from voxsplat.recon import engine
    monkeypatch.setattr(engine.Trainer, "_step", stop)
    assert main(["reconstruct", str(corner[0]), "--out", str(ws), "--quiet", "--device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert ("voxsplat: interrupted; run the same command again: it reuses the finished "
            "structure-from-motion and depth maps") in err, err


def test_a_run_stopped_during_extraction_goes_on_from_the_images_done(corner, tmp_path,
                                                                      monkeypatch):
    """A run stopped during feature extraction (as the log reports the third image done)
    keeps the images done, and the next run goes on from them (COLMAP skips images that have
    features). The stop
    lets the images in flight finish, which for these small ones may be all of them."""
    monkeypatch.setattr(sfm_run.steps, "POLL_SECONDS", 0.01)
    ws = tmp_path / "ws"
    with pytest.raises(KeyboardInterrupt):
        run_sfm(corner[0], ws, FAST, progress=_interrupt("features", 3))
    seen = _spy_on_resumed_work(monkeypatch)
    scene = run_sfm(corner[0], ws, FAST, progress=False)
    assert seen["images_before"] >= 3 and seen["pairs_before"] == 0, seen
    assert len(scene.names) == 8 and _leftovers(ws) == ["sfm"]


def test_features_resumed_part_way_through_a_group_keep_one_camera(corner, tmp_path):
    """A run killed part-way through a group's feature extraction (SIGKILL: some of its
    images already in the database) goes on with that group's camera, not a second one."""
    import contextlib
    import pycolmap
    from voxsplat.recon.sfm import colmap_steps as steps
    from voxsplat.recon.sfm.inputs import camera_groups, scan_images, stage_images
    images = scan_images(corner[0])
    stage_images(images, tmp_path / "input")
    database = tmp_path / "database.db"
    (group,) = camera_groups(images, FAST.single_camera)
    steps.extract_features(database, tmp_path / "input", [group[:3]], FAST, lambda n: None)
    done = []
    steps.extract_features(database, tmp_path / "input", [group], FAST, done.append)
    assert done[-1] == 8  # (COLMAP names the skipped images too)
    with contextlib.closing(pycolmap.Database.open(database)) as db:
        assert len(db.read_all_images()) == 8
        assert {image.camera_id for image in db.read_all_images()} == {1}
        assert len(db.read_all_cameras()) == 1


def test_ctrl_c_cancels_a_colmap_stage_in_flight(tmp_path):
    """Ctrl-C waited for the whole COLMAP stage in flight (exhaustive matching of kitchen's 25
    photos: 34 s; of a hundred, minutes). The stage now runs beside the main thread with
    pycolmap's cancellation token, which an interrupt sets; KeyboardInterrupt follows once
    COLMAP has stopped. Results and errors pass through; pycolmap honours the token."""
    import _thread
    import signal
    import threading
    import time
    import pycolmap
    from voxsplat.recon.sfm.colmap_steps import cancellable
    seen = {}

    def stage(cancellation_token):  # as COLMAP: checks the token between chunks of its work
        seen["token"] = cancellation_token
        give_up = time.perf_counter() + 30  # (a failure, not a hang, if no interrupt comes)
        while not cancellation_token.is_cancelled and time.perf_counter() < give_up:
            time.sleep(0.01)
        seen["stopped"] = time.perf_counter()
        raise InterruptedError("Operation cancelled")

    # A process started in the background (`cmd &` in a script) ignores SIGINT, and
    # interrupt_main then does nothing: Python's own handler for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            cancellable(stage)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen["token"].is_cancelled and time.perf_counter() - seen["stopped"] < 1.0

    def poll():  # (the progress callback failing: COLMAP is stopped before the error goes up)
        raise OSError("the log is gone")

    with pytest.raises(OSError, match="log is gone"):
        cancellable(stage, poll=poll)
    assert seen["token"].is_cancelled and time.perf_counter() - seen["stopped"] < 1.0
    assert cancellable(lambda cancellation_token: 7) == 7
    with pytest.raises(ValueError, match="from the stage"):
        cancellable(lambda cancellation_token: int("from the stage"))
    token = pycolmap.CancellationToken()
    token.cancel()
    database = tmp_path / "database.db"
    pycolmap.Database.open(database).close()
    with pytest.raises(InterruptedError):
        pycolmap.match_exhaustive(database, cancellation_token=token, device=pycolmap.Device.cpu)
