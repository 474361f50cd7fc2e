"""`voxsplat view` (`recon/viewer.py`): the workspace served to the browser through viser."""

from __future__ import annotations

import math
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch

from voxsplat.data.cameras import quat_to_rotmat
from voxsplat.data.errors import VoxsplatError
from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
from voxsplat.data.writers import write_blender_dataset
from voxsplat.recon import workspace as wsp
from voxsplat.recon.config import TrainConfig
from voxsplat.recon.export.ply import write_ply
from voxsplat.recon.gaussians import splats_from_points
from voxsplat.scripts.cli import main

viser = pytest.importorskip("viser")
from voxsplat.recon.viewer import (TEST_COLOR, TRAIN_COLOR, Recolor,  # noqa: E402
                                   go_to_view, seen_colors, serve, thumbnail, viewer_arrays)


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
    ws, _, scene = workspace
    photo = torch.randint(0, 256, (600, 1000, 3), dtype=torch.uint8)
    small = thumbnail(photo)
    assert small.shape == (144, 240, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(photo.float().mean())) < 2  # an area filter
    bare = serve(ws, host="127.0.0.1", port=8290, verbose=False, photos=False)
    try:
        assert set(bare.frustums) == set(scene.names)  # the cameras, without their photos
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


def _with_sh(splats: dict, degree: int = 2) -> dict:
    g = torch.Generator().manual_seed(3)
    n = len(splats["means"])
    return {**splats, "shN": torch.randn(n, (degree + 1) ** 2 - 1, 3, generator=g) * 0.3}


def test_seen_colors_are_the_rasterizers_shading():
    """The colour each Gaussian shows from a point is the reference rasterizer's for a camera
    there (SH along mean - eye, + 0.5, at least 0), clipped to 1; it changes with the point."""
    from voxsplat.render._torch_rasterizer import _view_colors
    g = torch.Generator().manual_seed(0)
    n = 300
    splats = {"means": torch.randn(n, 3, generator=g), "sh0": torch.randn(n, 1, 3, generator=g),
              "shN": torch.randn(n, 8, 3, generator=g) * 0.5}
    eye = torch.tensor([0.3, -4.0, 1.0])
    cam_from_world = torch.eye(4)
    cam_from_world[:3, 3] = -eye  # a camera at `eye` (axes as the world's)
    coeffs = torch.cat([splats["sh0"], splats["shN"]], 1)
    ref = _view_colors(splats["means"], coeffs, cam_from_world[None], 2)[0].clamp(max=1)
    ours = seen_colors(splats, eye)
    assert np.allclose(ours, ref.numpy(), atol=1e-5)
    assert np.abs(seen_colors(splats, -eye) - ours).max() > 0.1


def test_the_splats_are_recoloured_for_the_camera_once_it_rests():
    """Two moves in quick succession give one recolouring, for the last position, which makes
    the browser's node; a later move recolours that node; other Gaussians replace its whole
    buffer, recoloured for the last position."""
    class Handle:
        def __init__(self, **arrays):
            self.set_gaussians(**arrays)

        def set_gaussians(self, **arrays):
            self.centers, self.rgbs = arrays["centers"], arrays["rgbs"]

    g = torch.Generator().manual_seed(1)

    def random_splats(n):
        return {"means": torch.randn(n, 3, generator=g), "sh0": torch.randn(n, 1, 3, generator=g),
                "shN": torch.randn(n, 3, 3, generator=g), "quats": torch.randn(n, 4, generator=g),
                "scales": torch.randn(n, 3, generator=g), "opacities": torch.randn(n, generator=g)}

    splats, made = random_splats(50), []
    recolor = Recolor(lambda **arrays: made.append(Handle(**arrays)) or made[-1], splats, delay=1.0)
    try:
        recolor.moved((0.0, 0.0, 5.0))
        recolor.moved((5.0, 0.0, 0.0))
        _wait(lambda: recolor.count == 1)
        time.sleep(1.5)
        assert recolor.count == 1 and len(made) == 1 and recolor.handle is made[0]
        assert np.allclose(made[0].rgbs, seen_colors(splats, torch.tensor([5.0, 0.0, 0.0])))
        recolor.moved((0.0, 5.0, 0.0))
        _wait(lambda: recolor.count == 2)
        assert np.allclose(made[0].rgbs, seen_colors(splats, torch.tensor([0.0, 5.0, 0.0])))
        other = random_splats(30)
        recolor.replace(other)
        _wait(lambda: recolor.count == 3)
        assert len(made) == 1 and np.allclose(made[0].centers, other["means"].numpy())
        assert np.allclose(made[0].rgbs, seen_colors(other, torch.tensor([0.0, 5.0, 0.0])))
    finally:
        recolor.stop()


def _wait(condition, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_each_browser_sees_the_colours_of_its_own_camera(workspace, tmp_path):
    """A workspace with view-dependent colour: each browser that connects gets its own splat
    node, recoloured for its camera (and again when the camera moves), while the shared node
    keeps the DC colours; new Gaussians reach every browser's node; a browser that leaves
    stops its recolouring; flat colours, or SH degree 0, never recolour."""
    _, splats, scene = workspace
    ws = tmp_path / "ws"
    ws.mkdir()
    coloured = _with_sh(splats)
    (ws / wsp.SCENE_JSON).write_bytes((workspace[0] / wsp.SCENE_JSON).read_bytes())
    write_ply(ws / wsp.SPLATS_PLY, coloured)
    viewer = serve(ws, host="127.0.0.1", port=8390, verbose=False, photos=False)

    class Camera:
        def __init__(self, position):
            self.position, self.callbacks = position, []

        def on_update(self, callback):
            self.callbacks.append(callback)

    class Scene:  # a client-scoped node, as a real viser node under the client's own name
        def __init__(self, client_id):
            self.prefix = f"/client{client_id}"

        def add_gaussian_splats(self, name, **arrays):
            return viewer.server.scene.add_gaussian_splats(self.prefix + name, **arrays)

    class Client:
        def __init__(self, client_id, position):
            self.client_id, self.camera, self.scene = client_id, Camera(position), Scene(client_id)

    def seen(position, gaussians=coloured):
        return seen_colors({k: v.float() for k, v in gaussians.items()}, torch.tensor(position))

    try:
        assert viewer.recolors == {}
        a, b = Client(1, (0.5, -3.0, 1.0)), Client(2, (-3.0, 0.5, 1.0))
        viewer.connect(a)
        viewer.connect(b)
        ra, rb = viewer.recolors[1], viewer.recolors[2]
        _wait(lambda: ra.count == 1 and rb.count == 1)
        # viser keeps colours in 8 bits
        assert np.abs(ra.handle.rgbs / 255.0 - seen(a.camera.position)).max() <= 1 / 255 + 1e-6
        assert np.abs(rb.handle.rgbs / 255.0 - seen(b.camera.position)).max() <= 1 / 255 + 1e-6
        assert np.abs(seen(a.camera.position) - seen(b.camera.position)).max() > 0.1
        dc = viewer_arrays(coloured)["rgbs"]
        assert np.abs(viewer.splats.rgbs / 255.0 - dc).max() <= 1 / 255 + 1e-6  # shared: DC
        a.camera.position = (0.0, 3.0, -1.0)
        a.camera.callbacks[0](a.camera)  # a's browser moved its camera
        _wait(lambda: ra.count == 2)
        assert np.abs(ra.handle.rgbs / 255.0 - seen(a.camera.position)).max() <= 1 / 255 + 1e-6
        assert rb.count == 1
        fewer = {k: v[:300] for k, v in coloured.items()}
        viewer.update(fewer)
        _wait(lambda: ra.count == 3 and rb.count == 2)
        for client, recolor in ((a, ra), (b, rb)):
            assert len(recolor.handle.centers) == 300
            assert np.abs(recolor.handle.rgbs / 255.0 - seen(client.camera.position, fewer)).max() \
                <= 1 / 255 + 1e-6
        viewer.disconnect(a)
        assert set(viewer.recolors) == {2} and not ra._thread.is_alive()
    finally:
        viewer.stop()
    flat = serve(ws, host="127.0.0.1", port=8390, verbose=False, photos=False, flat_colors=True)
    flat.stop()
    write_ply(ws / wsp.SPLATS_PLY, {k: v for k, v in coloured.items() if k != "shN"})
    dc_only = serve(ws, host="127.0.0.1", port=8390, verbose=False, photos=False)
    dc_only.stop()
    assert flat.recolors is None and dc_only.recolors is None
    flat.connect(Client(3, (0.0, 0.0, 1.0)))  # nothing to recolour: no node of its own


def test_a_live_view_follows_the_training_and_changes_nothing(tmp_path, monkeypatch):
    """`reconstruct --view`: the served Gaussians follow the training step by step (every_s=0)
    and end as the trained ones; the training comes out bit for bit as without the viewer;
    after it, the workspace's Gaussians are served until Ctrl-C."""
    from dataclasses import replace

    from voxsplat.recon import pipeline, viewer
    from voxsplat.recon.config import preset, with_steps
    from voxsplat.recon.export.ply import read_ply
    from voxsplat.recon.viewer import LiveView
    scene = make_synthetic_scene(SyntheticConfig(width=48, height=36, n_train=6, n_test=2,
                                                 n_points=600, supersample=1)).scene
    cfg = replace(with_steps(preset("fast", "gaussians"), 30), backend="torch", checkpoint_every=0,
                  depth="off")
    spec = {"kind": "path", "path": "synthetic"}
    pipeline.reconstruct(scene, tmp_path / "plain", cfg, spec, device="cpu", progress=False)
    live = LiveView(tmp_path / "live", port=8490, every_s=0.0, max_share=1.0)
    sent = []
    real_update = viewer.Viewer.update
    monkeypatch.setattr(viewer.Viewer, "update",
                        lambda self, splats: (sent.append(len(splats["means"])),
                                              real_update(self, splats)))
    seen = []

    def on_step(step, info):
        live(step, info)
        seen.append(info["n"])

    pipeline.reconstruct(scene, tmp_path / "live", cfg, spec, device="cpu", progress=False,
                         on_step=on_step)
    try:
        plain, trained = (read_ply(tmp_path / d / wsp.SPLATS_PLY) for d in ("plain", "live"))
        for key in plain:
            assert torch.equal(plain[key], trained[key]), key
        assert len(sent) == 29 and sent == seen[1:]  # the first step started the server
        assert np.array_equal(live.viewer.splats.centers, trained["means"].numpy())
        monkeypatch.setattr(viewer, "serve_until_interrupted", lambda v: None)
        live.finish()
        assert len(sent) == 30 and np.array_equal(live.viewer.splats.centers,
                                                  trained["means"].numpy())
    finally:
        live.stop()


def test_a_live_view_takes_a_bounded_share_of_the_time(tmp_path, monkeypatch):
    """Sending waits `every_s`, and longer where a send is slow: at most `max_share` of the
    wall time goes to the viewer."""
    from voxsplat.recon import viewer
    from voxsplat.recon.viewer import LiveView
    clock = {"t": 0.0}
    monkeypatch.setattr(viewer.time, "monotonic", lambda: clock["t"])

    class Model:
        def bake(self):
            clock["t"] += 1.0  # a send costs a second
            return {"means": torch.zeros(1, 3)}

    sends = []
    live = LiveView(tmp_path, every_s=2.0, max_share=0.2)
    live.viewer = type("V", (), {"update": lambda self, s: sends.append(clock["t"])})()
    for _ in range(100):  # 0.1 s steps
        live(0, {"model": Model()})
        clock["t"] += 0.1
    # each send (1 s) is followed by 4 s of training: 1 / (1 + 4) = 0.2 of the time
    assert len(sends) == 3 and np.allclose(np.diff(sends), 5.1)
    with pytest.raises(VoxsplatError, match="max_share"):
        LiveView(tmp_path, max_share=0.0)


def test_reconstruct_view_without_viser_fails_before_training(tmp_path, capsys, monkeypatch):
    scene = make_synthetic_scene(SyntheticConfig(width=32, height=24, n_train=4, n_test=1,
                                                 n_points=200, supersample=1)).scene
    data = write_blender_dataset(scene, tmp_path / "input")
    monkeypatch.setitem(sys.modules, "viser", None)
    assert main(["reconstruct", str(data), "--out", str(tmp_path / "ws"), "--view",
                 "--quiet"]) == 2
    assert "pip install viser" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


def test_any_splat_file_is_viewed_alone(workspace, tmp_path, capsys):
    """`voxsplat view FILE`: each export format read back (by suffix, and for .ply by its
    elements), served without cameras, the view starting behind the Gaussians' median along
    the axis across `--up`, above it, looking at it."""
    from voxsplat.recon.export.read import read_splat_file
    from voxsplat.recon.viewer import serve_file, start_for_splats
    ws, splats, _ = workspace
    for fmt, name in (("ply", "a.ply"), ("compressed-ply", "b.compressed.ply"),
                      ("splat", "c.splat"), ("spz", "d.spz")):
        assert main(["export", str(ws), "--format", fmt, "--out", str(tmp_path / name),
                     "--frame", "scene", "--quiet"]) == 0
        got = read_splat_file(tmp_path / name)
        assert len(got["means"]) == len(splats["means"]), fmt
        assert float((got["means"].sort(0).values - splats["means"].sort(0).values).abs().max()) < 0.01
    assert torch.equal(read_splat_file(tmp_path / "a.ply")["shN"], splats["shN"])
    assert read_splat_file(tmp_path / "b.compressed.ply")["shN"].shape == splats["shN"].shape
    viewer = serve_file(tmp_path / "d.spz", port=8690, verbose=False)
    try:
        assert len(viewer.splats.centers) == len(splats["means"]) and viewer.frustums == {}
    finally:
        viewer.stop()
    means = splats["means"].double()
    center = means[torch.sigmoid(splats["opacities"].double()) > 0.5].median(0).values
    for up, back, sign in (("-y", 2, -1.0), ("+z", 1, 1.0)):
        start = start_for_splats(splats, up)
        offset = start.position - center
        assert torch.allclose(start.look_at, center)
        assert float(offset[back]) < 0 and float(offset.abs().max()) == float(-offset[back])
        assert sign * float(offset[1 if up == "-y" else 2]) > 0  # above the median
    (tmp_path / "e.obj").write_text("v 0 0 0\n")
    for argv, words in ((["view", str(tmp_path / "e.obj")], "not a splat file"),
                        (["view", str(ws), "--up", "+z"], "--up is for splat files")):
        assert main(argv) == 2
        assert words in capsys.readouterr().err


def test_the_learned_sky_is_shown_behind_the_scene(workspace, tmp_path):
    """A workspace whose run learned a sky is served with it as Gaussians on a far sphere (as
    `export --sky` writes them), unless sky=False; without sky.pt, the splats alone."""
    from voxsplat.recon.export.backdrop import scene_radius, sky_splats
    from voxsplat.recon.export.mesh import scene_center
    from voxsplat.recon.sky import write_sky
    from voxsplat.render.sky import SkyMap, sky_frame
    src, splats, scene = workspace
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in (wsp.SCENE_JSON, wsp.SPLATS_PLY):
        (ws / name).write_bytes((src / name).read_bytes())
    sky = SkyMap(torch.rand(8, 16, 3, generator=torch.Generator().manual_seed(0)),
                 sky_frame(torch.tensor([0.0, -1.0, 0.0])))
    write_sky(ws, sky)
    center = scene_center(splats)
    backdrop = sky_splats(sky, center, scene_radius(scene.cameras, center), 1)
    n, m = len(splats["means"]), len(backdrop["means"])
    for kwargs, expected in (({}, n + m), ({"sky": False}, n)):
        viewer = serve(ws, port=8790, verbose=False, photos=False, **kwargs)
        try:
            assert len(viewer.splats.centers) == expected
            if expected > n:  # the far sphere, after the scene's Gaussians
                assert np.allclose(viewer.splats.centers[n:], backdrop["means"].numpy(), atol=1e-4)
        finally:
            viewer.stop()
    (ws / "sky.pt").unlink()
    viewer = serve(ws, port=8790, verbose=False, photos=False)
    viewer.stop()
    assert len(viewer.splats.centers) == n


def test_real_browser_connections_each_get_their_own_colours(tmp_path):
    """Two websocket clients speaking viser's protocol (as its browser client does: the
    version subprotocol, then camera messages) each get a node of their own, coloured for the
    camera each reports; one that disconnects stops its recolouring."""
    import asyncio

    import msgspec
    import websockets
    from viser import _messages

    from voxsplat.recon.export.spz import write_spz
    from voxsplat.recon.viewer import serve_file
    from test_export import make_splats
    splats = make_splats(400, 2, seed=0)
    write_spz(tmp_path / "s.spz", splats)
    viewer = serve_file(tmp_path / "s.spz", port=8895, verbose=False)
    shown = {k: v.float() for k, v in viewer.shown.items()}

    def camera(position):
        msg = _messages.ViewerCameraMessage(
            wxyz=(1.0, 0.0, 0.0, 0.0), position=position, fov=1.0, near=0.01, far=100.0,
            image_height=48, image_width=64, look_at=(0.0, 0.0, 0.0), up_direction=(0.0, -1.0, 0.0))
        return msgspec.msgpack.encode(msg.as_serializable_dict())

    async def wait_for(condition, timeout=20.0):
        end = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < end, "timed out"
            await asyncio.sleep(0.05)

    async def browsers():
        url = f"ws://127.0.0.1:{viewer.server.get_port()}"
        protocol = [f"viser-v{viser.__version__}"]
        async with websockets.connect(url, subprotocols=protocol, max_size=None) as a, \
                websockets.connect(url, subprotocols=protocol, max_size=None) as b:
            for ws in (a, b):  # as a browser does: it reports its camera once connected
                await ws.send(camera((0.0, 0.0, 4.0)))
            await wait_for(lambda: len(viewer.recolors) == 2)
            (id_a, ra), (id_b, rb) = sorted(viewer.recolors.items())
            await a.send(camera((4.0, 0.0, 0.0)))
            await b.send(camera((0.0, 4.0, 0.0)))
            await wait_for(lambda: ra.handle is not None and rb.handle is not None and
                           np.abs(ra.handle.rgbs / 255.0 - seen_colors(shown, torch.tensor([4.0, 0.0, 0.0]))).max() < 0.01
                           and np.abs(rb.handle.rgbs / 255.0 - seen_colors(shown, torch.tensor([0.0, 4.0, 0.0]))).max() < 0.01)
            assert np.abs(ra.handle.rgbs.astype(int) - rb.handle.rgbs.astype(int)).max() > 20
        await wait_for(lambda: not viewer.recolors and not ra._thread.is_alive()
                       and not rb._thread.is_alive())

    try:
        asyncio.run(browsers())
    finally:
        viewer.stop()


def test_an_address_or_port_that_cannot_listen_is_one_line_before_any_work(workspace, tmp_path,
                                                                           capsys, monkeypatch):
    """viser would try 1000 ports on any bind failure and then wait for ever."""
    from voxsplat.recon.viewer import LiveView, check_listen
    ws = workspace[0]
    for argv, words in ((["--port", "70000"], "--port 70000: give 1-65535"),
                        (["--host", "192.0.2.77"], "--host 192.0.2.77: cannot listen there"),
                        (["--host", "nosuch.invalid"], "--host nosuch.invalid: cannot listen")):
        assert main(["view", str(ws), *argv, "--no-photos"]) == 2
        assert words in capsys.readouterr().err
    with pytest.raises(VoxsplatError, match="--port 70000"):
        LiveView(tmp_path, port=70000)  # reconstruct --view: before the input loads
    check_listen("127.0.0.1", 0)
    monkeypatch.setitem(sys.modules, "viser", None)
    with pytest.raises(VoxsplatError, match=r"--view needs viser.*; or drop --view"):
        LiveView(tmp_path)


def test_the_url_names_the_address_it_listens_on(workspace):
    viewer = serve(workspace[0], port=8791, verbose=False, photos=False)
    try:
        assert viewer.url.startswith("http://localhost:")
        viewer.server.get_host = lambda: "10.1.2.3"
        assert viewer.url.startswith("http://10.1.2.3:")
    finally:
        viewer.stop()


def test_gaussians_of_a_diverged_run_are_left_out_with_a_word(workspace, tmp_path):
    from voxsplat.recon.viewer import serve_file
    splats = {k: v.clone() for k, v in workspace[1].items()}
    splats["means"][:7] = float("nan")
    write_ply(tmp_path / "nan.ply", splats)
    with pytest.warns(UserWarning, match="7 of .* Gaussians hold NaN or inf"):
        viewer = serve_file(tmp_path / "nan.ply", port=8792, verbose=False)
    try:
        assert len(viewer.splats.centers) == len(splats["means"]) - 7
        assert np.isfinite(viewer.splats.centers).all()
    finally:
        viewer.stop()


def test_the_live_view_ends_on_the_workspace_as_view_shows_it(workspace, tmp_path, monkeypatch):
    """After `reconstruct --view`: the learned sky joins the splats and the frustums move to
    the refined poses that scene.json holds (during training they were the input's)."""
    from voxsplat.recon import viewer as vw
    from voxsplat.recon.sky import write_sky
    from voxsplat.recon.viewer import LiveView, serve_record
    from voxsplat.render.sky import SkyMap, sky_frame
    src, splats, _ = workspace
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in (wsp.SCENE_JSON, wsp.SPLATS_PLY):
        (ws / name).write_bytes((src / name).read_bytes())
    write_sky(ws, SkyMap(torch.rand(8, 16, 3), sky_frame(torch.tensor([0.0, -1.0, 0.0]))))
    live = LiveView(ws, port=8793)
    live.viewer = serve_record(wsp.open_workspace(ws), splats, {}, "127.0.0.1", 8793,
                               verbose=False)  # what training showed
    rec = wsp.open_workspace(ws)
    rec["images"][0]["cam_from_world"][0][3] += 0.5  # the refinement moved camera 0
    wsp.write_json(ws / wsp.SCENE_JSON, rec)
    monkeypatch.setattr(vw, "serve_until_interrupted", lambda v: None)
    try:
        live.finish()
        assert len(live.viewer.splats.centers) > len(splats["means"])  # + the sky
        name = rec["images"][0]["name"]
        moved = wsp.cameras_from_record(rec).centers[0].numpy()
        assert np.allclose(live.viewer.frustums[name].position, moved, atol=1e-5)
    finally:
        live.stop()


def test_only_our_url_is_printed(workspace, capsys):
    """viser prints its own URL box and "Server stopped" whatever its verbose flag says; a
    quiet viewer (the CLI's) leaves stdout to us and the progress bar."""
    viewer = serve(workspace[0], port=8794, verbose=False, photos=False)
    viewer.stop()
    assert capsys.readouterr().out == ""
