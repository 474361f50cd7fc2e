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
from voxsplat.recon.viewer import (TEST_COLOR, TRAIN_COLOR, go_to_view, serve,  # noqa: E402
                                   thumbnail, viewer_arrays)


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
            assert np.array_equal(np.asarray(frustum.image), scene.images[i].numpy())  # its photo
    finally:
        first.stop()
        second.stop()


def test_without_viser_the_error_says_what_to_install(workspace, capsys, monkeypatch):
    ws, _, _ = workspace
    monkeypatch.setitem(sys.modules, "viser", None)
    assert main(["view", str(ws)]) == 2
    err = capsys.readouterr().err
    assert "pip install viser" in err and len(err.strip().splitlines()) == 1


def test_photos_shrink_to_thumbnails_and_can_be_left_out(workspace):
    ws, _, _ = workspace
    photo = torch.randint(0, 256, (600, 1000, 3), dtype=torch.uint8)
    small = thumbnail(photo)
    assert small.shape == (144, 240, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(photo.float().mean())) < 2  # an area filter
    bare = serve(ws, host="127.0.0.1", port=8290, verbose=False, photos=False)
    try:
        assert all(f.image is None for f in bare.frustums.values())
    finally:
        bare.stop()


def test_clicking_a_camera_moves_the_view_there():
    """`go_to_view` (each frustum's click callback) puts the browser's camera at the frustum's
    pose, in one update."""
    class Camera:
        wxyz = (1.0, 0.0, 0.0, 0.0)
        position = (0.0, 0.0, 0.0)

    class Client:
        camera = Camera()
        updates = 0

        def atomic(self):
            import contextlib
            Client.updates += 1
            return contextlib.nullcontext()

    class Frustum:
        wxyz = np.array([0.5, 0.5, -0.5, 0.5])
        position = np.array([1.0, 2.0, 3.0])

    client = Client()
    go_to_view(client, Frustum())
    assert np.allclose(client.camera.wxyz, Frustum.wxyz)
    assert np.allclose(client.camera.position, Frustum.position) and Client.updates == 1
