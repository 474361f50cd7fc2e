"""`voxsplat view`: a workspace's Gaussians and cameras, or a splat file alone, in the browser
through viser (the viewer library of nerfstudio and gsplat's examples; optional: ``pip install
-e '.[view]'``), and `reconstruct --view`: the Gaussians while they train (`LiveView`). The one
module that imports viser.

The browser draws the splats itself (viser's WebGL splat renderer sorts them on the client), so
serving needs no GPU: a workspace on a remote GPU machine is viewed through an SSH tunnel of
the port. Colours are view-dependent as in the renders: once the browser's camera has rested
for a moment (`RECOLOR_DELAY_S`), every Gaussian takes the colour its spherical harmonics give
from that camera's position. Each browser gets its own splat node for that (viser's
client-scoped node, shadowing the shared one of DC colours), so several browsers each see the
colours of their own camera. Each recolouring sends the splat buffer again (32 bytes a
Gaussian) to that browser; `--flat-colors` keeps the view-independent DC colours of the
`.splat` export and sends them once.

A workspace is shown in its frame, with the training cameras (blue) and held-out ones
(orange) as frustums that show their photos when the input is at hand; clicking one moves the
view to that camera (as nerfstudio's viewer does). The viewer starts at the first training
camera, with the up direction the cameras agree on. A splat file has no cameras: the view
starts behind its Gaussians (`start_for_splats`).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

import numpy as np
import torch
from torch import Tensor

from ..data.cameras import quat_to_rotmat
from ..data.errors import VoxsplatError
from ..render.camera_paths import estimate_up, focus_point
from ..render.sh import SH2RGB, eval_sh
from . import workspace as wsp
from .export.ply import read_ply
from .gaussians import finite_only, sh_degree_of
from .sky import SKY_PT

TRAIN_COLOR = (40, 110, 230)
TEST_COLOR = (240, 140, 30)
THUMBNAIL_PX = 240
"""Longest side of the photos shown on the frustums."""
RECOLOR_DELAY_S = 0.25
"""How long the browser's camera rests before the splats are recoloured for it."""


def _viser(what: str = "`voxsplat view`", instead: str = ""):
    try:
        import viser
    except ImportError:
        raise VoxsplatError(f"{what} needs viser: pip install viser (or pip install -e "
                            f"'.[view]'), then run it again{instead}") from None
    return viser


def _quiet(verbose: bool):
    """Where not `verbose`, silence viser's own stdout (its URL box, "Server stopped"), which
    it prints whatever its `verbose` says: we print our URL, and a progress bar runs beside."""
    import contextlib
    import io
    return contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())


def check_listen(host: str, port: int) -> None:
    """Raise a VoxsplatError, before any work, where the viewer could not listen: a port out of
    range, or an address this machine cannot bind (viser would try 1000 ports and then wait
    for ever)."""
    import socket
    if not 0 <= port <= 65535:
        raise VoxsplatError(f"--port {port}: give 1-65535 (0: any free port)")
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind(address)
    except OSError as e:
        raise VoxsplatError(f"--host {host}: cannot listen there ({e.strerror or e}); give an "
                            f"address of this machine, e.g. 127.0.0.1 (this machine only) or "
                            f"0.0.0.0 (every network)") from None


def most_opaque(splats: Mapping[str, Tensor], max_gaussians: Optional[int] = None) -> dict:
    """`splats` as float32, only the `max_gaussians` most opaque (all if None), in order."""
    splats = {k: v.detach().float() for k, v in splats.items()}
    n = len(splats["means"])
    if max_gaussians is None or max_gaussians >= n:
        return splats
    keep = torch.topk(splats["opacities"], max_gaussians).indices.sort().values
    return {k: v[keep] for k, v in splats.items()}


def viewer_arrays(splats: Mapping[str, Tensor], max_gaussians: Optional[int] = None) -> dict:
    """What viser's splat renderer takes, as float32 numpy arrays: centers [N,3], covariances
    [N,3,3] (R diag(s^2) R^T), rgbs [N,3] in [0,1] (the SH DC colour) and opacities [N,1].

    `max_gaussians`: keep only that many, the most opaque (a browser draws a few million)."""
    splats = most_opaque(splats, max_gaussians)
    R = quat_to_rotmat(splats["quats"])
    var = torch.exp(2 * splats["scales"])
    cov = (R * var[:, None, :]) @ R.transpose(1, 2)
    return {"centers": splats["means"].numpy(),
            "covariances": cov.numpy(),
            "rgbs": SH2RGB(splats["sh0"][:, 0]).clamp(0, 1).numpy(),
            "opacities": torch.sigmoid(splats["opacities"])[:, None].numpy()}


def seen_colors(splats: Mapping[str, Tensor], eye: Tensor) -> np.ndarray:
    """[N,3] float32 in [0,1]: each Gaussian's colour seen from the point `eye` [3], as the
    rasterizer shades it (SH along mean - eye, + 0.5, at least 0), clipped to 1 for display."""
    coeffs = torch.cat([splats["sh0"], splats["shN"]], 1).float()
    dirs = splats["means"].float() - torch.as_tensor(eye, dtype=torch.float32)
    rgb = eval_sh(sh_degree_of(splats), dirs, coeffs) + 0.5
    return rgb.clamp(0, 1).numpy()


class Recolor:
    """Recolours one browser's own splat node for the last camera position given to `moved`,
    once no other has come for `delay` seconds (a background thread; `stop` ends it).

    The node is made by `make(**arrays)` (viser's `client.scene.add_gaussian_splats`, which
    shadows the shared node for that browser alone) at the first recolouring, so a browser
    that never rests its camera costs nothing; later ones send the colours only, or the whole
    buffer once after `replace`. `arrays`: `viewer_arrays(splats)` where the caller has them
    (one computation for every browser), else computed here when needed."""

    def __init__(self, make: Callable[..., object], splats: Mapping[str, Tensor],
                 delay: float = RECOLOR_DELAY_S, arrays: Optional[dict] = None):
        self.make, self.splats, self.delay, self.arrays = make, splats, delay, arrays
        self.handle = None
        """The browser's splat node, once made."""
        self._eye, self._last, self._at, self._stopped = None, None, 0.0, False
        self._moved_geometry = False
        self._wake = threading.Condition()
        self._write = threading.Lock()  # one writer of the node at a time
        self.count = 0
        """Recolourings done (for tests and logs)."""
        self._thread = threading.Thread(target=self._loop, name="voxsplat-recolor", daemon=True)
        self._thread.start()

    def moved(self, eye) -> None:
        with self._wake:
            self._eye, self._at = np.asarray(eye, np.float32).copy(), time.monotonic()
            self._last = self._eye
            self._wake.notify()

    def replace(self, splats: Mapping[str, Tensor], arrays: Optional[dict] = None) -> None:
        """Show other Gaussians: recolour them for the last camera now (the browser shows its
        node's former ones until then)."""
        with self._write, self._wake:
            self.splats, self.arrays, self._moved_geometry = splats, arrays, True
            if self._last is not None:
                self._eye, self._at = self._last, 0.0
                self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._eye is None and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                rest = self._at + self.delay - time.monotonic()
                if rest > 0:  # moved lately: wait until it rests (or moves again)
                    self._wake.wait(rest)
                    continue
                eye, self._eye, splats = self._eye, None, self.splats
            rgbs = seen_colors(splats, torch.from_numpy(eye))
            with self._write:
                if splats is not self.splats:  # replaced meanwhile: recoloured again soon
                    continue
                if self.handle is None or self._moved_geometry:
                    if self.arrays is None:
                        self.arrays = viewer_arrays(splats)
                    arrays = self.arrays | {"rgbs": rgbs}
                    if self.handle is None:
                        self.handle = self.make(**arrays)
                    else:
                        self.handle.set_gaussians(**arrays)
                else:
                    self.handle.rgbs = rgbs
                self._moved_geometry = False
                self.count += 1


def _frustum_pose(world_from_cam: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(wxyz, position) of an OpenCV camera [4,4] for viser, whose frustums look along +z,
    y down (OpenCV's axes too)."""
    from ..data.cameras import quat_from_rotmat
    world_from_cam = world_from_cam.double()
    return (quat_from_rotmat(world_from_cam[None, :3, :3])[0].numpy(),
            world_from_cam[:3, 3].numpy())


def thumbnail(image: Tensor, longest: int = THUMBNAIL_PX) -> np.ndarray:
    """[h,w,3] uint8: a photo [H,W,3] shrunk (area filter) to at most `longest` pixels a side."""
    from ..data.images import resize_image
    H, W = int(image.shape[0]), int(image.shape[1])
    f = min(1.0, longest / max(H, W))
    return resize_image(image, (max(1, round(W * f)), max(1, round(H * f)))).numpy()


def workspace_photos(ws: Path, rec: Mapping) -> dict[str, np.ndarray]:
    """View name -> thumbnail of its photo as training saw it; empty (with a note) when the
    workspace's input can no longer be loaded."""
    from .app import load_workspace_scene
    try:
        scene, _ = load_workspace_scene(ws)
    except VoxsplatError as e:
        print(f"voxsplat: note: the cameras show no photos ({e})", file=sys.stderr)
        return {}
    names = {im["name"] for im in rec["images"]}
    return {n: thumbnail(img) for n, img in zip(scene.names, scene.images) if n in names}


def go_to_view(client, frustum) -> None:
    """Move a browser's camera to a frustum's camera (its pose; viser's cameras look along +z,
    y down, as the frustums)."""
    with client.atomic():
        client.camera.wxyz = frustum.wxyz
        client.camera.position = frustum.position


@dataclass
class Viewer:
    """A running viewer: the viser server (serving in the background) and its scene's nodes."""

    server: object
    splats: object
    """viser's splat node that every browser shares (centers, covariances, DC colours,
    opacities)."""
    frustums: dict
    """View name -> viser camera frustum handle."""
    shown: dict
    """The Gaussians shown (`most_opaque` of the served ones)."""
    arrays: dict
    """`viewer_arrays(shown)`, made once for the shared node and every browser's own."""
    recolors: Optional[dict] = None
    """Browser (viser client id) -> its `Recolor`, which gives it its own node coloured for
    its camera; None: flat colours (`--flat-colors`, or SH degree 0)."""
    max_gaussians: Optional[int] = None
    verbose: bool = True
    """viser's own messages on stdout (see `_quiet`)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, splats: Mapping[str, Tensor]) -> None:
        """Show other Gaussians in place of the current ones (e.g. as training moves them)."""
        shown = most_opaque(splats, self.max_gaussians)
        arrays = viewer_arrays(shown)
        with self._lock:
            self.shown, self.arrays = shown, arrays
            self.splats.set_gaussians(**arrays)
            for recolor in (self.recolors or {}).values():
                recolor.replace(shown, arrays)

    def connect(self, client) -> None:
        """A browser came: recolour the splats for its camera on its own node, now and
        whenever the camera rests (flat colours: nothing to do)."""
        if self.recolors is None:
            return
        with self._lock:
            recolor = Recolor(lambda **arrays: client.scene.add_gaussian_splats("/splats", **arrays),
                              self.shown, arrays=self.arrays)
            self.recolors[client.client_id] = recolor
        follow_camera(client, recolor)

    def disconnect(self, client) -> None:
        with self._lock:
            recolor = (self.recolors or {}).pop(client.client_id, None)
        if recolor is not None:
            recolor.stop()

    @property
    def url(self) -> str:
        host = self.server.get_host()
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "", "localhost") \
            else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self.server.get_port()}"

    def move_cameras(self, rec: Mapping) -> None:
        """Put the frustums where the workspace record (scene.json) has its cameras now (the
        poses that training refined)."""
        cams = wsp.cameras_from_record(rec)
        for i, im in enumerate(rec["images"]):
            frustum = self.frustums.get(im["name"])
            if frustum is not None:
                frustum.wxyz, frustum.position = _frustum_pose(cams.world_from_cam[i])

    def stop(self) -> None:
        with self._lock:
            recolors = list((self.recolors or {}).values())
        for recolor in recolors:
            recolor.stop()
        with _quiet(self.verbose):
            self.server.stop()


def follow_camera(client, recolor: Recolor) -> None:
    """Recolour for a browser's camera now, and whenever it moves."""
    recolor.moved(client.camera.position)
    client.camera.on_update(lambda camera: recolor.moved(camera.position))


def check_max_gaussians(max_gaussians: Optional[int]) -> None:
    if max_gaussians is not None and max_gaussians < 1:
        raise VoxsplatError(f"--max-gaussians {max_gaussians}: expected at least 1")


def serve(ws: Path, host: str = "127.0.0.1", port: int = 8080, max_gaussians: Optional[int] = None,
          verbose: bool = True, photos: bool = True, flat_colors: bool = False,
          sky: bool = True) -> Viewer:
    """Start a viser server showing the workspace (the next free port if `port` is taken);
    `photos`: show each view's photo on its frustum (loads the workspace's input);
    `flat_colors`: the DC colours only, never recoloured for the camera; `sky`: the run's
    learned sky, if it has one, as Gaussians on a far sphere (as `export --sky` writes it)."""
    check_max_gaussians(max_gaussians)
    rec = wsp.open_workspace(ws)
    splats = workspace_splats(ws, rec, sky)
    shown = workspace_photos(ws, rec) if photos else {}
    return serve_record(rec, splats, shown, host, port, max_gaussians, verbose, flat_colors)


def workspace_splats(ws: Path, rec: Mapping, sky: bool = True) -> dict:
    """The workspace's Gaussians (finite ones only, `finite_only`), with its learned sky as
    Gaussians on a far sphere where it has one and `sky`."""
    splats = finite_only(read_ply(wsp.splats_path(ws)), wsp.splats_path(ws))
    if sky and (Path(ws) / SKY_PT).is_file():
        from .pipeline import with_backdrop
        splats = with_backdrop(ws, rec, splats)
    return splats


@dataclass
class StartView:
    """Where a browser's camera starts: its position and target [3], up [3], vertical fov."""

    position: Tensor
    look_at: Tensor
    up: Tensor
    fov: float


def _serve(splats: Mapping[str, Tensor], start: StartView, host: str, port: int,
           max_gaussians: Optional[int], verbose: bool, flat_colors: bool) -> Viewer:
    """A viser server with the splats, recoloured for each browser's camera unless
    `flat_colors` (or SH degree 0); every new browser tab starts at `start`."""
    viser = _viser()
    check_listen(host, port)
    with _quiet(verbose):
        server = viser.ViserServer(host=host, port=port, verbose=verbose)
    shown = most_opaque(splats, max_gaussians)
    arrays = viewer_arrays(shown)
    handle = server.scene.add_gaussian_splats("/splats", **arrays)
    recolors = {} if not flat_colors and sh_degree_of(splats) > 0 else None
    viewer = Viewer(server, handle, {}, shown, arrays, recolors, max_gaussians, verbose)
    server.scene.set_up_direction(tuple(float(x) for x in start.up))

    @server.on_client_connect
    def _(client) -> None:
        client.camera.position = tuple(float(x) for x in start.position)
        client.camera.look_at = tuple(float(x) for x in start.look_at)
        client.camera.up_direction = tuple(float(x) for x in start.up)
        client.camera.fov = start.fov
        viewer.connect(client)

    server.on_client_disconnect(viewer.disconnect)
    return viewer


def serve_record(rec: Mapping, splats: Mapping[str, Tensor], photos: Mapping[str, np.ndarray],
                 host: str, port: int, max_gaussians: Optional[int] = None, verbose: bool = True,
                 flat_colors: bool = False) -> Viewer:
    """`serve` for a workspace record (scene.json), its Gaussians and its views' thumbnails:
    the cameras as frustums, the view starting at the first training camera."""
    cams = wsp.cameras_from_record(rec)
    train = [i for i, im in enumerate(rec["images"]) if im["split"] == "train"] or list(range(len(cams)))
    start = cams[train[:1]]
    target = focus_point(cams.cam_from_world[train])
    look_at = (target if target is not None else
               start.centers[0].double() + torch.linalg.inv(start.cam_from_world[0].double())[:3, 2])
    fov = 2 * math.atan(0.5 * float(start.heights[0]) / float(start.Ks[0, 1, 1]))
    viewer = _serve(splats, StartView(start.centers[0], look_at,
                                      estimate_up(cams.cam_from_world[train]), fov),
                    host, port, max_gaussians, verbose, flat_colors)
    centers = cams.centers.double()
    radius = float((centers - centers.mean(0)).norm(dim=1).max()) or 1.0
    for i, im in enumerate(rec["images"]):
        W, H = cams.size(i)
        fov = 2 * math.atan(0.5 * H / float(cams.Ks[i, 1, 1]))
        wxyz, position = _frustum_pose(cams.world_from_cam[i])
        frustum = viewer.server.scene.add_camera_frustum(
            f"/cameras/{im['name']}", fov=fov, aspect=W / H, scale=0.08 * radius, wxyz=wxyz,
            position=position, color=TRAIN_COLOR if i in train else TEST_COLOR,
            image=photos.get(im["name"]), format="jpeg")
        frustum.on_click(lambda event: go_to_view(event.client, event.target))
        viewer.frustums[im["name"]] = frustum
    return viewer


UP_AXES = {"+x": (1, 0, 0), "-x": (-1, 0, 0), "+y": (0, 1, 0), "-y": (0, -1, 0),
           "+z": (0, 0, 1), "-z": (0, 0, -1)}
"""`view FILE --up`: the axis that points up in the file's frame (-y: COLMAP's and 3DGS's)."""


def start_for_splats(splats: Mapping[str, Tensor], up: str = "-y") -> StartView:
    """A view of Gaussians without cameras: from 2.5 radii (the 80th percentile distance of
    the opaque ones from their median) behind their median along the first of z, y, x across
    `up`, a little above, looking at the median, 50 degrees high."""
    if up not in UP_AXES:
        raise VoxsplatError(f"--up {up}: use one of {', '.join(UP_AXES)}")
    means = splats["means"].double()
    opaque = means[torch.sigmoid(splats["opacities"].double()) > 0.5]
    pts = opaque if len(opaque) >= 10 else means
    center = pts.median(0).values
    radius = float(torch.quantile((pts - center).norm(dim=1)[:1_000_000], 0.8)) or 1.0
    u = torch.tensor(UP_AXES[up], dtype=torch.float64)
    back = next(torch.eye(3, dtype=torch.float64)[k] for k in (2, 1, 0) if float(u[k]) == 0)
    return StartView(center - 2.5 * radius * back + 0.5 * radius * u, center, u, math.radians(50))


def serve_file(path: Path, host: str = "127.0.0.1", port: int = 8080,
               max_gaussians: Optional[int] = None, verbose: bool = True,
               flat_colors: bool = False, up: str = "-y") -> Viewer:
    """Serve the Gaussians of a splat file (.ply, compressed .ply, .splat, .spz) alone."""
    from .export.read import read_splat_file
    check_max_gaussians(max_gaussians)
    splats = read_splat_file(path)
    if len(splats["means"]) == 0:
        raise VoxsplatError(f"{path}: holds no Gaussians")
    splats = finite_only(splats, path)
    return _serve(splats, start_for_splats(splats, up), host, port, max_gaussians, verbose,
                  flat_colors)


def run_view(ws: Path, host: str = "127.0.0.1", port: int = 8080,
             max_gaussians: Optional[int] = None, photos: bool = True,
             flat_colors: bool = False, up: Optional[str] = None, sky: bool = True) -> None:
    """`voxsplat view`: a workspace, or a splat file (`up`: its up axis, default -y), served
    until Ctrl-C."""
    if Path(ws).is_dir():
        if up is not None:
            raise VoxsplatError("--up is for splat files; a workspace's cameras give its up")
        viewer = serve(ws, host, port, max_gaussians, verbose=False, photos=photos,
                       flat_colors=flat_colors, sky=sky)
    else:
        viewer = serve_file(Path(ws), host, port, max_gaussians, False, flat_colors, up or "-y")
    print(f"viewing {ws} at {viewer.url} (Ctrl-C stops)")
    serve_until_interrupted(viewer)


def serve_until_interrupted(viewer: Viewer) -> None:
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()


class LiveView:
    """`reconstruct --view`: the Gaussians in the browser while they train (the training's
    `on_step` callback). The server starts at the first step, once the workspace's cameras are
    written; the Gaussians are sent again at most every `every_s` seconds (time the training
    does not count). Frustums show no photos, which would mean loading the input twice."""

    def __init__(self, ws: Path, host: str = "127.0.0.1", port: int = 8080,
                 max_gaussians: Optional[int] = None, every_s: float = 2.0,
                 max_share: float = 0.2):
        _viser("--view", "; or drop --view")  # fail before training when viser is missing
        check_max_gaussians(max_gaussians)
        check_listen(host, port)
        if not 0 < max_share <= 1:
            raise VoxsplatError(f"max_share {max_share}: expected a fraction in (0, 1]")
        self.ws, self.host, self.port = Path(ws), host, port
        self.max_gaussians, self.every_s, self.max_share = max_gaussians, every_s, max_share
        self.viewer: Optional[Viewer] = None
        self._next = 0.0

    def __call__(self, step: int, info: Mapping) -> None:
        """Send the model's Gaussians, unless sent less than `every_s` seconds ago or sending
        would take more than `max_share` of the wall time (millions of Gaussians)."""
        start = time.monotonic()
        if self.viewer is not None and start < self._next:
            return
        with torch.no_grad():
            splats = {k: v.detach().cpu() for k, v in info["model"].bake().items()}
        if self.viewer is None:
            self.viewer = serve_record(wsp.open_workspace(self.ws), splats, {}, self.host,
                                       self.port, self.max_gaussians, verbose=False)
            print(f"\nviewing the training at {self.viewer.url}", file=sys.stderr)
        else:
            self.viewer.update(splats)
        now = time.monotonic()
        self._next = now + max(self.every_s, (now - start) * (1 / self.max_share - 1))

    def finish(self) -> None:
        """The trained Gaussians (splats.ply), served until Ctrl-C."""
        if self.viewer is None:  # no step ran (a finished run resumed): serve the workspace
            self.viewer = serve(self.ws, self.host, self.port, self.max_gaussians, verbose=False,
                                photos=False)
        else:  # as `voxsplat view` shows it: the sky too, the cameras as refined
            rec = wsp.open_workspace(self.ws)
            self.viewer.update(workspace_splats(self.ws, rec))
            self.viewer.move_cameras(rec)
        print(f"trained; viewing {self.ws} at {self.viewer.url} (Ctrl-C stops)")
        serve_until_interrupted(self.viewer)

    def stop(self) -> None:
        if self.viewer is not None:
            self.viewer.stop()
