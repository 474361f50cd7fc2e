"""Structure-from-motion (pycolmap): poses of a rendered textured scene, the workspace it
leaves and input handling (video, COLMAP folders). Failures' messages: `test_sfm_errors.py`;
the photos' staging, camera groups and settings: `test_sfm_inputs.py`.

The test scene (`sfm_scene.py`) is the inside corner of a box whose three walls carry
multi-scale noise textures (SIFT needs texture), rendered by exact ray casting from cameras on
an arc. Resuming an interrupted run: `test_sfm_resume.py`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from voxsplat.data.errors import VoxsplatError
from voxsplat.data.load import load_scene
from voxsplat.recon.sfm import SfmConfig, load_or_run_sfm, run_sfm
from voxsplat.recon.sfm import colmap_steps as sfm_steps
from voxsplat.recon.sfm import run as sfm_run
from voxsplat.recon.sfm.evaluate import pose_errors, relative_pose_errors, umeyama
from sfm_scene import (FAST, H, W, _cast, _leftovers, _look_at, _rectangle_mask, _render, _texture,
                       render_corner)
from testkit import error_message as _message, need_pycolmap, rotation

need_pycolmap()

@pytest.fixture(scope="module")
def corner(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("corner") / "images"
    return folder, render_corner(folder, 8)


@pytest.fixture(scope="module")
def solved(corner, tmp_path_factory):
    """(scene, workspace, progress calls) of one SfM run on the corner scene, matched in
    blocks of 4 images (2 x 2 blocks of pairs). Matching's calls also say whether COLMAP was
    still matching (the log not yet closed): ("matching", done, total, running)."""
    calls, closed = [], []

    def progress(stage, done, total):
        calls.append((stage, done, total) + ((not closed,) if stage == "matching" else ()))

    def close_log(log, *exc):
        if log.log_dir.name == "matching_log":
            closed.append(True)
        return close(log, *exc)

    ws = tmp_path_factory.mktemp("ws")
    close = sfm_steps._ProgressLog.__exit__
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sfm_steps._ProgressLog, "__exit__", close_log)
        patch.setattr(sfm_steps, "MATCH_BLOCK", 4)
        patch.setattr(sfm_steps, "POLL_SECONDS", 0.01)  # (matching takes ~0.25 s)
        scene = run_sfm(corner[0], ws, FAST, progress=progress)
    return scene, ws, calls


def test_registers_every_view_with_accurate_poses(corner, solved):
    scene, _, _ = solved
    assert scene.names == tuple(f"{k:02d}" for k in range(8))
    errors = pose_errors(scene.cameras.cam_from_world.double().numpy(), corner[1])
    assert errors["rot_err_deg"] < 0.5 and errors["center_err_frac"] < 0.01
    K = scene.cameras.Ks[0].double().numpy()
    assert K[0, 0] == pytest.approx(0.9 * W, rel=0.03) and K[0, 0] == pytest.approx(K[1, 1])
    assert scene.points is not None and len(scene.points) > 500
    assert scene.point_colors.shape == scene.points.shape
    assert scene.splits == {"test": (0,), "train": tuple(range(1, 8))}
    radius = scene.cameras.centers.norm(dim=1).max()
    assert float(radius) == pytest.approx(1.0, abs=1e-4)  # normalized


def test_workspace_holds_a_colmap_model_and_report(solved):
    scene, ws, calls = solved
    sfm = ws / "sfm"
    assert _leftovers(ws) == ["sfm"]  # no temporary folders left
    for stem in ("cameras", "images", "points3D"):
        assert (sfm / "sparse" / "0" / f"{stem}.bin").is_file()
    assert len(list((sfm / "images").iterdir())) == 8
    report = json.loads((sfm / "sfm.json").read_text())
    assert report["matcher"] == "exhaustive" and len(report["registered"]) == 8
    assert report["unregistered"] == [] and report["warning"] is None
    reread = load_scene(sfm)  # other tools (and our COLMAP reader) read the model
    assert reread.names == scene.names and len(reread.points) == len(scene.points)
    stages = [c[0] for c in calls]
    assert stages.index("features") < stages.index("matching") < stages.index("mapping")
    assert ("mapping", 8, 8) in calls and ("features", 8, 8) in calls


def test_matching_reports_each_block_of_pairs_as_colmap_starts_it(solved):
    """COLMAP tells Python nothing while it matches; its log names each block of image pairs
    as it starts, and that is read as it is written (not when the stage ends)."""
    matching = [c[1:] for c in solved[2] if c[0] == "matching"]
    assert matching[0][:2] == (0, 1) and matching[-1] == (4, 4, False)  # (start, end)
    blocks = matching[1:-1]
    assert [c[:2] for c in blocks] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert any(running for _, _, running in blocks)


@pytest.mark.parametrize("stage", ["features", "undistortion"])
def test_features_and_undistortion_report_each_image(solved, stage):
    """Undistortion's bar sat at 0 until every image was done, and feature extraction's moved
    by chunks of 8 photos (one COLMAP call each, ~3 s of start-up apiece); COLMAP's log names
    each image, and that moves both image by image."""
    calls = [c[1:] for c in solved[2] if c[0] == stage]
    done = [d for d, _ in calls]
    assert done == sorted(done) and set(done) == set(range(9)), calls
    assert {n for _, n in calls} == {8}


def test_matching_progress_reads_colmaps_log_as_it_grows(tmp_path):
    """Lines are read whole (a line cut mid-write waits for its end), and newer COLMAP's
    "Matching block" reads as pycolmap 4.2's "Processing block"."""
    calls = []
    log = sfm_steps._ProgressLog(tmp_path, lambda *a: calls.append(a))
    log.poll()  # (no file yet)
    path = tmp_path / "colmap.20261207-101010.42"
    with open(path, "w") as f:
        f.write("I1207 pairing.cc:214] Processing block [1/3, 1/3]\nI1207 feature_matching.cc:2")
        f.flush()
        log.poll()
        f.write("18] in 0.2s\nI1207 pairing.cc:214] Processing block [1/3, 2")
        f.flush()
        log.poll()
        f.write("/3]\nI1207 Matching block [3/3, 3/3]\nMatching image [4/12]\n")
    log.poll()
    log._file.close()
    assert calls == [(0, 9), (1, 9), (8, 9), (3, 12)]
    calls.clear()
    log = sfm_steps._ProgressLog(tmp_path, lambda *a: calls.append(a), sfm_steps._UNDISTORTING, 25)
    log.poll()
    assert log.total == 25 and calls == []  # (the matching lines are not undistortion's)
    with open(path, "a") as f:
        f.write("I1207 undistorters.cc:208] Undistorting image [1/25]\n"
                "I1207 undistorters.cc:208] Undistorting image [7/25]\n")
    log.poll()
    log._file.close()
    assert calls == [(0, 25), (6, 25)]


def test_load_or_run_reuses_a_finished_run_and_reads_colmap_folders(corner, solved, monkeypatch):
    scene, ws, _ = solved
    monkeypatch.setattr(sfm_run, "run_sfm", lambda *a, **k: pytest.fail("SfM ran again"))
    again = load_or_run_sfm(corner[0], ws, FAST, progress=False)
    assert again.names == scene.names
    colmap = load_or_run_sfm(ws / "sfm", ws / "other", FAST, progress=False)
    assert np.allclose(colmap.cameras.cam_from_world.numpy(), scene.cameras.cam_from_world.numpy(),
                       atol=1e-5)


def _posed_copy(corner, solved, tmp_path) -> tuple[Path, Path, dict]:
    """(photos, workspace, its SfM report): copies of the corner's photos and of the solved
    run's sfm/, its report pointing at the copied photos, so that the copy is current."""
    photos, ws = tmp_path / "photos", tmp_path / "ws"
    shutil.copytree(corner[0], photos)  # (copy2: the same times)
    shutil.copytree(solved[1] / "sfm", ws / "sfm")
    report = json.loads((ws / "sfm" / "sfm.json").read_text())
    report.update(source=str(photos.resolve()), source_stamp=sfm_run._stamp(photos))
    (ws / "sfm" / "sfm.json").write_text(json.dumps(report))
    return photos, ws, report


def test_a_photo_replaced_under_its_name_poses_again(corner, solved, tmp_path, monkeypatch,
                                                   capsys):
    """A finished run is reused only for the same photos: one replaced (or edited) under its
    own name is posed again, and a resumed training run on it is refused; the reuse says so."""
    from voxsplat.recon.app import _check_same_photos
    from voxsplat.recon.sfm import is_current
    photos, ws2, _ = _posed_copy(corner, solved, tmp_path)
    assert is_current(ws2, photos, FAST)
    load_or_run_sfm(photos, ws2, FAST, progress=True)
    assert f"sfm: reusing the poses in {ws2 / 'sfm'}" in capsys.readouterr().out
    first, second = sorted(photos.iterdir())[:2]
    second.write_bytes(first.read_bytes())  # another photo under the same name
    assert not is_current(ws2, photos, FAST)
    with pytest.raises(VoxsplatError, match="its photos changed .* start over without --resume"):
        _check_same_photos(photos, ws2, FAST)

    class Ran(Exception):
        pass

    def run(*a, **k):
        raise Ran
    monkeypatch.setattr(sfm_run, "run_sfm", run)
    with pytest.raises(Ran):
        load_or_run_sfm(photos, ws2, FAST, progress=False)


def test_exports_land_in_the_sfm_models_frame(solved, tmp_path):
    """The scene trains in a normalized frame (cameras within radius 1); `export` writes the
    Gaussians back in the frame of the model in ws/sfm/sparse/0, where they sit on its points."""
    import pycolmap
    from voxsplat.recon import workspace as wsp
    from voxsplat.recon.config import TrainConfig
    from voxsplat.recon.export import read_ply, write_ply
    from voxsplat.recon.gaussians import splats_from_points
    from voxsplat.scripts.cli import main
    scene, ws, _ = solved
    out = tmp_path / "ws"
    out.mkdir()
    splats = splats_from_points(scene.points, scene.point_colors, 1, 0.9)
    write_ply(out / wsp.SPLATS_PLY, {k: v.detach() for k, v in splats.items()})
    wsp.write_json(out / wsp.SCENE_JSON, wsp.scene_record(scene, {"kind": "path"}, TrainConfig().to_dict()))
    assert main(["export", str(out), "--format", "ply", "--out", str(tmp_path / "s.ply"), "--quiet"]) == 0
    model = pycolmap.Reconstruction(str(ws / "sfm" / "sparse" / "0"))
    points = np.stack([p.xyz for p in model.points3D.values()])
    means = read_ply(tmp_path / "s.ply")["means"].double().numpy()
    extent = np.linalg.norm(points.max(0) - points.min(0))
    assert len(means) == len(points)
    assert np.allclose(np.sort(means, 0), np.sort(points, 0), atol=1e-5 * extent)
    assert not np.allclose(np.sort(scene.points.double().numpy(), 0), np.sort(points, 0),
                           atol=1e-2 * extent)  # the scene frame is another one


def test_the_reconstruction_a_stopped_rerun_set_aside_reloads_its_photos(corner, solved, tmp_path):
    """A fresh rerun stopped part-way leaves the finished reconstruction in OUT/previous/, with
    no sfm/ of its own: eval and the meshes reload its photos from OUT's SfM run while that is
    still the run it was trained on, and say why not once the rerun replaced it."""
    from voxsplat.recon import workspace as wsp
    from voxsplat.recon.app import load_workspace_scene
    from voxsplat.recon.config import TrainConfig
    from voxsplat.recon.out_folder import previous_sfm_home, set_aside_outputs, sfm_report
    scene, ws, _ = solved
    photos, out, report = _posed_copy(corner, solved, tmp_path)
    wsp.write_json(out / wsp.SCENE_JSON, wsp.scene_record(
        scene, {"kind": "path", "path": str(photos.resolve())}, TrainConfig().to_dict()))
    (out / wsp.SPLATS_PLY).write_bytes(b"ply")
    set_aside_outputs(out, sfm_report(out))
    previous = out / "previous"
    assert not (previous / "sfm").exists() and previous_sfm_home(previous) == out
    again, _ = load_workspace_scene(previous)
    assert again.names == scene.names and len(again.images) == len(scene.images)
    assert previous_sfm_home(out) == out and previous_sfm_home(ws) == ws
    report["config"]["max_num_features"] = 2048  # the rerun posed the photos anew
    (out / "sfm" / "sfm.json").write_text(json.dumps(report))
    with pytest.raises(VoxsplatError, match="was replaced in .*sfm by the run stopped since") as e:
        load_workspace_scene(previous)
    assert "--resume" in str(e.value)


def test_a_reconstruction_beside_another_sfm_run_is_not_reloaded_with_its_poses(corner, solved,
                                                                                 tmp_path):
    """A rerun with other SfM settings that stops after its SfM, before it sets the finished
    reconstruction aside, leaves that one in OUT beside another SfM run of the same photos:
    eval and the meshes reloaded them with that run's poses, and measured the Gaussians on
    the wrong views. The reload compares the poses with those the Gaussians were trained on."""
    from dataclasses import replace
    from voxsplat.recon import workspace as wsp
    from voxsplat.recon.app import load_workspace_scene
    from voxsplat.recon.config import TrainConfig
    scene, _, _ = solved
    photos, out, _ = _posed_copy(corner, solved, tmp_path)
    spec = {"kind": "path", "path": str(photos.resolve())}
    wsp.write_json(out / wsp.SCENE_JSON, wsp.scene_record(scene, spec, TrainConfig().to_dict()))
    again, _ = load_workspace_scene(out)  # the SfM run it was trained on
    assert again.names == scene.names
    poses = scene.cameras.cam_from_world.clone()
    poses[-1, :3, 3] += 0.01  # one view posed 1% of the scene's size away by the other run
    other = replace(scene, cameras=replace(scene.cameras, cam_from_world=poses))
    wsp.write_json(out / wsp.SCENE_JSON, wsp.scene_record(other, spec, TrainConfig().to_dict()))
    with pytest.raises(VoxsplatError, match="other names, sizes or poses than .* trained on: the "
                                            "structure-from-motion run .* run it again"):
        load_workspace_scene(out)


def test_a_resumed_run_keeps_its_sfm_settings(solved):
    from voxsplat.recon.app import _resumed_sfm
    from voxsplat.recon.sfm import recorded_config
    _, ws, _ = solved
    assert recorded_config(ws) == FAST
    assert _resumed_sfm(ws, SfmConfig()) == FAST  # the CLI's defaults: the recorded settings
    with pytest.raises(VoxsplatError, match="keeps the SfM settings"):
        _resumed_sfm(ws, SfmConfig(video_frames=40))
    assert recorded_config(ws / "nowhere") is None


def test_two_photos_pose_through_the_points_only_they_see(corner, tmp_path, monkeypatch):
    """Two photos share only two-view tracks, which COLMAP's triangulator ignores ("bad
    initial pair" for any thresholds): mapping again with them kept poses both, where the
    model has enough points (`TWO_VIEW_MIN_POINTS`). Their focal
    length is weakly determined without EXIF (262 px for 230 here; other pairs of the 8
    views 229-275), so the relative rotation is good to a few degrees (1.7 for 15 degrees)."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("01.png", "03.png"):
        shutil.copy(corner[0] / name, images / name)
    scene = run_sfm(images, tmp_path / "ws", FAST, progress=False)
    report = json.loads((tmp_path / "ws" / "sfm" / "sfm.json").read_text())
    assert scene.names == ("01", "03") and report["two_view_tracks"] is True
    errors = relative_pose_errors(scene.cameras.cam_from_world.double().numpy(), corner[1][[1, 3]])
    assert errors["rel_rot_err_deg"] < 3.0 and errors["rel_dir_err_deg"] < 5.0, errors
    assert scene.points is not None and len(scene.points) > 100
    # a two-view model with fewer points than TWO_VIEW_MIN_POINTS is not trusted
    monkeypatch.setattr(sfm_run, "TWO_VIEW_MIN_POINTS", len(scene.points) + 1)
    message = _message(run_sfm, images, tmp_path / "ws2", FAST, progress=False)
    assert "but none could start a model" in message and not (tmp_path / "ws2").exists()


def test_two_photos_keep_their_exif_focal_length(corner, tmp_path):
    """Two photos hardly fix a focal length (without EXIF, 262 px for the true 230 here):
    with an EXIF focal length the two-view model keeps it, and their relative pose is good
    to a degree (refined from EXIF instead: 261 px and 1.6 degrees)."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("01.png", "03.png"):
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Acme", "Cam"  # make, model
        exif.get_ifd(0x8769)[0xA405] = 32  # 35 mm equivalent: 32 x 320 px / 43.27 mm = 237 px
        Image.open(corner[0] / name).save(images / name, exif=exif)
    scene = run_sfm(images, tmp_path / "ws", FAST, progress=False)
    assert json.loads((tmp_path / "ws" / "sfm" / "sfm.json").read_text())["two_view_tracks"]
    assert float(scene.cameras.Ks[0, 0, 0]) == pytest.approx(0.9 * W, rel=0.04)
    errors = relative_pose_errors(scene.cameras.cam_from_world.double().numpy(), corner[1][[1, 3]])
    assert errors["rel_rot_err_deg"] < 1.0 and errors["rel_dir_err_deg"] < 1.0, errors


def test_six_wide_baseline_photos_register_with_guided_matching(shared_data):
    """DTU scan24, 6 photos at 400x300 (the 3-view protocol's and a neighbour of each; 12-17
    degrees from the nearest other, 80 degrees end to end): every photo registers, within 3
    degrees and 1% of the extent of the scene's given poses. Without guided matching 2 of the 6 register (pycolmap 4.2.1, seeds
    0-2; bench/results/sfm_fewview.json), below the 60% SfM needs: the default (`auto`)
    matches them again with guidance, and the report says so."""
    from voxsplat.recon.sfm.bench_fewview import run_set
    if not (shared_data / "dtu_scan24_400x300").is_dir():
        pytest.skip("dtu_scan24_400x300 not in the shared data")
    result = run_set("dtu24_6", shared_data, SfmConfig())
    assert result["registered"] == 6 and result["guided"] == "retry", result
    assert result["rot_err_deg"] < 3.0 and result["center_err_frac"] < 0.01, result
    # one PINHOLE camera: the first pass registers 4 of 6 (enough to go on), the second all
    result = run_set("dtu24_6", shared_data, SfmConfig(camera_model="PINHOLE"))
    assert result["registered"] == 6 and result["guided"] == "retry", result


def test_video_input_samples_frames_then_runs_sequential_sfm(tmp_path, monkeypatch):
    from voxsplat.render.video import write_video
    frames = tmp_path / "render"
    render_corner(frames, 12)
    video = tmp_path / "walk.mp4"
    write_video(video, [np.asarray(Image.open(p)) for p in sorted(frames.iterdir())], fps=6)
    seen = {}

    def fake_run_sfm(image_dir, out_dir, config, progress, **kwargs):
        seen.update(image_dir=Path(image_dir), **kwargs)
        return "scene"

    monkeypatch.setattr(sfm_run, "run_sfm", fake_run_sfm)
    config = replace(FAST, video_frames=6)
    assert load_or_run_sfm(video, tmp_path / "ws", config, progress=False) == "scene"
    assert seen["image_dir"] == tmp_path / "ws" / "frames" and seen["from_video"] is True
    assert len(list(seen["image_dir"].glob("frame_*.jpg"))) == 6
    assert seen["source"] == video
    # a rerun writes the same frames, byte for byte, so an interrupted SfM on them goes on
    # from its features and matches (`sfm.resume` keys on the photos' bytes)
    first = {p.name: p.read_bytes() for p in seen["image_dir"].iterdir()}
    load_or_run_sfm(video, tmp_path / "ws", config, progress=False)
    assert {p.name: p.read_bytes() for p in seen["image_dir"].iterdir()} == first


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(10, 3))
    angle = 0.7
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    dst = 2.5 * src @ R.T + [1.0, -2.0, 0.5]
    scale, R_est, t = umeyama(src, dst)
    assert scale == pytest.approx(2.5) and np.allclose(R_est, R) and np.allclose(t, [1, -2, 0.5])


def test_relative_pose_errors_ignore_the_frame_and_scale():
    """Two cameras in another frame and scale: no error; the second camera turned 2 degrees
    about its own axis: 2 degrees of relative rotation, the baseline's direction unchanged."""
    gt = np.stack([_look_at(np.array([3.0, 0.0, 1.0]), np.zeros(3)),
                   _look_at(np.array([2.0, 2.0, 1.5]), np.zeros(3))])
    world = np.eye(4)
    world[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    world[:3, 3] = [5.0, -1.0, 2.0]
    moved = gt @ np.linalg.inv(world)
    moved[:, :3, 3] *= 3.0  # a similarity with scale 3: t scales with the world
    errors = relative_pose_errors(moved, gt)
    assert errors["rel_rot_err_deg"] < 1e-6 and errors["rel_dir_err_deg"] < 1e-6
    turned = moved.copy()
    centre = -turned[1, :3, :3].T @ turned[1, :3, 3]
    turned[1, :3, :3] = rotation((0.0, 0.0, 1.0), 2.0).numpy() @ turned[1, :3, :3]
    turned[1, :3, 3] = -turned[1, :3, :3] @ centre  # the same centre
    errors = relative_pose_errors(turned, gt)
    assert errors["rel_rot_err_deg"] == pytest.approx(2.0) and errors["rel_dir_err_deg"] < 1e-6


@pytest.mark.slow
def test_strecha_fountain_poses_match_ground_truth(shared_data, tmp_path):
    """Strecha SfM protocol: all 11 views, <= 0.5 deg and <= 1% of the extent, < 3 minutes.

    On a machine busy with other work (load average above the core count) the time limit
    applies to this process's CPU time over 2 cores instead of the wall time.
    """
    import os
    import resource
    import time
    from voxsplat.recon.sfm.bench import read_strecha_camera
    folder = shared_data / "strecha_fountain_p11_half"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    scene = load_or_run_sfm(folder / "images", tmp_path, SfmConfig(), progress=False)
    seconds, cpu1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        seconds = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / 2
    assert len(scene) == 11
    gt = np.stack([read_strecha_camera(folder / "gt_dense_cameras" / f"{name}.jpg.camera")
                   for name in scene.names])
    errors = pose_errors(scene.cameras.cam_from_world.double().numpy(), gt)
    assert errors["rot_err_deg"] <= 0.5 and errors["center_err_frac"] <= 0.01, errors
    assert seconds < 180, f"SfM took {seconds:.0f} s"


def test_undistorted_photos_keep_their_colour_profile(tmp_path):
    """Training reads SfM's undistorted copies, not the photos: `read_image` converts them to
    sRGB by their colour profile (an iPhone's Display P3) only if COLMAP's undistorter keeps
    it, as pycolmap 4 does."""
    import pycolmap
    from PIL import ImageCms
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (tmp_path / "photos").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)).save(
        tmp_path / "photos" / "a.jpg", icc_profile=profile, quality=95)
    model = pycolmap.Reconstruction()
    camera = pycolmap.Camera(model="SIMPLE_RADIAL", width=80, height=60, params=[70, 40, 30, 0.05])
    camera.camera_id = 1
    model.add_camera_with_trivial_rig(camera)
    model.add_image_with_trivial_frame(pycolmap.Image(name="a.jpg", camera_id=1, image_id=1),
                                       pycolmap.Rigid3d())
    (tmp_path / "model").mkdir()
    model.write(str(tmp_path / "model"))
    pycolmap.undistort_images(str(tmp_path / "out"), str(tmp_path / "model"), str(tmp_path / "photos"))
    with Image.open(tmp_path / "out" / "images" / "a.jpg") as undistorted:
        assert undistorted.size != (80, 60)  # (resampled, not copied)
        assert undistorted.info.get("icc_profile") == profile


@pytest.mark.parametrize("model, distortion", [("OPENCV", [0.9 * W, -0.2, 0.05, 0.0, 0.0]),
                                               ("SIMPLE_FISHEYE", [0.9 * W]),
                                               ("OPENCV_FISHEYE", [0.9 * W, 0.0, 0.0, 0.0, 0.0])],
                         ids=["opencv", "simple-fisheye", "fisheye-k0"])
def test_a_colmap_scene_with_lens_distortion_is_undistorted_into_the_workspace(
        tmp_path, model, distortion):
    """A COLMAP project whose OPENCV camera has strong barrel distortion (what COLMAP's GUI
    leaves before undistortion), or whose fisheye has no distortion coefficients (the
    equidistant projection, which COLMAP's undistorter would copy as it is): reading it
    directly says so, and `reconstruct`'s loader undistorts it with pycolmap into ws/sfm/, in
    the model's own frame, masks included; the undistorted photos are the pinhole views of the
    same scene. `voxsplat poses` does the same (and still refuses a project that is already
    pinhole)."""
    import pycolmap
    from voxsplat.data.readers.colmap import DistortedCameraError
    from voxsplat.recon.app import load_input, run_poses
    from voxsplat.render.metrics import psnr
    rng = np.random.default_rng(0)
    textures = [_texture(rng) for _ in range(3)]
    f, extra = distortion[0], distortion[1:]
    focal = [f] if model.startswith("SIMPLE") else [f, f]
    camera = pycolmap.Camera(model=model, width=W, height=H,
                             params=focal + [W / 2, H / 2] + extra)
    v, u = np.mgrid[0:H, 0:W] + 0.5
    rays = camera.cam_from_img(np.stack([u.ravel(), v.ravel()], -1).astype(np.float64))
    rays = np.concatenate([rays, np.ones((len(rays), 1))], -1)
    root = tmp_path / "project"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "sparse" / "0").mkdir(parents=True)
    lines, poses = [], []
    for k, azimuth in enumerate(np.radians(np.linspace(20, 70, 4))):
        eye = 5.0 * np.array([np.cos(azimuth) * 0.85, np.sin(azimuth) * 0.85, 0.53])
        pose = _look_at(eye, np.array([-0.5, -0.5, 0.5]))
        poses.append(pose)
        Image.fromarray(_cast(pose, rays, textures).reshape(H, W, 3)).save(root / "images" / f"{k}.png")
        Image.fromarray(_rectangle_mask(k).astype(np.uint8) * 255).save(root / "masks" / f"{k}.png")
        q = pycolmap.Rotation3d(pose[:3, :3]).quat  # x, y, z, w
        lines.append(f"{k + 1} {q[3]} {q[0]} {q[1]} {q[2]} {' '.join(map(str, pose[:3, 3]))} 1 {k}.png\n\n")
    (root / "sparse" / "0" / "cameras.txt").write_text(
        f"1 {model} {W} {H} {' '.join(map(str, camera.params))}\n")
    (root / "sparse" / "0" / "images.txt").write_text("".join(lines))
    (root / "sparse" / "0" / "points3D.txt").write_text("")
    assert "voxsplat reconstruct` undistorts" in _message(load_scene, root)
    with pytest.raises(DistortedCameraError):
        load_scene(root)
    ws = tmp_path / "ws"
    scene = load_input(root, ws, progress=False)
    assert (ws / "sfm" / "sfm.json").is_file() and scene.masks is not None
    report = (ws / "sfm" / "sfm.json").stat().st_mtime_ns
    for i in range(len(scene)):
        np.testing.assert_allclose(scene.cameras.cam_from_world[i].double().numpy(),
                                   poses[int(scene.names[i])], atol=1e-5)  # the model's frame
        K, size = scene.cameras.Ks[i].double().numpy(), scene.cameras.size(i)
        pinhole = torch.from_numpy(_render(poses[int(scene.names[i])], K, textures, size))
        inner = (slice(8, -8), slice(8, -8))  # away from the undistorter's resampled border
        quality = psnr(scene.images[i][inner].float() / 255, pinhole[inner].float() / 255)
        assert float(quality) > 27.0, (scene.names[i], float(quality))  # measured 30.5-30.8
        straight = torch.from_numpy(np.array(Image.open(root / "images" / f"{scene.names[i]}.png")
                                               .resize(size)))
        assert float(psnr(straight[inner].float() / 255, pinhole[inner].float() / 255)) < 22.0  # 19.8
        assert scene.masks[i].shape == scene.images[i].shape[:2]
    assert load_input(root, ws, progress=False).names == scene.names
    assert (ws / "sfm" / "sfm.json").stat().st_mtime_ns == report  # reused
    from voxsplat.scripts.cli import main
    assert main(["poses", str(root), "--out", str(tmp_path / "p"), "--quiet"]) == 0
    undistorted = pycolmap.Reconstruction(str(tmp_path / "p" / "sfm" / "sparse" / "0"))
    assert {c.model_name for c in undistorted.cameras.values()} == {"PINHOLE"}
    assert "already has poses" in _message(run_poses, ws / "sfm", tmp_path / "q")
    # what is not a scene says what it is, not "already has poses"
    (tmp_path / "empty").mkdir()
    (tmp_path / "nested" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "nested" / "a" / "x.png")
    for path, words in (("nowhere", "no such file or folder; check the path"),
                        ("empty", "empty folder"), ("nested", "only in its sub-folders a/")):
        message = _message(run_poses, tmp_path / path, tmp_path / "q")
        assert words in message and "already has poses" not in message, message
