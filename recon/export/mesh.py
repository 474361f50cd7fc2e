"""Triangle meshes from trained Gaussians: render depth and colour, fuse, extract, clean, write.

Two meshers share the rendering and the cleanup (`MeshConfig.mesher`):

- ``"tsdf"``: TSDF fusion on a sparse voxel grid (``tsdf.py``, pure PyTorch, CUDA or CPU) and
  marching cubes (scikit-image). Never imports open3d.
- ``"poisson"``: screened Poisson reconstruction of the rendered points through open3d, which
  is imported lazily inside ``poisson_mesh`` only.

Depth is the rasterizer's alpha-normalized expected depth, rendered with sharpened opacities
(``MeshConfig.opacity_power``), from the training views plus extra views between neighbouring
training cameras. A pixel is a surface sample where the rendered alpha is high, its depth is
not a blend of a nearer and a farther surface (``blend_offset``), and the scene's mask, when
it has one, is True; it carves free space where the alpha is low or the mask is False. Open
TSDF meshes keep only faces some view has a depth sample near; closed ones
(``MeshConfig.closed``) count unseen space as inside, so every surface closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np
import torch
import trimesh
from torch import Tensor

from ...data.atomic import atomic_path
from ...data.cameras import Cameras
from ...data.errors import VoxsplatError
from ...render.camera_paths import interpolate_path
from ...render.rasterize import rasterize
from ...render.sh import view_colors
from ..gaussians import render_splats, sh_degree_of
from .tsdf import backproject, extract_mesh, fuse_depth_maps

MESH_SUFFIXES = (".ply", ".obj", ".glb")
"""File types `write_mesh` writes (all with vertex colours)."""


@dataclass(frozen=True)
class MeshConfig:
    """How to turn Gaussians into a mesh. Lengths are in scene units."""

    mesher: Literal["tsdf", "poisson"] = "tsdf"
    """tsdf: sparse TSDF fusion + marching cubes; poisson: open3d's Poisson on rendered points."""
    voxel_size: Optional[float] = None
    """TSDF voxel edge (and Poisson point spacing). None: the footprint of one rendered pixel
    at the median camera distance from the scene centre."""
    trunc_voxels: float = 4.0
    """TSDF truncation distance in voxels (default 4)."""
    render_scale: float = 1.0
    """Rendered size / training image size (default 1)."""
    extra_views: Optional[int] = None
    """Views added between neighbouring training cameras. None: one per training view."""
    opacity_power: float = 4.0
    """Opacities o render as 1 - (1 - o)^k for meshing (default 4). Trained Gaussians form a
    layer a few voxels thick; this moves the blended (expected) depth from the middle of that
    layer towards its front, where the surface is (k = 1: the plain expected depth)."""
    alpha_surface: float = 0.5
    """Rendered alpha above which a pixel's depth is integrated as surface (default 0.5)."""
    alpha_free: float = 0.05
    """Rendered alpha below which a pixel carves free space (default 0.05)."""
    max_blend_offset: float = 0.02
    """A pixel is no surface sample where its depth lies more than this fraction of it from
    the depth most of its blend sits at (``blend_offset``): it blends a nearer and a farther
    surface (an edge, or what is seen through leaves), and its expected depth lies between
    them, in mid-air (default 0.02; 0 keeps every pixel: `export --keep-blended`).
    Measured (``bench/depth_spread.py``): on the demo, the surface pixels more than 5% off
    the true depth fall from 1.0% to 0.12%, and 2.0% of the pixels, along edges, are left
    out; of those, other views confirm 20% and contradict 79% (they would float in front of
    what a view renders), against 99.6% and 0.3% of the pixels kept. Lego's 8 views (the
    voxel model) lose 5.6% (contradicted 46% against 2.4%); fern's 17 photos, dense, lose 34%:
    much of the background seen between the fronds (contradicted 33% against 1.0%).
    Its moments ride in the colour render's channels: +8% render time on the demo, on 2 CPU
    cores and on an H100 (``bench/export_passes.py``)."""
    support_voxels: float = 1.5
    """A TSDF face is kept only if some view has a depth sample within this many voxels of one
    of its vertices; those views also give the vertex colours (default 1.5)."""
    closed: bool = False
    """Close every surface: voxels no view observes count as inside (see
    ``tsdf.extract_mesh``); for objects captured from around with masks. Off: open surfaces
    end where observation ends, and faces without depth support are dropped."""
    min_weight: float = 2.0
    """Voxels observed fewer times count as unobserved in marching cubes (default 2)."""
    min_component: float = 0.02
    """Connected components with fewer faces than this fraction of the largest are dropped."""
    smooth_iterations: int = 5
    """Taubin smoothing iterations after extraction (volume-preserving; default 5, 0: none)."""
    faces: Optional[int] = None
    """Decimate to about this many faces (needs fast-simplification). None: keep all."""
    poisson_depth: int = 9
    """Octree depth of the Poisson reconstruction (default 9)."""
    max_blocks: int = 1_000_000
    """Memory guard: most TSDF blocks of 8^3 voxels (4 KB each)."""

    def __post_init__(self) -> None:
        if self.mesher not in ("tsdf", "poisson"):
            raise VoxsplatError(f"unknown mesher '{self.mesher}'; use --mesher tsdf or poisson")
        if self.voxel_size is not None and not 0 < self.voxel_size < float("inf"):
            raise VoxsplatError(f"--voxel-size must be > 0 and finite, got {self.voxel_size}")
        if self.faces is not None and self.faces < 4:
            raise VoxsplatError(f"--faces must be at least 4, got {self.faces}")
        if not (self.trunc_voxels > 0 and self.render_scale > 0 and self.opacity_power >= 1
                and self.max_blend_offset >= 0):
            raise VoxsplatError("mesh: trunc_voxels and render_scale must be > 0, "
                                "opacity_power >= 1 and max_blend_offset >= 0")


@dataclass
class RenderedViews:
    """What the meshers consume, for C views on one canvas.

    Attributes:
        cameras: the C cameras (at the rendered size; widths and heights = the canvas: views
            of different sizes sit at its top-left, the rest is neither surface nor free), on
            the render device.
        depths: [C,H,W] expected camera z.
        colors: [C,H,W,3] RGB in [0,1], un-premultiplied by alpha.
        surface: [C,H,W] bool, pixels whose depth is a surface sample.
        free: [C,H,W] bool, pixels that see empty space.
    """

    cameras: Cameras
    depths: Tensor
    colors: Tensor
    surface: Tensor
    free: Tensor


def scene_center(splats: dict) -> Tensor:
    """[3] median centre of the opaque Gaussians (all of them if none is opaque)."""
    means = splats["means"].detach()
    opaque = torch.sigmoid(splats["opacities"].detach()) > 0.5
    return (means[opaque] if opaque.sum() > 10 else means).median(0).values


def extra_cameras(cameras: Cameras, n: int) -> Optional[Cameras]:
    """`n` views halfway between training cameras (cycled through) and their nearest
    neighbours, or None.

    They stay inside the captured range (orbits and forward-facing captures alike).
    """
    C = len(cameras)
    if n <= 0 or C < 2:
        return None
    centers = cameras.centers
    dist = torch.cdist(centers, centers) + torch.eye(C, device=centers.device) * 1e9
    nearest = dist.argmin(1).cpu()
    idx = (torch.arange(n) % C).tolist()
    poses = [interpolate_path(cameras.cam_from_world[[i, int(nearest[i])]].cpu(), 3)[1] for i in idx]
    return Cameras(torch.stack(poses).to(cameras.cam_from_world), cameras.Ks[idx],
                   cameras.widths[idx], cameras.heights[idx])


def default_voxel_size(cameras: Cameras, center: Tensor) -> float:
    """Footprint of one pixel of `cameras` at their median distance from `center`."""
    dist = (cameras.centers - center.to(cameras.device)).norm(dim=-1).median()
    focal = cameras.Ks[:, :2, :2].diagonal(dim1=-2, dim2=-1).mean()
    return float(dist / focal)


def sharpened(splats: dict, opacity_power: float) -> dict:
    """`splats` with opacities o turned into 1 - (1 - o)^k (``MeshConfig.opacity_power``)."""
    if opacity_power == 1:
        return splats
    opacity = 1 - (1 - torch.sigmoid(splats["opacities"])) ** opacity_power
    return {**splats, "opacities": torch.logit(opacity.clamp(1e-6, 1 - 1e-6))}


@torch.no_grad()
def render_view(splats: dict, camera: Cameras, mask: Optional[Tensor], cfg: MeshConfig,
                backend: str = "auto") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Depth [H,W], colour [H,W,3] (alpha-normalized), surface and free [H,W] bool of one view,
    from one render (its colour channels carry the depth's moments too, for ``blend_offset``).

    Args:
        splats: Gaussians (raw parameters, already `sharpened`) on the render device.
        camera: one camera, rendered at its size.
        mask: None or a bool [h,w] mask at any size (nearest resize): False pixels are free.
        cfg: alpha thresholds.
    """
    W, H = camera.size(0)
    if cfg.max_blend_offset > 0:
        alpha, depth, color, moments = _blend_render(splats, camera, backend, color=True)
    else:
        out = render_splats(splats, camera, sh_degree_of(splats), None, backend)
        alpha, depth, color = out.alphas[0, ..., 0], out.depths[0, ..., 0], out.colors[0]
    color = (color / alpha.clamp_min(1e-6)[..., None]).clamp(0, 1)
    surface, free = alpha > cfg.alpha_surface, alpha < cfg.alpha_free
    if cfg.max_blend_offset > 0:
        surface &= offset_of_moments(*moments) <= cfg.max_blend_offset * depth
    if mask is not None:
        mask = torch.nn.functional.interpolate(mask[None, None].float().to(alpha.device),
                                               size=(H, W), mode="nearest")[0, 0] > 0.5
        surface, free = surface & mask, free | ~mask
    return depth, color, surface, free


def _blend_render(splats: dict, camera: Cameras, backend: str, color: bool
                  ) -> tuple[Tensor, Tensor, Optional[Tensor], tuple[Tensor, Tensor]]:
    """One render of one view: alpha [H,W], expected depth [H,W], the colour [H,W,3] (not
    alpha-normalized; None unless `color`), and the standard deviation and third central moment
    [H,W] of the camera z of the Gaussians blended into each pixel, weighted as the expected
    depth weighs them (0 where nothing is rendered).

    z, z^2 and z^3 are rendered as three more colour channels; z is taken from the median
    Gaussian's first, so that the moments of a scene far from its origin keep their float32
    precision."""
    W, H = camera.size(0)
    cam_from_world = camera.cam_from_world.to(splats["means"])
    z = splats["means"] @ cam_from_world[0, 2, :3] + cam_from_world[0, 2, 3]
    z = z - (z.median() if len(z) else 0)
    features = [z[:, None], (z * z)[:, None], (z * z * z)[:, None]]
    if color:
        coeffs = torch.cat([splats["sh0"], splats["shN"]], 1)
        features.insert(0, view_colors(splats["means"], coeffs, cam_from_world,
                                       sh_degree_of(splats))[0])
    out = rasterize(splats["means"], splats["quats"], torch.exp(splats["scales"]),
                    torch.sigmoid(splats["opacities"]), torch.cat(features, 1),
                    camera.cam_from_world, camera.Ks, W, H, backend=backend)
    alpha = out.alphas[0, ..., 0]
    m1, m2, m3 = (out.colors[0, ..., -3:] / alpha.clamp_min(1e-6)[..., None]).unbind(-1)
    moments = (m2 - m1 * m1).clamp_min(0).sqrt(), m3 - 3 * m1 * m2 + 2 * m1 ** 3
    return alpha, out.depths[0, ..., 0], out.colors[0, ..., :3] if color else None, moments


def depth_moments(splats: dict, camera: Cameras, backend: str = "auto") -> tuple[Tensor, Tensor]:
    """Standard deviation [H,W] and third central moment [H,W] of the camera z of the
    Gaussians blended into each pixel of one view, weighted as the expected depth weighs them
    (0 where nothing is rendered)."""
    return _blend_render(splats, camera, backend, color=False)[3]


def blend_offset(splats: dict, camera: Cameras, backend: str = "auto") -> Tensor:
    """[H,W] how far each pixel's expected depth lies from the depth that most of its weight
    sits at, where its blend is two surfaces (one view).

    A pixel at an edge blends a nearer and a farther surface, weights 1-w and w: its expected
    depth lies w times their gap from the surface of weight 1-w. The blend's standard
    deviation and skewness give w and the gap. The offset is s * (sqrt(g^2 + 4) - |g|) / 2 for
    a standard deviation s and skewness g: s where the two surfaces weigh the same, and small
    where a faint one (a floater far in front) skews the blend. A single blurred layer
    (unskewed) counts as its standard deviation."""
    return offset_of_moments(*depth_moments(splats, camera, backend))


def offset_of_moments(std: Tensor, mu3: Tensor) -> Tensor:
    """`blend_offset` of a standard deviation and third central moment (`depth_moments`)."""
    m = mu3.abs() / (std * std).clamp_min(1e-20)
    return 2 * std * std / ((m * m + 4 * std * std).sqrt() + m).clamp_min(1e-20)


@torch.no_grad()
def render_views(splats: dict, cameras: Cameras, masks: Optional[Sequence[Optional[Tensor]]],
                 cfg: MeshConfig, backend: str = "auto", progress: bool = False) -> RenderedViews:
    """Render depth, colour and alpha of `splats` into every camera (one at a time).

    Args:
        splats: Gaussians (raw parameters) on the render device.
        cameras: C cameras (already scaled to the render size), each rendered at its size.
        masks: None, or per camera None or a bool [h,w] mask at any size (nearest resize).
        cfg: alpha thresholds.
        backend: rasterizer backend.
        progress: a progress bar over the views.
    """
    dev = splats["means"].device
    cameras = cameras.to(dev)
    splats = sharpened(splats, cfg.opacity_power)
    Wc, Hc = int(cameras.widths.max()), int(cameras.heights.max())
    C = len(cameras)
    depths = torch.zeros(C, Hc, Wc, device=dev)
    colors = torch.zeros(C, Hc, Wc, 3, device=dev)
    surface = torch.zeros(C, Hc, Wc, dtype=torch.bool, device=dev)
    free = torch.zeros_like(surface)
    for i in _views(C, progress):
        W, H = cameras.size(i)
        m = None if masks is None or i >= len(masks) else masks[i]
        depths[i, :H, :W], colors[i, :H, :W], surface[i, :H, :W], free[i, :H, :W] = render_view(
            splats, cameras[i], m, cfg, backend)
    return RenderedViews(cameras.with_size(Wc, Hc), depths, colors, surface, free)


def _views(count: int, progress: bool):
    if not progress:
        return range(count)
    from tqdm.auto import tqdm
    return tqdm(range(count), desc="render", unit="view", leave=False)


def tsdf_mesh(views: RenderedViews, voxel_size: float, cfg: MeshConfig) -> trimesh.Trimesh:
    """Fuse the rendered views on a sparse TSDF grid and extract its zero level set, coloured.

    Faces with a vertex that no view has a depth sample near (within ``support_voxels``) are
    dropped: they are not seen surface but the border between carved space and the unseen
    band behind a thin sheet (e.g. a skirt under the rim of a ground disc: 4.6% of the demo
    mesh's area, 3.3 voxels deep, where one supported vertex of three kept a face; 2.6% with
    all three, the seen surface as complete).
    """
    cams, trunc = views.cameras, cfg.trunc_voxels * voxel_size
    vol = fuse_depth_maps(views.depths, cams.cam_from_world, cams.Ks, voxel_size, trunc,
                          views.surface, views.free, cfg.max_blocks)
    verts, faces = extract_mesh(vol, cfg.min_weight, cfg.closed)
    mesh = _trimesh(verts, faces, np.full((len(verts), 3), 0.5))
    if len(mesh.vertices):
        verts = torch.from_numpy(mesh.vertices).to(views.depths)
        colors, support = vertex_colors(verts, views, cfg.support_voxels * voxel_size)
        mesh.visual.vertex_colors = _rgba(colors.cpu().numpy())
        if not cfg.closed:
            mesh.update_faces((support.cpu().numpy()[mesh.faces] > 0).all(1))
            mesh.remove_unreferenced_vertices()
    return mesh


@torch.no_grad()
def vertex_colors(verts: Tensor, views: RenderedViews, tol: float) -> tuple[Tensor, Tensor]:
    """Mean rendered colour [V,3] of vertices `verts [V,3]` over the views that see them, and
    the number of such views [V].

    A view sees a vertex when it projects onto a surface pixel whose depth is within `tol`
    of the vertex's camera z; vertices no view sees are grey.
    """
    cams = views.cameras
    total = torch.zeros_like(verts)
    count = torch.zeros_like(verts[:, 0])
    H, W = views.depths.shape[1:]
    for c in range(len(cams)):
        p = verts @ cams.cam_from_world[c, :3, :3].T + cams.cam_from_world[c, :3, 3]
        z = p[:, 2].clamp_min(1e-6)
        K = cams.Ks[c]
        u = torch.floor(p[:, 0] / z * K[0, 0] + K[0, 2]).long()
        v = torch.floor(p[:, 1] / z * K[1, 1] + K[1, 2]).long()
        ok = (p[:, 2] > 1e-6) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        u, v = u.clamp(0, W - 1), v.clamp(0, H - 1)
        ok &= views.surface[c, v, u] & ((views.depths[c, v, u] - z).abs() < tol)
        total += views.colors[c, v, u] * ok[:, None]
        count += ok
    return torch.where(count[:, None] > 0, total / count.clamp_min(1)[:, None], 0.5), count


def _rgba(colors: np.ndarray) -> np.ndarray:
    """[V,4] uint8 RGBA of colours [V,3] in [0,1]."""
    rgb = np.round(np.clip(colors, 0, 1) * 255)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255)], 1).astype(np.uint8)


def _trimesh(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> trimesh.Trimesh:
    """A merged trimesh from vertices [V,3], faces [F,3] and vertex colours [V,3] in [0,1]."""
    mesh = trimesh.Trimesh(verts, faces, vertex_colors=_rgba(colors), process=False)
    mesh.merge_vertices()  # chunk borders: identical positions
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    return mesh


def rendered_points(views: RenderedViews) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Surface points [P,3], normals [P,3] (towards the camera), colours [P,3] of the views
    and the index [P] of the view each comes from.

    Normals come from the depth map's finite differences; pixels whose neighbours are not
    surface samples are skipped.
    """
    pts, nrm, col, ids = [], [], [], []
    cams = views.cameras
    for c in range(len(cams)):
        xyz = backproject(views.depths[c], cams.cam_from_world[c], cams.Ks[c])  # [H,W,3]
        du, dv = xyz[1:-1, 2:] - xyz[1:-1, :-2], xyz[2:, 1:-1] - xyz[:-2, 1:-1]
        n = torch.nn.functional.normalize(torch.cross(dv, du, dim=-1), dim=-1)
        s = views.surface[c]
        ok = s[1:-1, 1:-1] & s[1:-1, 2:] & s[1:-1, :-2] & s[2:, 1:-1] & s[:-2, 1:-1]
        p = xyz[1:-1, 1:-1][ok]
        n = n[ok]
        to_cam = cams.centers[c] - p
        n = torch.where(((n * to_cam).sum(-1) < 0)[:, None], -n, n)
        pts.append(p), nrm.append(n), col.append(views.colors[c, 1:-1, 1:-1][ok])
        ids.append(torch.full((len(p),), c, dtype=torch.long, device=p.device))
    return torch.cat(pts), torch.cat(nrm), torch.cat(col), torch.cat(ids)


def poisson_mesh(views: RenderedViews, voxel_size: float, cfg: MeshConfig) -> trimesh.Trimesh:
    """open3d's screened Poisson reconstruction of the rendered points (open3d imported here).

    Points are thinned to one per voxel; vertices of low Poisson density (the bottom 5%, far
    from any sample) and the part outside the points' bounding box are removed.
    """
    require_packages(cfg)
    import open3d as o3d
    pts, nrm, col = (x.double().cpu().numpy() for x in rendered_points(views)[:3])
    if len(pts) < 100:
        raise VoxsplatError("mesh: the renders show (almost) no surface; check the workspace")
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    pcd.normals, pcd.colors = o3d.utility.Vector3dVector(nrm), o3d.utility.Vector3dVector(col)
    pcd = pcd.voxel_down_sample(voxel_size)
    mesh, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        pcd, depth=cfg.poisson_depth)
    density = np.asarray(density)
    mesh.remove_vertices_by_mask(density < np.quantile(density, 0.05))
    box = pcd.get_axis_aligned_bounding_box()
    mesh = mesh.crop(o3d.geometry.AxisAlignedBoundingBox(box.min_bound - 2 * voxel_size,
                                                         box.max_bound + 2 * voxel_size))
    return _trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles),
                    np.asarray(mesh.vertex_colors) if mesh.has_vertex_colors()
                    else np.full((len(mesh.vertices), 3), 0.5))


def clean_mesh(mesh: trimesh.Trimesh, cfg: MeshConfig) -> trimesh.Trimesh:
    """Drop small components, smooth (Taubin) and decimate as `cfg` says."""
    if len(mesh.faces) == 0:
        return mesh
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, len(mesh.faces))
    sizes = np.bincount(labels)
    mesh.update_faces(sizes[labels] >= cfg.min_component * sizes.max())
    mesh.remove_unreferenced_vertices()
    if cfg.smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, iterations=cfg.smooth_iterations)
    if cfg.faces is not None and len(mesh.faces) > cfg.faces:
        mesh = decimate(mesh, cfg.faces)
    return mesh


def decimate(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """Quadric decimation to about `faces` faces; colours move to the nearest old vertex."""
    from scipy.spatial import cKDTree
    require_packages(MeshConfig(faces=faces))
    small = mesh.simplify_quadric_decimation(face_count=int(faces))
    _, nearest = cKDTree(mesh.vertices).query(small.vertices)
    small.visual.vertex_colors = mesh.visual.vertex_colors[nearest]
    return small


def require_packages(cfg: MeshConfig) -> None:
    """Fail early, naming the package to install, when `cfg` needs an optional one missing."""
    needs = []
    if cfg.faces is not None:
        needs.append(("fast_simplification", "--faces needs the fast-simplification package: "
                      "pip install fast-simplification (or leave --faces out)"))
    if cfg.mesher == "poisson":
        needs.append(("open3d", "--mesher poisson needs open3d: pip install open3d "
                      "(or use --mesher tsdf)"))
    for module, message in needs:
        try:
            __import__(module)
        except ImportError:
            raise VoxsplatError(message) from None


def write_mesh(path: Path, mesh: trimesh.Trimesh) -> Path:
    """Write `mesh` with vertex colours as .ply (binary), .obj or .glb (`glb_bytes`),
    atomically."""
    path = Path(path)
    suffix = check_mesh_suffix(path)
    with atomic_path(path) as tmp:
        if suffix == ".glb":
            tmp.write_bytes(glb_bytes(mesh))
        else:
            mesh.export(tmp, file_type=suffix[1:])
    return path


def glb_bytes(mesh: trimesh.Trimesh) -> bytes:
    """`mesh` as a binary glTF as the spec reads it: vertex colours (sRGB in .ply and .obj)
    converted to linear, which glTF's COLOR_0 is; a matte material (glTF's default one is
    metallic, which viewers such as three.js show dark); vertex normals. In the input's frame,
    as the other exports (glTF viewers take +Y as up)."""
    linear = mesh.copy()
    if linear.visual.kind == "vertex":
        rgba = np.asarray(mesh.visual.vertex_colors)
        srgb = rgba[:, :3] / 255.0
        rgb = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        linear.visual.vertex_colors = np.concatenate([np.round(rgb * 255), rgba[:, 3:]],
                                                     1).astype(np.uint8)

    def matte(tree: dict) -> None:
        tree["materials"] = [{"name": "vertex colours", "pbrMetallicRoughness": {
            "baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0,
            "roughnessFactor": 1.0}}]
        for m in tree.get("meshes", []):
            for primitive in m["primitives"]:
                primitive["material"] = 0

    return trimesh.exchange.gltf.export_glb(trimesh.Scene(linear), include_normals=True,
                                            tree_postprocessor=matte)


def check_mesh_suffix(path: Path) -> str:
    """The lower-case suffix of `path`, or a VoxsplatError naming the ones supported."""
    suffix = Path(path).suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise VoxsplatError(f"{path}: unknown mesh file type '{suffix}'; use "
                            f"{', '.join(MESH_SUFFIXES)}")
    return suffix


def _mesh_cameras(cameras: Cameras, cfg: MeshConfig) -> Cameras:
    """Training cameras plus the extra views, scaled to the render size."""
    if len(cameras) == 0:
        raise VoxsplatError("mesh: the workspace has no training cameras")
    scale = cfg.render_scale
    extra = extra_cameras(cameras, len(cameras) if cfg.extra_views is None else cfg.extra_views)
    cams = cameras if extra is None else Cameras.cat([cameras, extra])
    return cams.scaled(scale) if scale != 1 else cams


@torch.no_grad()
def mesh_from_splats(splats: dict, cameras: Cameras, cfg: MeshConfig = MeshConfig(),
                     masks: Optional[Sequence[Tensor]] = None,
                     backend: str = "auto", progress: bool = False) -> trimesh.Trimesh:
    """A cleaned, vertex-coloured mesh of the Gaussians' surfaces.

    Args:
        splats: Gaussians (raw parameters); rendering and fusion run on their device.
        cameras: C training cameras (OpenCV, scene frame), of one size or not.
        cfg: mesher and its options.
        masks: None, or C bool [H,W] masks of the training views (True = object).
        backend: rasterizer backend.
        progress: a progress bar over the rendered views.

    Returns:
        The mesh ([V,3] vertices, [F,3] faces, RGBA vertex colours) in the scene frame.

    Raises:
        VoxsplatError: nothing to mesh, too many blocks, or a missing optional package.
    """
    require_packages(cfg)
    cams = _mesh_cameras(cameras, cfg)
    footprint = default_voxel_size(cams, scene_center(splats))
    voxel = cfg.voxel_size or footprint
    views = render_views(splats, cams, masks, cfg, backend, progress)
    if not bool(views.surface.any()):
        raise VoxsplatError("mesh: no rendered pixel is opaque; the Gaussians are empty or "
                            "outside every camera")
    mesh = (tsdf_mesh if cfg.mesher == "tsdf" else poisson_mesh)(views, voxel, cfg)
    mesh = clean_mesh(mesh, cfg)
    if len(mesh.faces) == 0:  # (in the units of no frame: --voxel-size is the output's)
        raise VoxsplatError(f"mesh: no surface was extracted at this voxel size ({voxel / footprint:.3g} "
                            f"times the default, a rendered pixel's footprint); give a "
                            f"{'smaller' if voxel > footprint else 'larger'} --voxel-size, or none")
    return mesh
