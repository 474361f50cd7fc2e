"""`voxsplat view` (`recon/viewer.py`): the workspace served to the browser through viser."""

from __future__ import annotations

import math
import sys
import urllib.request

import numpy as np
import pytest
import torch

from voxsplat.data.cameras import quat_to_rotmat
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon import workspace as wsp
from voxsplat.recon.config import TrainConfig
from voxsplat.recon.export.ply import write_ply
from voxsplat.recon.gaussians import splats_from_points
from voxsplat.scripts.cli import main

viser = pytest.importorskip("viser")
from voxsplat.recon.viewer import TEST_COLOR, TRAIN_COLOR, serve, viewer_arrays  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("view_ws")
    synth = make_synthetic_scene(SyntheticConfig(width=64, height=48, n_train=6, n_test=2,
                                                 n_points=800, supersample=1))
    scene = synth.scene
    data = write_blender_dataset(scene, root / "input")
    ws = root / "ws"
    ws.mkdir()
    splats = splats_from_points(scene.points, scene.point_colors, 1, 0.5, 1.0)
    with torch.no_grad():
        splats["opacities"][:100] = 4.0  # 100 clearly opaque ones
    write_ply(ws / wsp.SPLATS_PLY, {k: v.detach() for k, v in splats.items()})
    spec = {"kind": "path", "path": str(data), "downscale": 1.0}
    wsp.write_json(ws / wsp.SCENE_JSON, wsp.scene_record(scene, spec, TrainConfig().to_dict()))
    return ws, {k: v.detach() for k, v in splats.items()}, scene


def test_viewer_arrays_are_the_gaussians_as_viser_draws_them(workspace):
    """Covariances R diag(s^2) R^T (their eigen-decomposition gives back the scales and axes),
    the DC colour, opacities after the sigmoid; max_gaussians keeps the most opaque."""
    _, splats, scene = workspace
    a = viewer_arrays(splats)
    n = len(splats["means"])
    assert a["centers"].shape == (n, 3) and a["covariances"].shape == (n, 3, 3)
    assert np.allclose(a["centers"], splats["means"].numpy())
    eig = np.linalg.eigvalsh(a["covariances"].astype(np.float64))
    assert np.allclose(np.sort(eig, 1), np.sort(np.exp(2 * splats["scales"].numpy()), 1), rtol=1e-3)
    assert np.allclose(a["rgbs"], scene.point_colors.numpy(), atol=1e-3)  # colours from the points
    assert np.allclose(a["opacities"][:, 0], torch.sigmoid(splats["opacities"]).numpy())
    top = viewer_arrays(splats, max_gaussians=100)
    assert np.allclose(top["centers"], splats["means"][:100].numpy())


def test_serves_the_splats_and_every_camera(workspace):
    """The page is served, the splat node holds every Gaussian, each view is a frustum in its
    split's colour at its camera centre; a taken port moves the next server to another."""
    ws, splats, scene = workspace
    first = serve(ws, host="127.0.0.1", port=8190, verbose=False)
    second = serve(ws, host="127.0.0.1", port=first.server.get_port(), verbose=False)
    try:
        assert second.server.get_port() != first.server.get_port()
        page = urllib.request.urlopen(first.url.replace("localhost", "127.0.0.1"), timeout=10)
        assert page.status == 200 and b"<html" in page.read().lower()
        assert len(first.splats.centers) == len(splats["means"])
        assert set(first.frustums) == set(scene.names)
        for i, name in enumerate(scene.names):
            frustum = first.frustums[name]
            split = "train" if i in scene.splits["train"] else "test"
            assert tuple(frustum.color) == (TRAIN_COLOR if split == "train" else TEST_COLOR)
            assert np.allclose(frustum.position, scene.cameras.centers[i].numpy(), atol=1e-4)
            axes = quat_to_rotmat(torch.tensor(np.asarray(frustum.wxyz), dtype=torch.float64)[None])[0]
            rot = scene.cameras.cam_from_world[i, :3, :3].double()  # rows: the camera's axes
            assert torch.allclose(axes, rot.T, atol=1e-4)  # viser's frustums look along +z, y down
            H = int(scene.cameras.heights[i])
            assert frustum.fov == pytest.approx(2 * math.atan(0.5 * H / float(scene.cameras.Ks[i, 1, 1])))
    finally:
        first.stop()
        second.stop()


def test_without_viser_the_error_says_what_to_install(workspace, capsys, monkeypatch):
    ws, _, _ = workspace
    monkeypatch.setitem(sys.modules, "viser", None)
    assert main(["view", str(ws)]) == 2
    err = capsys.readouterr().err
    assert "pip install viser" in err and len(err.strip().splitlines()) == 1
