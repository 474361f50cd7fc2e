"""A procedural synthetic scene: analytic textured primitives rendered by exact ray casting.

No third-party data. The world is z-up with every object inside a ball of radius ~1 at the
origin: a ground disc, a sphere, a yawed box and a capped cylinder. Colours are smooth 3D
procedural textures with Lambertian shading baked in (fixed light, view-independent), so a
reconstruction sees a static radiance field. Each view gets anti-aliased RGB, coverage alpha,
a mask and exact depth (camera z of the pixel-centre ray, OpenCV). A ground-truth triangle
mesh with vertex colours and a sparse SfM-like point cloud come with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from torch import Tensor

from .atomic import atomic_path
from .cameras import Cameras
from .errors import VoxsplatError
from .scene import Scene


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. All lengths are in scene units (objects fit in a radius ~1 ball)."""

    width: int = 160
    """Image width in pixels (default 160)."""
    height: int = 120
    """Image height in pixels (default 120)."""
    n_train: int = 40
    """Number of training views (default 40)."""
    n_test: int = 10
    """Number of held-out test views on the same orbit band (default 10)."""
    seed: int = 0
    """Seed for the orbit's azimuth offset, per-view radius jitter and point sampling."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """RGB in [0,1] behind the objects (default white)."""
    fov_x_deg: float = 50.0
    """Horizontal field of view in degrees (default 50)."""
    radius: float = 3.0
    """Mean camera distance from LOOK_AT, the orbit centre (default 3.0; +-3% per view)."""
    elevation_deg: tuple[float, float] = (15.0, 60.0)
    """Elevation band of the cameras above the ground plane, degrees (default 15-60)."""
    supersample: int = 2
    """Rays per pixel along each axis for anti-aliased colour (default 2, i.e. 4 rays)."""
    n_points: int = 10000
    """Size of the sparse point cloud sampled on surfaces seen by train views (default 10k)."""
    sky: bool = False
    """Behind the objects, a sky at infinity coloured by the ray's direction (`sky_color`)
    instead of `background`, like an outdoor photo: the images then have no masks."""

    def __post_init__(self) -> None:
        if self.width < 2 or self.height < 2:
            raise VoxsplatError(f"synthetic: image size {self.width}x{self.height} is too small; "
                                "use at least 2x2")
        if self.n_train < 1 or self.n_test < 0:
            raise VoxsplatError(f"synthetic: need n_train >= 1 and n_test >= 0, got "
                                f"{self.n_train} and {self.n_test}")
        if not 0.0 < self.fov_x_deg < 170.0:
            raise VoxsplatError(f"synthetic: fov_x_deg={self.fov_x_deg} must be in (0, 170)")
        if self.radius < 1.5:
            raise VoxsplatError(f"synthetic: radius={self.radius} puts cameras inside the "
                                "objects; use radius >= 1.5")
        lo, hi = self.elevation_deg
        if not 0.0 <= lo <= hi < 90.0:
            raise VoxsplatError(f"synthetic: elevation_deg={self.elevation_deg} must satisfy "
                                "0 <= low <= high < 90")
        if self.supersample < 1 or self.n_points < 0:
            raise VoxsplatError("synthetic: supersample must be >= 1 and n_points >= 0")


SYNTHETIC_PRESETS: dict[str, SyntheticConfig] = {
    "default": SyntheticConfig(),
    "sparse-view": SyntheticConfig(n_train=8),
    "tiny": SyntheticConfig(width=64, height=48, n_train=6, n_test=2, n_points=2000),
}
"""Named configurations: the demo default, a handful-of-photos variant, a test-sized one."""


@dataclass(frozen=True)
class SyntheticScene:
    """A generated scene with its ground truth.

    Attributes:
        scene: images (train first, then test), cameras, masks, points and splits.
        depths: C float32 tensors [H,W], camera z of the pixel-centre ray; 0 = background.
        alphas: C float32 tensors [H,W], fraction of the pixel's rays that hit an object.
        mesh: the same objects as triangles with baked vertex colours, in the scene frame.
    """

    scene: Scene
    depths: tuple[Tensor, ...]
    alphas: tuple[Tensor, ...]
    mesh: trimesh.Trimesh


# ---------------------------------------------------------------------------------------------
# The analytic layout (z-up world). Object ids: 0 ground disc, 1 sphere, 2 box, 3 cylinder.

GROUND_Z = -0.35
"""Height of the ground disc; every object stands on it."""
DISC_RADIUS = 0.9
SPHERE_CENTER = (-0.3, 0.25, GROUND_Z + 0.3)
SPHERE_RADIUS = 0.3
BOX_CENTER = (0.32, 0.22, GROUND_Z + 0.18)
BOX_HALF_SIZE = 0.18
BOX_YAW_DEG = 30.0
CYLINDER_XY = (0.0, -0.35)
CYLINDER_RADIUS = 0.17
CYLINDER_TOP_Z = 0.25
LOOK_AT = (0.0, 0.0, GROUND_Z + 0.2)
"""Point every camera looks at (the middle of the objects; optical axes meet here)."""
LIGHT_DIR = (0.5, -0.4, 0.75)
"""Direction towards the light (normalized when used)."""
_AMBIENT, _DIFFUSE = 0.35, 0.65
_EPS = 1e-6
_RAYS_PER_BATCH = 600_000


def _vec(values) -> Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _box_world_from_local() -> Tensor:
    """[3,3] rotation of the box about +z."""
    c, s = math.cos(math.radians(BOX_YAW_DEG)), math.sin(math.radians(BOX_YAW_DEG))
    return _vec([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _hit_sphere(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest positive ray parameter t [R] (inf on a miss) and outward normals [R,3]."""
    oc = origins - _vec(SPHERE_CENTER)
    a = (dirs * dirs).sum(-1)
    b = (oc * dirs).sum(-1)
    c = (oc * oc).sum(-1) - SPHERE_RADIUS**2
    disc = b * b - a * c
    root = torch.sqrt(disc.clamp(min=0.0))
    t = (-b - root) / a
    t = torch.where(t > _EPS, t, (-b + root) / a)
    t = torch.where((disc >= 0) & (t > _EPS), t, torch.full_like(t, math.inf))
    normals = (oc + t.nan_to_num(posinf=0.0)[:, None] * dirs) / SPHERE_RADIUS
    return t, normals


def _hit_box(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Slab test against the yawed cube; returns t [R] and outward normals [R,3]."""
    rot = _box_world_from_local()
    o_local = (origins - _vec(BOX_CENTER)) @ rot
    d_local = dirs @ rot
    d_safe = torch.where(d_local.abs() < 1e-12, torch.full_like(d_local, 1e-12), d_local)
    t1 = (-BOX_HALF_SIZE - o_local) / d_safe
    t2 = (BOX_HALF_SIZE - o_local) / d_safe
    t_near, axis = torch.minimum(t1, t2).max(-1)
    t_far = torch.maximum(t1, t2).min(-1).values
    hit = (t_near <= t_far) & (t_near > _EPS)
    t = torch.where(hit, t_near, torch.full_like(t_near, math.inf))
    n_local = torch.zeros_like(d_local)
    sign = -torch.sign(d_local.gather(1, axis[:, None]))
    n_local.scatter_(1, axis[:, None], sign)
    return t, n_local @ rot.T


def _hit_cylinder(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Vertical capped cylinder standing on the ground; returns t [R] and normals [R,3]."""
    oc = origins[:, :2] - _vec(CYLINDER_XY)
    dxy = dirs[:, :2]
    a = (dxy * dxy).sum(-1).clamp(min=1e-12)
    b = (oc * dxy).sum(-1)
    c = (oc * oc).sum(-1) - CYLINDER_RADIUS**2
    disc = b * b - a * c
    t_side = (-b - torch.sqrt(disc.clamp(min=0.0))) / a
    z_side = origins[:, 2] + t_side * dirs[:, 2]
    ok_side = (disc >= 0) & (t_side > _EPS) & (z_side >= GROUND_Z) & (z_side <= CYLINDER_TOP_Z)
    inf = torch.full_like(t_side, math.inf)
    t_side = torch.where(ok_side, t_side, inf)
    dz = torch.where(dirs[:, 2].abs() < 1e-12, torch.full_like(dirs[:, 2], 1e-12), dirs[:, 2])
    t_caps = []
    for z_cap in (CYLINDER_TOP_Z, GROUND_Z):
        t_cap = (z_cap - origins[:, 2]) / dz
        xy = oc + t_cap[:, None] * dxy
        ok = (t_cap > _EPS) & ((xy * xy).sum(-1) <= CYLINDER_RADIUS**2)
        t_caps.append(torch.where(ok, t_cap, inf))
    t = torch.stack([t_side, *t_caps], -1)
    t_min, which = t.min(-1)
    xy_hit = oc + t_side.nan_to_num(posinf=0.0)[:, None] * dxy
    n_side = torch.cat([xy_hit / CYLINDER_RADIUS, torch.zeros_like(t_side)[:, None]], -1)
    n_caps = _vec([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    normals = torch.where((which == 0)[:, None], n_side, n_caps[(which - 1).clamp(min=0)])
    return t_min, normals


def _hit_disc(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """The ground disc (two-sided plane z = GROUND_Z); normals are +z."""
    dz = torch.where(dirs[:, 2].abs() < 1e-12, torch.full_like(dirs[:, 2], 1e-12), dirs[:, 2])
    t = (GROUND_Z - origins[:, 2]) / dz
    xy = origins[:, :2] + t[:, None] * dirs[:, :2]
    ok = (t > _EPS) & ((xy * xy).sum(-1) <= DISC_RADIUS**2)
    t = torch.where(ok, t, torch.full_like(t, math.inf))
    return t, _vec([0.0, 0.0, 1.0]).expand_as(dirs)


_HIT_FNS = (_hit_disc, _hit_sphere, _hit_box, _hit_cylinder)


def cast_rays(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Intersect rays with the analytic objects.

    Args:
        origins: [R,3] ray origins, world frame.
        dirs: [R,3] ray directions (any length; t is measured in units of ``dirs``).

    Returns:
        t [R] of the nearest hit (inf on a miss), normals [R,3] (world), ids [R] int64
        (0 disc, 1 sphere, 2 box, 3 cylinder, -1 miss).
    """
    t_best = torch.full(origins.shape[:1], math.inf)
    normals = torch.zeros_like(origins)
    ids = torch.full(origins.shape[:1], -1, dtype=torch.int64)
    for obj_id, hit_fn in enumerate(_HIT_FNS):
        t, n = hit_fn(origins, dirs)
        closer = t < t_best
        t_best = torch.where(closer, t, t_best)
        normals = torch.where(closer[:, None], n, normals)
        ids = torch.where(closer, torch.full_like(ids, obj_id), ids)
    return t_best, normals, ids


# ---------------------------------------------------------------------------------------------
# Procedural textures (defined in 3D, world frame) and baked Lambertian shading.


def _soft(x: Tensor, sharpness: float = 3.0) -> Tensor:
    """Map [-1,1] to [0,1] with a soft step: smooth-ish checker edges."""
    return 0.5 + 0.5 * torch.tanh(sharpness * x)


def _mix(a, b, t: Tensor) -> Tensor:
    return _vec(a) + (_vec(b) - _vec(a)) * t[:, None]


def _albedo(points: Tensor, ids: Tensor) -> Tensor:
    """Base colour [R,3] in [0,1] of surface points [R,3] belonging to objects ids [R]."""
    out = torch.zeros_like(points)
    p = points[ids == 0]  # ground: soft checker on xy, darkening towards the rim
    check = torch.cos(math.pi * p[:, 0] / 0.2) * torch.cos(math.pi * p[:, 1] / 0.2)
    rim = 1.0 - 0.3 * ((p[:, :2] ** 2).sum(-1) / DISC_RADIUS**2)
    out[ids == 0] = _mix((0.88, 0.83, 0.72), (0.42, 0.48, 0.56), _soft(check)) * rim[:, None]
    q = points[ids == 1] - _vec(SPHERE_CENTER)  # sphere: latitude bands, longitude tint
    bands = _soft(torch.sin(2.0 * math.pi * q[:, 2] / 0.2))
    tint = 0.8 + 0.2 * torch.cos(torch.atan2(q[:, 1], q[:, 0]))
    out[ids == 1] = _mix((0.85, 0.2, 0.15), (0.95, 0.8, 0.2), bands) * tint[:, None]
    q = (points[ids == 2] - _vec(BOX_CENTER)) @ _box_world_from_local()  # box: 3D checker
    check = torch.sin(math.pi * q / 0.12).prod(-1)
    out[ids == 2] = _mix((0.15, 0.35, 0.8), (0.9, 0.9, 0.95), _soft(check))
    p = points[ids == 3]  # cylinder: stripes around the axis, brighter towards the top
    phi = torch.atan2(p[:, 1] - CYLINDER_XY[1], p[:, 0] - CYLINDER_XY[0])
    height = (p[:, 2] - GROUND_Z) / (CYLINDER_TOP_Z - GROUND_Z)
    stripes = _mix((0.2, 0.6, 0.3), (0.95, 0.9, 0.7), _soft(torch.sin(5.0 * phi)))
    out[ids == 3] = stripes * (0.75 + 0.25 * height)[:, None]
    return out


def sky_color(dirs: Tensor) -> Tensor:
    """Colour [R,3] of the synthetic sky along ray directions [R,3] (z up): deep blue at the
    zenith to pale at the horizon, a dim brown-green below it, bluer towards +x."""
    d = torch.nn.functional.normalize(dirs, dim=-1)
    up = d[:, 2]
    above = _mix((0.85, 0.88, 0.92), (0.2, 0.4, 0.85), up.clamp(0.0, 1.0).sqrt())
    below = _mix((0.6, 0.62, 0.55), (0.3, 0.28, 0.22), (-up).clamp(0.0, 1.0).sqrt())
    color = torch.where((up >= 0)[:, None], above, below)
    return (color * (1.0 + 0.15 * d[:, :1] * torch.tensor([[-1.0, 0.0, 1.0]]))).clamp(0.0, 1.0)


def surface_color(points: Tensor, normals: Tensor, ids: Tensor) -> Tensor:
    """Shaded colour [R,3] in [0,1]: albedo times (ambient + diffuse * max(0, n.l))."""
    light = torch.nn.functional.normalize(_vec(LIGHT_DIR), dim=0)
    lambert = (normals * light).sum(-1).clamp(min=0.0)
    return (_albedo(points, ids) * (_AMBIENT + _DIFFUSE * lambert)[:, None]).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Cameras and rendering.


def _look_at_z_up(eyes: Tensor, target: Tensor) -> Tensor:
    """[C,4,4] OpenCV cam_from_world looking from eyes [C,3] at target [3] with +z up."""
    fwd = torch.nn.functional.normalize(target - eyes, dim=-1)
    up = _vec([0.0, 0.0, 1.0]).expand_as(fwd)
    right = torch.nn.functional.normalize(torch.cross(fwd, up, dim=-1), dim=-1)
    down = torch.cross(fwd, right, dim=-1)
    rot = torch.stack([right, down, fwd], dim=1)
    cam_from_world = torch.eye(4).repeat(len(eyes), 1, 1)
    cam_from_world[:, :3, :3] = rot
    cam_from_world[:, :3, 3] = -(rot @ eyes[:, :, None])[:, :, 0]
    return cam_from_world


def _orbit_cameras(config: SyntheticConfig, gen: torch.Generator) -> Cameras:
    """Fibonacci-spread cameras on the elevation band, looking at LOOK_AT.

    Test views are spread evenly through the Fibonacci sequence (other positions on the same
    band, never duplicates of train views). Returns train cameras first, then test cameras.
    """
    n = config.n_train + config.n_test
    k = torch.arange(n, dtype=torch.float64)
    lo, hi = (math.sin(math.radians(e)) for e in config.elevation_deg)
    sin_el = lo + (k + 0.5) / n * (hi - lo)  # area-uniform in elevation
    az0 = float(torch.rand(1, generator=gen, dtype=torch.float64)) * 2.0 * math.pi
    az = az0 + k * math.pi * (3.0 - math.sqrt(5.0))  # golden angle
    jitter = 1.0 + 0.06 * (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5)
    cos_el = torch.sqrt(1.0 - sin_el**2)
    eyes = torch.stack([cos_el * torch.cos(az), cos_el * torch.sin(az), sin_el], -1)
    eyes = (eyes * (config.radius * jitter)[:, None]).float() + _vec(LOOK_AT)
    test = sorted({min(n - 1, int((j + 0.5) * n / config.n_test)) for j in range(config.n_test)})
    train = [i for i in range(n) if i not in set(test)]
    order = train + test
    focal = 0.5 * config.width / math.tan(math.radians(config.fov_x_deg) / 2.0)
    K = _vec([[focal, 0.0, config.width / 2.0], [0.0, focal, config.height / 2.0],
              [0.0, 0.0, 1.0]])
    cams = Cameras(_look_at_z_up(eyes[order], _vec(LOOK_AT)), K.repeat(n, 1, 1),
                   torch.full((n,), config.width, dtype=torch.int64),
                   torch.full((n,), config.height, dtype=torch.int64))
    return cams


def pixel_rays(cam_from_world: Tensor, K: Tensor, px: Tensor) -> tuple[Tensor, Tensor]:
    """World rays through pixel positions, scaled so that t equals camera z (depth).

    Args:
        cam_from_world: [4,4] OpenCV world-to-camera transform.
        K: [3,3] intrinsics (pixel centres at half-integers).
        px: [R,2] pixel coordinates (u, v); the centre of pixel (i, j) is (i + 0.5, j + 0.5).

    Returns:
        origins [R,3] and directions [R,3] in the world frame; directions have camera z = 1.
    """
    rot, trans = cam_from_world[:3, :3], cam_from_world[:3, 3]
    d_cam = torch.stack([(px[:, 0] - K[0, 2]) / K[0, 0], (px[:, 1] - K[1, 2]) / K[1, 1],
                         torch.ones_like(px[:, 0])], -1)
    center = -(rot.T @ trans)
    return center.expand_as(d_cam), d_cam @ rot


def _render_views(cams: Cameras, indices: list[int], config: SyntheticConfig) -> list[dict]:
    """Ray-cast views of one size in a single batch.

    Each pixel gets its centre ray (depth, mask, points) and S x S sub-pixel rays (colour,
    alpha). Batching keeps the number of torch ops small, which matters on busy CPUs.

    Returns:
        Per view: rgb [H,W,3], alpha [H,W], depth [H,W], and the centre-ray hits' points
        [P,3], normals [P,3] and ids [P].
    """
    W, H = cams.size(indices[0])
    S = config.supersample
    jj, ii = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    centers = torch.stack([ii, jj], -1).reshape(-1, 2).float() + 0.5
    offsets = (torch.arange(S, dtype=torch.float32) + 0.5) / S - 0.5
    shifts = torch.cat([torch.zeros(1, 2), torch.cartesian_prod(offsets, offsets)])
    px = (centers[None] + shifts[:, None]).reshape(-1, 2)  # [(1+S*S)*H*W, 2]
    rays = [pixel_rays(cams.cam_from_world[i], cams.Ks[i], px) for i in indices]
    origins, dirs = torch.cat([r[0] for r in rays]), torch.cat([r[1] for r in rays])
    t, normals, ids = cast_rays(origins, dirs)
    hit = ids >= 0
    points = origins + t.nan_to_num(posinf=0.0)[:, None] * dirs
    color = (sky_color(dirs) if config.sky
             else _vec(config.background).expand(len(origins), 3).clone())
    color[hit] = surface_color(points[hit], normals[hit], ids[hit])
    shape = (len(indices), 1 + S * S, H * W)
    t, hit, ids = t.reshape(shape), hit.reshape(shape), ids.reshape(shape)
    color, points, normals = (x.reshape(*shape, 3) for x in (color, points, normals))
    views = []
    for v in range(len(indices)):
        centre_hit = hit[v, 0]
        views.append({
            "rgb": color[v, 1:].mean(0).reshape(H, W, 3),
            "alpha": hit[v, 1:].float().mean(0).reshape(H, W),
            "depth": torch.where(centre_hit, t[v, 0], torch.zeros_like(t[v, 0])).reshape(H, W),
            "points": points[v, 0][centre_hit], "normals": normals[v, 0][centre_hit],
            "ids": ids[v, 0][centre_hit]})
    return views


# ---------------------------------------------------------------------------------------------
# Ground-truth mesh.


def _grid_faces(n_u: int, n_v: int) -> np.ndarray:
    """Faces [2*n_u*n_v,3] of a (n_u+1) x (n_v+1) vertex grid indexed u-major."""
    i, j = np.meshgrid(np.arange(n_u), np.arange(n_v), indexing="ij")
    a = (i * (n_v + 1) + j).ravel()
    b, c, d = a + (n_v + 1), a + (n_v + 2), a + 1
    return np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)])


def _polar_patch(radius: float, n_rings: int, n_sectors: int) -> tuple[np.ndarray, np.ndarray]:
    """A flat disc in the xy plane: vertices [V,3] (centre first) and faces [F,3]."""
    r = radius * np.arange(1, n_rings + 1) / n_rings
    phi = 2.0 * np.pi * np.arange(n_sectors + 1) / n_sectors  # seam duplicated
    rr, pp = np.meshgrid(r, phi, indexing="ij")
    verts = np.stack([rr * np.cos(pp), rr * np.sin(pp), np.zeros_like(rr)], -1).reshape(-1, 3)
    verts = np.concatenate([np.zeros((1, 3)), verts])
    ring = _grid_faces(n_rings - 1, n_sectors) + 1
    fan = np.stack([np.zeros(n_sectors, int), np.arange(n_sectors) + 1,
                    np.arange(n_sectors) + 2], -1)
    return verts, np.concatenate([fan, ring])


def _box_part(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cube faces as separate n x n grids (vertices not shared, so colours stay per face)."""
    verts, faces, normals = [], [], []
    s = np.linspace(-BOX_HALF_SIZE, BOX_HALF_SIZE, n + 1)
    uu, vv = (g.ravel() for g in np.meshgrid(s, s, indexing="ij"))
    for axis in range(3):
        for sign in (-1.0, 1.0):
            v = np.zeros((len(uu), 3))
            v[:, axis] = sign * BOX_HALF_SIZE
            v[:, (axis + 1) % 3], v[:, (axis + 2) % 3] = uu, vv
            faces.append(_grid_faces(n, n) + sum(len(x) for x in verts))
            verts.append(v)
            normals.append(np.tile(np.eye(3)[axis] * sign, (len(v), 1)))
    rot = _box_world_from_local().double().numpy()
    verts = np.concatenate(verts) @ rot.T + np.array(BOX_CENTER)
    return verts, np.concatenate(faces), np.concatenate(normals) @ rot.T


def _cylinder_part(n_sectors: int, n_z: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Side grid plus two polar caps, vertices [V,3], faces [F,3], normals [V,3]."""
    phi = 2.0 * np.pi * np.arange(n_sectors + 1) / n_sectors
    z = np.linspace(GROUND_Z, CYLINDER_TOP_Z, n_z + 1)
    pp, zz = (g.ravel() for g in np.meshgrid(phi, z, indexing="ij"))
    n_side = np.stack([np.cos(pp), np.sin(pp), np.zeros_like(pp)], -1)
    side = n_side * CYLINDER_RADIUS + np.array([*CYLINDER_XY, 0.0]) + zz[:, None] * [0, 0, 1]
    parts = [(side, _grid_faces(n_sectors, n_z), n_side)]
    cap, cap_faces = _polar_patch(CYLINDER_RADIUS, 8, n_sectors)
    for z_cap, nz in ((CYLINDER_TOP_Z, 1.0), (GROUND_Z, -1.0)):
        parts.append((cap + np.array([*CYLINDER_XY, z_cap]), cap_faces,
                      np.tile([0.0, 0.0, nz], (len(cap), 1))))
    return _concat_parts(parts)


def _concat_parts(parts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate (vertices, faces, normals) triples, offsetting face indices."""
    offsets = np.cumsum([0] + [len(v) for v, _, _ in parts[:-1]])
    return (np.concatenate([v for v, _, _ in parts]),
            np.concatenate([f + off for (_, f, _), off in zip(parts, offsets)]),
            np.concatenate([n for _, _, n in parts]))


def _orient(verts: np.ndarray, faces: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Flip faces whose winding disagrees with the analytic vertex normals."""
    tri = verts[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = (face_n * normals[faces].mean(1)).sum(-1) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces


def make_ground_truth_mesh() -> trimesh.Trimesh:
    """The objects as one triangle mesh (scene frame) with shaded colours at the vertices."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=SPHERE_RADIUS)
    s_verts = np.asarray(sphere.vertices) + np.array(SPHERE_CENTER)
    disc, disc_faces = _polar_patch(DISC_RADIUS, 40, 160)
    parts = [(disc + [0.0, 0.0, GROUND_Z], disc_faces, np.tile([0.0, 0.0, 1.0], (len(disc), 1))),
             (s_verts, np.asarray(sphere.faces), np.asarray(sphere.vertices) / SPHERE_RADIUS),
             _box_part(24), _cylinder_part(128, 24)]
    ids = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)])
    verts, faces, normals = _concat_parts(parts)
    colors = surface_color(torch.from_numpy(verts).float(), torch.from_numpy(normals).float(),
                           torch.from_numpy(ids))
    rgba = np.concatenate([np.round(colors.numpy() * 255.0), np.full((len(verts), 1), 255.0)], 1)
    return trimesh.Trimesh(verts, _orient(verts, faces, normals), vertex_normals=normals,
                           vertex_colors=rgba.astype(np.uint8), process=False)


# ---------------------------------------------------------------------------------------------
# Entry points.


def make_synthetic_scene(config: SyntheticConfig = SyntheticConfig()) -> SyntheticScene:
    """Generate the synthetic scene, its ground-truth depth and mesh, and a point cloud.

    Args:
        config: sizes, view counts, seed and background.

    Returns:
        SyntheticScene whose ``scene`` has splits "train" (first n_train images) and "test".
    """
    gen = torch.Generator().manual_seed(config.seed)
    cams = _orbit_cameras(config, gen)
    names = ([f"train_{i:03d}" for i in range(config.n_train)]
             + [f"test_{i:03d}" for i in range(config.n_test)])
    images, masks, depths, alphas, hits = [], [], [], [], []
    W, H = cams.size(0)
    chunk = max(1, _RAYS_PER_BATCH // ((1 + config.supersample**2) * W * H))
    for start in range(0, len(cams), chunk):
        indices = list(range(start, min(start + chunk, len(cams))))
        for i, view in zip(indices, _render_views(cams, indices, config)):
            images.append((view["rgb"] * 255.0).round().clamp(0, 255).to(torch.uint8))
            depths.append(view["depth"])
            masks.append(view["depth"] > 0)
            alphas.append(view["alpha"])
            if i < config.n_train:
                hits.append(view)
    points, point_colors = _sample_points(hits, config.n_points, gen)
    scene = Scene(images=tuple(images), names=tuple(names), cameras=cams,
                  masks=None if config.sky else tuple(masks),
                  points=points, point_colors=point_colors,
                  splits={"train": tuple(range(config.n_train)),
                          "test": tuple(range(config.n_train, len(cams)))},
                  background=tuple(float(c) for c in config.background), source="synthetic")
    return SyntheticScene(scene, tuple(depths), tuple(alphas), make_ground_truth_mesh())


def _sample_points(views: list[dict], n_points: int,
                   gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Pick n_points of the surface points hit by train pixel-centre rays, with colours."""
    points = torch.cat([v["points"] for v in views])
    choice = torch.randperm(len(points), generator=gen)[:n_points]
    normals = torch.cat([v["normals"] for v in views])[choice]
    ids = torch.cat([v["ids"] for v in views])[choice]
    points = points[choice]
    return points.float(), surface_color(points, normals, ids).float()


def save_ground_truth(synth: SyntheticScene, out_dir: str | Path) -> Path:
    """Write ``out_dir/mesh.ply`` and ``out_dir/depth/<name>.npy`` (float32 [H,W]), atomically.

    Returns:
        out_dir as a Path.
    """
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "mesh.ply") as tmp:
        synth.mesh.export(tmp, file_type="ply")
    for name, depth in zip(synth.scene.names, synth.depths):
        with atomic_path(out_dir / "depth" / f"{name}.npy") as tmp:
            np.save(tmp, depth.numpy().astype(np.float32))
    return out_dir
