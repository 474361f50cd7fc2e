"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

import pytest

from voxsplat.data.errors import VoxsplatError


def error_message(fn, *args, **kwargs) -> str:
    """The VoxsplatError message `fn(*args, **kwargs)` raises; asserts it is one line."""
    with pytest.raises(VoxsplatError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def fit_cut_and_resumed(scene, cfg, tmp_path, cut_at: int):
    """(the run uninterrupted, the same run stopped after step `cut_at` and resumed from its
    last checkpoint, the checkpoint files the stopped run left), the runs as TrainResults, on
    the CPU in tmp_path/full and tmp_path/cut."""
    import torch

    from voxsplat.recon.engine import Trainer

    full = Trainer(scene, cfg, tmp_path / "full", torch.device("cpu")).fit(progress=False)

    def interrupt(step, _):
        if step == cut_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(scene, cfg, tmp_path / "cut", torch.device("cpu")).fit(progress=False, on_step=interrupt)
    left = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    resumed = Trainer(scene, cfg, tmp_path / "cut", torch.device("cpu")).fit(resume=True, progress=False)
    return full, resumed, left


def stop_training_at(monkeypatch, step: int):
    """Make every training run raise KeyboardInterrupt (Ctrl-C, past its handler) as it comes
    to 0-based `step`; returns the real `Trainer._step`, to put back for a run that goes on."""
    from voxsplat.recon import engine
    real_step = engine.Trainer._step

    def stopped(self, model, data, at, *args):
        if at == step:
            raise KeyboardInterrupt
        return real_step(self, model, data, at, *args)

    monkeypatch.setattr(engine.Trainer, "_step", stopped)
    return real_step


def untrained_workspace(ws, scene, data, splats=None, sh_degree: int = 0):
    """A workspace folder `ws` for `scene` (whose input is the dataset at `data`) without
    training: Gaussians on the scene's points (opaque, sized by their neighbours) unless
    `splats` is given, which render a plausible surface. Returns the splats written."""
    from voxsplat.recon import workspace as wsp
    from voxsplat.recon.config import TrainConfig
    from voxsplat.recon.export.ply import write_ply
    from voxsplat.recon.gaussians import splats_from_points
    ws.mkdir(parents=True, exist_ok=True)
    if splats is None:
        splats = splats_from_points(scene.points, scene.point_colors, sh_degree, 0.95, 1.2)
    splats = {k: v.detach() for k, v in splats.items()}
    write_ply(ws / wsp.SPLATS_PLY, splats)
    spec = {"kind": "path", "path": str(data), "downscale": 1.0}
    wsp.write_json(ws / wsp.SCENE_JSON, wsp.scene_record(scene, spec, TrainConfig().to_dict()))
    return splats


def rotation(axis, degrees):
    """[3,3] float64 rotation by `degrees` about `axis` (Rodrigues)."""
    import math

    import torch
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    K = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]],
                     dtype=torch.float64)
    a = math.radians(degrees)
    return torch.eye(3, dtype=torch.float64) + math.sin(a) * K + (1 - math.cos(a)) * K @ K


def similarity(scale, M, t):
    """[4,4] float64 similarity [scale M | t]."""
    import torch
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = scale * M
    T[:3, 3] = torch.tensor(t, dtype=torch.float64)
    return T


def renders_before_and_after(tmp_path, write, read, name: str):
    """Surface splats of the synthetic scene (SH degree 3) written by `write(path, splats)` and
    read back by `read(path)`: their renders into 3 views before and after [3,H,W,3], and N."""
    import math

    import torch

    from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
    from voxsplat.recon.gaussians import render_splats
    scene = make_synthetic_scene(SyntheticConfig(width=96, height=72, n_train=3, n_test=0,
                                                 n_points=4000)).scene
    n = len(scene.points)
    g = torch.Generator().manual_seed(0)
    splats = {"means": scene.points, "scales": torch.full((n, 3), math.log(0.02)),
              "quats": torch.randn(n, 4, generator=g), "opacities": torch.full((n,), 2.0),
              "sh0": ((scene.point_colors - 0.5) / 0.28209479177387814)[:, None],
              "shN": torch.randn(n, 15, 3, generator=g) * 0.05}
    write(tmp_path / name, splats)
    decoded = read(tmp_path / name)
    before = render_splats(splats, scene.cameras, 3, torch.ones(3), "torch").colors
    after = render_splats(decoded, scene.cameras, 3, torch.ones(3), "torch").colors
    return before, after, n


def need_pycolmap():
    """pycolmap, loaded as voxsplat loads it (`import_pycolmap`, which has COLMAP's log written
    unbuffered for matching's progress), whichever test module imports it first; skips the
    calling module where it is not installed."""
    from voxsplat.recon.sfm.colmap_steps import import_pycolmap
    try:
        return import_pycolmap()
    except VoxsplatError:
        pytest.skip("pycolmap is not installed", allow_module_level=True)
