"""The CLI contract: bad input gives one clear line and leaves no partial output."""

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import save_png, write_blender_dataset
from voxsplat.scripts.cli import main
from testkit import stop_training_at

OUTPUTS = ("splats.ply", "splats.splat", "metrics.json")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = SyntheticConfig(width=48, height=36, n_train=6, n_test=2, n_points=800, supersample=1)
    folder = tmp_path_factory.mktemp("scene")
    return write_blender_dataset(make_synthetic_scene(cfg).scene, folder)


@pytest.fixture
def scene_copy(dataset, tmp_path):
    dst = tmp_path / "input"
    shutil.copytree(dataset, dst)
    return dst


def _run_err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("voxsplat: error: ")
    return err


def _assert_no_outputs(out):
    for name in OUTPUTS:
        assert not (out / name).exists(), name


def test_missing_path(capsys, tmp_path):
    err = _run_err(capsys, ["reconstruct", str(tmp_path / "nope"), "--out", str(tmp_path / "ws")])
    assert "nope" in err
    assert not (tmp_path / "ws").exists()


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    err = _run_err(capsys, ["reconstruct", str(tmp_path / "empty"), "--out", str(tmp_path / "ws")])
    assert "empty" in err
    _assert_no_outputs(tmp_path / "ws")


def test_corrupt_image(capsys, scene_copy, tmp_path):
    victim = sorted((scene_copy / "images").iterdir())[0]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws")])
    assert victim.name in err
    _assert_no_outputs(tmp_path / "ws")


def test_json_missing_field(capsys, scene_copy, tmp_path):
    path = scene_copy / "transforms_train.json"
    meta = json.loads(path.read_text())
    del meta["frames"][1]["transform_matrix"]
    path.write_text(json.dumps(meta))
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws")])
    assert "transform_matrix" in err and "transforms_train.json" in err
    _assert_no_outputs(tmp_path / "ws")


def test_nan_pose(capsys, scene_copy, tmp_path):
    path = scene_copy / "transforms_train.json"
    meta = json.loads(path.read_text())
    meta["frames"][2]["transform_matrix"][0][3] = float("nan")
    path.write_text(json.dumps(meta))
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws")])
    assert "transforms_train.json" in err and ("NaN" in err or "nan" in err or "finite" in err)
    _assert_no_outputs(tmp_path / "ws")


def test_mixed_sizes(capsys, scene_copy, tmp_path):
    """Pixel intrinsics given once at the top level only fit images of one size."""
    from PIL import Image
    path = scene_copy / "transforms_train.json"
    meta = json.loads(path.read_text())
    keys = ("fl_x", "fl_y", "cx", "cy")
    meta.update({k: meta["frames"][0][k] for k in keys})
    for fr in meta["frames"]:
        for k in keys + ("w", "h"):
            fr.pop(k)
    path.write_text(json.dumps(meta))
    victim = scene_copy / meta["frames"][0]["file_path"]
    Image.open(victim).resize((40, 30)).save(victim)
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws")])
    assert victim.name in err
    _assert_no_outputs(tmp_path / "ws")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda(capsys, scene_copy, tmp_path):
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws"), "--device", "cuda"])
    assert "--device cuda" in err and "cpu" in err
    assert not (tmp_path / "ws").exists()
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws"),
                            "--device", "cuda:1"])  # named as given (it said "--device cuda")
    assert "--device cuda:1, but PyTorch sees no CUDA GPU" in err
    for name in ("cudax", "mps", "gpu"):  # (cudax passed the check and failed in torch)
        err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws"),
                                "--device", name])
        assert f"unknown device '{name}'; use cpu, cuda (or cuda:N) or auto" in err


def test_a_cuda_index_past_the_gpus_is_named(monkeypatch):
    from voxsplat.data.errors import VoxsplatError
    from voxsplat.recon.engine import resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(VoxsplatError, match=r"--device cuda:5: this machine has 1 CUDA GPU\(s\)"):
        resolve_device("cuda:5")


def test_interrupted_run_leaves_no_outputs_and_resumes(capsys, scene_copy, tmp_path, monkeypatch):
    from voxsplat.recon import engine
    ws = tmp_path / "ws"
    real_step = stop_training_at(monkeypatch, 30)
    argv = ["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu", "--steps", "40", "--quiet"]
    assert main(argv) == 130
    assert "interrupted; continue with `--resume`" in capsys.readouterr().err
    _assert_no_outputs(ws)
    assert any((ws / "checkpoints").iterdir())
    monkeypatch.setattr(engine.Trainer, "_step", real_step)
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu", "--resume", "--quiet"]) == 0
    metrics = json.loads((ws / "metrics.json").read_text())
    assert metrics["steps"] == 40 and metrics["n_test_views"] == 2
    assert (ws / "splats.splat").stat().st_size == 32 * metrics["n_gaussians"]
    record = (ws / "scene.json").read_text()
    transforms = json.loads((scene_copy / "transforms_train.json").read_text())
    transforms["frames"] = transforms["frames"][:-1]  # a view removed (it was a KeyError)
    (scene_copy / "transforms_train.json").write_text(json.dumps(transforms))
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(ws), "--resume"])
    assert "its views (names, sizes or poses) changed since the run in" in err
    assert (ws / "scene.json").read_text() == record  # left as it was


def test_eval_keeps_what_training_recorded(scene_copy, tmp_path, capsys):
    """`voxsplat eval` rewrites metrics.json with the same figures for the same Gaussians and
    keeps the training facts (model, steps, seconds) that only the reconstruct run knows."""
    ws = tmp_path / "ws"
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu", "--steps", "30",
                 "--quiet"]) == 0
    before = json.loads((ws / "metrics.json").read_text())
    assert main(["eval", str(ws), "--device", "cpu"]) == 0
    after = json.loads((ws / "metrics.json").read_text())
    assert after["psnr"] == pytest.approx(before["psnr"], abs=1e-4)
    for k in ("model", "steps", "train_seconds", "n_gaussians"):
        assert after[k] == before[k], k
    assert main(["eval", str(ws), "--device", "cpu", "--split", "train"]) == 0
    train = json.loads((ws / "metrics_train.json").read_text())
    assert train["split"] == "train" and train["model"] == before["model"]
    assert train["n_views"] == 6 and "n_test_views" not in train  # (not held-out views)
    assert train["psnr"] != pytest.approx(before["psnr"], abs=1e-4)
    test_json = scene_copy / "transforms_test.json"  # a held-out view moved in the input since
    frames = json.loads(test_json.read_text())
    frames["frames"][0]["transform_matrix"][0][3] += 0.05
    test_json.write_text(json.dumps(frames))
    capsys.readouterr()
    err = _run_err(capsys, ["eval", str(ws), "--device", "cpu"])
    assert "other names, sizes or poses than" in err and "the input was edited since" in err
    assert json.loads((ws / "metrics.json").read_text()) == after


@pytest.mark.parametrize("error", [MemoryError(), torch.cuda.OutOfMemoryError("CUDA out of memory."),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:121] "
                                                "DefaultCPUAllocator: can't allocate memory")])
def test_out_of_memory_says_what_to_do(capsys, scene_copy, tmp_path, monkeypatch, error):
    from voxsplat.recon import engine

    def oom(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(engine.Trainer, "fit", oom)
    ws = tmp_path / "ws"
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "out of" in err and "memory" in err and "--downscale 0.5" in err
    _assert_no_outputs(ws)


def test_out_of_memory_advice_is_an_option_of_that_command():
    """`eval --downscale` does not exist, and a resumed run refuses --downscale."""
    from voxsplat.scripts.cli import Eval, Reconstruct, Render, _memory_advice
    assert "--downscale 0.5" in _memory_advice(Reconstruct, {"resume": False}, gpu=True)
    assert "keeps its image size" in _memory_advice(Reconstruct, {"resume": True}, gpu=True)
    assert "--scale 0.5" in _memory_advice(Render, {"device": "cuda"}, gpu=True)
    advice = _memory_advice(Eval, {"device": "cuda"}, gpu=True)
    assert advice == "use --device cpu"


@pytest.mark.parametrize("extra, model", [([], "gaussians"), (["--model", "voxel"], "voxel"),
                                          (["--preset", "sparse"], "voxel")])
def test_auto_preset_on_few_views(scene_copy, tmp_path, monkeypatch, extra, model):
    """6 training views on a CPU: auto takes the sparse settings with explicit Gaussians (the
    voxel network is several times slower there); --model voxel and an explicit --preset
    sparse give the voxel model."""
    from voxsplat.recon import config
    cfg = _reconstruct_config(scene_copy, tmp_path, monkeypatch, *extra)
    sparse = config.preset("sparse", model)
    assert cfg.model == model
    assert (cfg.optim, cfg.voxel) == (sparse.optim, sparse.voxel)


@pytest.mark.parametrize("extra, model", [([], "voxel"), (["--model", "gaussians"], "gaussians")])
def test_auto_preset_on_few_views_on_a_gpu(scene_copy, tmp_path, monkeypatch, extra, model):
    """The same 6 views with CUDA: auto trains the voxel model (on the H200 never behind explicit
    Gaussians on the three few-view protocols, 0.5-1.1 dB ahead on two); --model still wins."""
    import torch
    from voxsplat.recon import app, config
    from voxsplat.recon.backbone import _spconv
    monkeypatch.setattr(app, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(_spconv, "cuda_build_available", lambda: True)
    cfg = _reconstruct_config(scene_copy, tmp_path, monkeypatch, *extra, device="cuda")
    sparse = config.preset("sparse", model)
    assert cfg.model == model
    assert (cfg.optim, cfg.voxel) == (sparse.optim, sparse.voxel)


def test_auto_says_what_it_chose(scene_copy, tmp_path, monkeypatch, capsys):
    """Without --quiet, auto names the preset and model it picked, and the summary names the model."""
    from voxsplat.recon import pipeline
    fake = {"psnr": 20.0, "ssim": 0.5, "n_views": 2, "n_gaussians": 10, "train_seconds": 1.0}
    monkeypatch.setattr(pipeline, "reconstruct",
                        lambda scene, out, cfg, *a, **k: fake | {"model": cfg.model})
    assert main(["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "auto: 6 training views on cpu: the sparse preset with the gaussians model" in out
    assert "model=gaussians" in out and "n_voxels" not in out


def test_auto_preset_on_a_gpu_without_spconv(scene_copy, tmp_path, monkeypatch, capsys):
    """Without a CUDA build of spconv, auto on a GPU trains explicit Gaussians and says how to
    get the voxel model."""
    import torch
    from voxsplat.recon import app
    from voxsplat.recon.backbone import _spconv
    monkeypatch.setattr(app, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(_spconv, "cuda_build_available", lambda: False)
    cfg = _reconstruct_config(scene_copy, tmp_path, monkeypatch, device="cuda")
    assert cfg.model == "gaussians" and "pip install spconv" in capsys.readouterr().err


def test_spconv_cuda_build_check(monkeypatch):
    """This machine's spconv is the CPU build (or absent): no CUDA build; a missing package
    reads the same."""
    import importlib.util
    from voxsplat.recon.backbone import _spconv
    if importlib.util.find_spec("spconv") is not None and torch.cuda.is_available():
        pytest.skip("a GPU machine may have either build")
    assert not _spconv.cuda_build_available()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "spconv" else find_spec(name, *a))
    assert not _spconv.cuda_build_available()


@pytest.mark.parametrize("model", ["gaussians", "voxel"])
def test_dense_preset_tunes_the_voxel_model(scene_copy, tmp_path, monkeypatch, model):
    """--preset dense --model voxel gets the dense schedule plus per-Gaussian residuals and 16
    Gaussians per voxel (lego dense on the H200: 32.73 -> 34.65 dB); explicit Gaussians keep
    the plain schedule."""
    from voxsplat.recon import config
    cfg = _reconstruct_config(scene_copy, tmp_path, monkeypatch, "--preset", "dense", "--model", model)
    assert cfg.model == model and cfg.optim == config.preset("dense").optim
    tuned = (cfg.voxel.lr_residual, cfg.voxel.gaussians_per_voxel)
    assert tuned == ((2e-3, 16) if model == "voxel" else (0.0, config.VoxelConfig().gaussians_per_voxel))


def test_set_changes_single_fields_of_the_preset(scene_copy, tmp_path, monkeypatch):
    from voxsplat.recon import config
    cfg = _reconstruct_config(scene_copy, tmp_path, monkeypatch, "--preset", "sparse", "--steps", "600",
                              "--set", "optim.pseudo_weight=0", "--set", "voxel.n_voxels=800",
                              "--set", "optim.steps=700")
    sparse = config.with_steps(config.preset("sparse", "voxel"), 600)
    assert sparse.optim.pseudo_weight == 2.0  # in the preset, so 0 is a change
    assert sparse.optim.hull_carve_every == 60  # 300 of 3000 steps, rescaled to 600
    assert (cfg.optim.pseudo_weight, cfg.voxel.n_voxels, cfg.optim.steps) == (0.0, 800, 700)
    assert cfg.optim.binocular_weight == sparse.optim.binocular_weight  # the rest stays
    assert cfg.voxel.refine_stop == sparse.voxel.refine_stop  # --steps rescaled before --set


def test_set_steps_says_that_the_schedule_keeps_its_steps(scene_copy, tmp_path, monkeypatch, capsys):
    cfg = _reconstruct_config(scene_copy, tmp_path, monkeypatch, "--preset", "fast",
                              "--set", "optim.steps=300", quiet=False)
    assert "--set optim.steps=300 changes the step count only" in capsys.readouterr().out
    assert cfg.optim.steps == 300
    _reconstruct_config(scene_copy, tmp_path, monkeypatch, "--preset", "fast", "--steps", "300",
                        quiet=False)
    assert "changes the step count only" not in capsys.readouterr().out


@pytest.mark.parametrize("assignment, words", [("optim.nope=1", "no config field 'optim.nope'"),
                                               ("optim.steps=many", "not a valid int"),
                                               ("voxel.lattice=polar", "takes one of world, depth, auto"),
                                               ("pseudo_weight", "expected section.field=value"),
                                               ("foo.bar=1", "no config field 'foo.bar'"),
                                               ("optim=1", "'optim' is a section"),
                                               ("optim.random_background=maybe", "takes true or false"),
                                               ("sfm.nope=1", "no config field 'sfm.nope'"),
                                               ("sfm.min_registered_fraction=2",
                                                "expected a fraction in (0, 1]"),
                                               # values that failed only in training, after the
                                               # old outputs were gone, or trained 0 steps
                                               ("optim.batch_size=0",
                                                "optim.batch_size=0: expected an integer >= 1"),
                                               ("optim.steps=0", "optim.steps=0: expected"),
                                               ("optim.lr_means=nan", "expected a value >= 0"),
                                               ("optim.sh_degree=-1", "expected a degree 0 to 3"),
                                               ("init.hull_resolution=0", "at least 4 voxels"),
                                               ("checkpoint_every=-1", "a number of steps >= 0"),
                                               ("densify.refine_every=0", "an integer >= 1"),
                                               ("sky.resolution=1", "at least 2 rows"),
                                               ("downscale=0.5", "give --downscale instead")])
def test_bad_set_is_one_line_before_any_work(capsys, scene_copy, tmp_path, assignment, words):
    ws = tmp_path / "ws"
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu",
                            "--quiet", "--set", assignment])
    assert words in err, err
    assert not ws.exists()


def test_set_sfm_fields_go_to_structure_from_motion():
    """SfM's own error names `--set sfm.min_registered_fraction=...`; it must reach SfmConfig."""
    from voxsplat.scripts.cli import _sfm_config, _train_overrides
    sets = ["sfm.min_registered_fraction=0.3", "optim.steps=5", " sfm.num_threads=1"]
    config = _sfm_config("sequential", True, 40, sets)
    assert (config.min_registered_fraction, config.num_threads) == (0.3, 1)
    assert (config.matcher, config.mask_features, config.video_frames) == ("sequential", True, 40)
    assert _train_overrides(sets) == ["optim.steps=5"]


def test_poses_takes_only_sfm_fields(capsys, tmp_path):
    err = _run_err(capsys, ["poses", str(tmp_path), "--out", str(tmp_path / "ws"),
                            "--set", "optim.steps=5"])
    assert "`poses` takes only sfm.* fields" in err, err


def test_set_with_resume_is_refused(capsys, scene_copy, tmp_path):
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws"),
                            "--resume", "--set", "optim.pseudo_weight=0.5"])
    assert "--set with --resume" in err, err


def test_refine_poses_turns_pose_refinement_on_and_not_on_a_resumed_run(capsys, scene_copy,
                                                                        tmp_path, monkeypatch):
    assert not _reconstruct_config(scene_copy, tmp_path, monkeypatch).optim.pose_refine
    assert _reconstruct_config(scene_copy, tmp_path, monkeypatch, "--refine-poses").optim.pose_refine
    capsys.readouterr()
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws2"),
                            "--resume", "--refine-poses"])
    assert "--refine-poses with --resume" in err, err


@pytest.mark.parametrize("extra, refined", [([], True), (["--set", "optim.pose_refine=false"], False),
                                            (["--preset", "fast"], False),
                                            (["--model", "voxel"], True)])
def test_poses_from_sfm_are_refined_in_the_sparse_preset(scene_copy, tmp_path, monkeypatch,
                                                         capsys, extra, refined):
    """Photos without poses (SfM stubbed by the scene's own poses): the sparse preset refines
    the training poses unless --set says otherwise; other presets and posed inputs keep them."""
    from voxsplat.data.load import load_scene
    from voxsplat.recon import app
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in sorted((scene_copy / "images").glob("*.png")):
        shutil.copy(image, photos / image.name)
    monkeypatch.setattr(app, "load_input", lambda *a, **k: load_scene(scene_copy))
    cfg = _reconstruct_config(photos, tmp_path, monkeypatch, *extra, quiet=False)
    assert cfg.optim.pose_refine == refined
    assert ("the training cameras' poses are refined" in capsys.readouterr().out) == refined
    assert not app.refines_sfm_poses("sparse", False, [])
    assert not app.refines_sfm_poses("sparse", True, ["optim.pose_refine = true"])


def test_two_photos_both_train_and_the_metrics_say_so(scene_copy, tmp_path, monkeypatch,
                                                       capsys):
    """Photos split every 8th by name would leave two photos one training view: both train
    instead (holdout 0, kept for eval), and the run says so. The run ends naming its splat
    files and the commands to run next, which work as printed."""
    from voxsplat.data.load import load_scene
    from voxsplat.data.transforms import split_every
    from voxsplat.recon import app
    photos = tmp_path / "photos"
    photos.mkdir()
    two = split_every(load_scene(scene_copy).subset([0, 1]), 8)
    assert two.splits == {"train": (1,), "test": (0,)}  # the input's own split
    monkeypatch.setattr(app, "load_input", lambda *a, **k: two)
    ws = tmp_path / "my ws"
    assert main(["reconstruct", str(photos), "--out", str(ws), "--device", "cpu", "--preset",
                 "fast", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert "only 2 views: all of them train, none is held out" in out
    scene, rec = app.load_workspace_scene(ws)
    assert rec["input"]["holdout"] == 0 and scene.split("train") == (0, 1)
    assert json.loads((ws / "metrics.json").read_text())["n_views"] == 2
    # the commands it suggests next run as printed, the path with a space quoted
    render = next(line for line in out.splitlines() if line.startswith("next: "))
    assert main([*shlex.split(render[len("next: voxsplat "):]), "--frames", "2", "--quiet",
                 "--device", "cpu"]) == 0
    assert (ws / "video.mp4").stat().st_size > 0
    assert f"      voxsplat view {shlex.quote(str(ws))}" in out.splitlines()
    assert f"splats: {ws / 'splats.ply'}" in out and (ws / "splats.ply").exists()


def _reconstruct_config(scene_copy, tmp_path, monkeypatch, *extra, device="cpu", quiet=True):
    """The TrainConfig `voxsplat reconstruct SCENE *extra` hands to the pipeline (stopped there)."""
    from voxsplat.recon import pipeline
    seen = {}

    def capture(scene, out, cfg, *args, **kwargs):
        seen["cfg"] = cfg
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "reconstruct", capture)
    assert main(["reconstruct", str(scene_copy), "--out", str(tmp_path / "ws"), "--device", device,
                 *(["--quiet"] if quiet else []), *extra]) == 130
    return seen["cfg"]


def test_large_photos_train_at_the_device_size_unless_downscale_says(scene_copy, tmp_path,
                                                                      monkeypatch, capsys):
    """Without --downscale, images longer than the device's MAX_IMAGE_SIDE are resized to it
    (as 3DGS and nerfstudio do at 1.6k px); eval reloads them at that size; --downscale 1
    keeps the full size."""
    from voxsplat.recon import app
    from voxsplat.recon import sizing
    monkeypatch.setitem(sizing.MAX_IMAGE_SIDE, "cpu", 24)  # the scene's images are 48 x 36
    ws = tmp_path / "ws"
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu",
                 "--steps", "10"]) == 0
    said = capsys.readouterr().out  # (each image resized as it is decoded)
    assert "images up to 48 px: training at 24 px (--downscale 1 keeps the full size)" in said
    scene, rec = app.load_workspace_scene(ws)
    assert rec["input"]["max_side"] == 24 and scene.cameras.size(0) == (24, 18)
    before = json.loads((ws / "metrics.json").read_text())
    assert main(["eval", str(ws), "--device", "cpu"]) == 0
    after = json.loads((ws / "metrics.json").read_text())
    assert after["psnr"] == pytest.approx(before["psnr"], abs=1e-4)
    assert _reconstruct_config(scene_copy, tmp_path / "full", monkeypatch, "--downscale",
                               "1").downscale == 1.0
    assert _reconstruct_config(scene_copy, tmp_path / "auto", monkeypatch).downscale == 1.0


def test_holdout_chooses_the_views_kept_for_measuring(capsys, scene_copy, tmp_path):
    """--holdout 0 trains on every view and measures on them; --holdout N holds out every
    N-th by name, and eval reloads the same split; few views say what is held out."""
    ws = tmp_path / "all"
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu",
                 "--steps", "10", "--holdout", "0"]) == 0
    metrics = json.loads((ws / "metrics.json").read_text())
    assert metrics["split"] == "train" and metrics["n_views"] == 8
    record = json.loads((ws / "scene.json").read_text())
    assert {im["split"] for im in record["images"]} == {"train"}
    assert main(["eval", str(ws), "--device", "cpu"]) == 0
    assert json.loads((ws / "metrics.json").read_text())["n_views"] == 8
    capsys.readouterr()
    ws = tmp_path / "half"
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--device", "cpu",
                 "--steps", "10", "--holdout", "2"]) == 0
    assert "held out" not in capsys.readouterr().out  # chosen, not defaulted: no note
    assert json.loads((ws / "metrics.json").read_text())["n_test_views"] == 4
    assert main(["eval", str(ws), "--device", "cpu"]) == 0
    assert json.loads((ws / "metrics.json").read_text())["n_test_views"] == 4
    assert main(["reconstruct", str(scene_copy), "--out", str(tmp_path / "default"), "--device",
                 "cpu", "--steps", "10"]) == 0
    note = capsys.readouterr().out
    assert "2 of the 8 views" in note and "--holdout 0 trains on all of them" in note
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(tmp_path / "x"),
                            "--holdout", "1"])
    assert "--holdout 1" in err


def test_a_folder_holding_only_a_video_is_posed_from_its_frames(tmp_path, monkeypatch, capsys):
    """`poses` and `reconstruct` on a capture folder whose only input is a video take the
    video (SfM samples its frames) and say so."""
    from voxsplat.recon import app
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "IMG_0001.MOV").write_bytes(b"video")
    seen = []

    def fake_load_input(input_path, *args, **kwargs):
        seen.append(Path(input_path))
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(app, "load_input", fake_load_input)
    for command in ("poses", "reconstruct"):
        assert main([command, str(capture), "--out", str(tmp_path / command)]) == 130
        assert f"{capture}: no photos; posing the frames of its video IMG_0001.MOV" \
            in capsys.readouterr().out
    assert seen == [capture / "IMG_0001.MOV"] * 2
    save_png(capture / "photo.png", torch.zeros(8, 8, 3, dtype=torch.uint8).numpy())
    assert main(["reconstruct", str(capture), "--out", str(tmp_path / "photos")]) == 130
    assert f"{capture}: its 1 video(s) (IMG_0001.MOV) are left out; the photos are used" \
        in capsys.readouterr().out  # a video beside photos is not dropped silently
    assert seen[-1] == capture


@pytest.mark.parametrize("value, traced", [("0", False), ("false", False), ("1", True)])
def test_voxsplat_debug_0_means_off(capsys, tmp_path, monkeypatch, value, traced):
    """VOXSPLAT_DEBUG=0 printed tracebacks (any value did); demo --steps 0 ran the full
    1200-step demo, and now stops before generating anything."""
    monkeypatch.setenv("VOXSPLAT_DEBUG", value)
    assert main(["demo", "--out", str(tmp_path / "d"), "--steps", "0", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--steps must be positive, got 0 (the demo's default: 1200)" in err
    assert ("Traceback" in err) == traced and not (tmp_path / "d").exists()


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path, monkeypatch, capsys):
    """SIGTERM (docker stop, timeout, a scheduler) killed the process without a word."""
    import os
    import signal
    import time
    from voxsplat.recon import app

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # (the handler raises before this ends)

    monkeypatch.setattr(app, "load_input", terminated)
    before = signal.getsignal(signal.SIGTERM)
    (tmp_path / "photos").mkdir()
    for k in range(2):
        save_png(tmp_path / "photos" / f"{k}.png",
                 torch.full((8, 8, 3), 40 * k, dtype=torch.uint8).numpy())
    assert main(["poses", str(tmp_path / "photos"), "--out", str(tmp_path / "ws")]) == 130
    assert "voxsplat: interrupted; nothing was saved yet" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_resume_with_nothing_to_resume_is_refused_before_any_work(scene_copy, tmp_path, capsys,
                                                                    monkeypatch):
    """--resume ran the whole depth stage before finding no checkpoint; after SfM stopped it
    asked whether the folder was a workspace made by reconstruct; a record of another
    version's config failed with a TypeError."""
    from voxsplat.recon import pipeline
    ws = tmp_path / "ws"
    (ws / "sfm").mkdir(parents=True)  # a run stopped in (or right after) structure-from-motion
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(ws), "--resume"])
    assert "its run stopped before training began, so there is nothing to resume; drop " \
           "--resume and " in err
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--steps", "5", "--device", "cpu",
                 "--quiet"]) == 0
    record = json.loads((ws / "scene.json").read_text())
    record["config"]["optim"]["old_removed_field"] = 1
    (ws / "scene.json").write_text(json.dumps(record))
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(ws), "--resume"])
    assert "settings this voxsplat does not know (optim.old_removed_field)" in err
    del record["config"]["optim"]["old_removed_field"]
    (ws / "scene.json").write_text(json.dumps(record))
    called = []
    monkeypatch.setattr(pipeline, "reconstruct", lambda *a, **k: called.append(1) or {})
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--resume", "--quiet"]) == 0
    assert called and "lacks" not in capsys.readouterr().err  # a record of this version
    recorded = dict(record, config={**record["config"], "optim": dict(record["config"]["optim"])})
    del recorded["config"]["optim"]["pseudo_weight"], recorded["config"]["checkpoint_every"]
    (ws / "scene.json").write_text(json.dumps(recorded))  # an older version's record
    assert main(["reconstruct", str(scene_copy), "--out", str(ws), "--resume", "--quiet"]) == 0
    assert "the run's recorded config lacks 2 settings (checkpoint_every, optim.pseudo_weight), " \
           "made by an older voxsplat: they take this version's defaults" in capsys.readouterr().err
    (ws / "scene.json").write_text(json.dumps(record))
    shutil.rmtree(ws / "checkpoints")
    called.clear()
    err = _run_err(capsys, ["reconstruct", str(scene_copy), "--out", str(ws), "--resume"])
    assert "no checkpoint to resume from; run without --resume" in err and not called


def test_photos_given_one_by_one_are_told_to_give_their_folder(tmp_path, capsys):
    """`poses photos/*.jpg` (the shell expands the pattern) failed in argparse with
    'unrecognized arguments'."""
    files = [tmp_path / "photos" / f"{k}.jpg" for k in range(3)]
    files[0].parent.mkdir()
    for f in files:
        f.write_bytes(b"jpeg")
    for command in ("poses", "reconstruct"):
        err = _run_err(capsys, [command, *map(str, files), "--out", str(tmp_path / "ws")])
        assert f"3 inputs ({files[0]}, {files[1]}, ...); give one: the folder that holds the " \
               f"photos" in err and f"give {tmp_path / 'photos'}/" in err
