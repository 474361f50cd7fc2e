"""The two trainable scene models behind one small interface, used by the engine.

- `ExplicitModel`: free 3D Gaussians, one Adam per parameter, the 3DGS grow/prune strategy.
- `VoxelModel`: `VoxelGaussians` (sparse voxels + spconv U-Net + head), Adam on the network
  and on the per-voxel parameters, the voxel grow/prune strategy.

Both: ``render(cams, sh_degree, bg, opacity_scale=None) -> (RasterOutput, raw params)``, ``update(step, out, W,
H, gen)`` after backward, ``bake()`` -> explicit Gaussians (raw form, detached),
``state_dict()``/``load_state_dict()`` for checkpoints, ``n_gaussians``, ``carve(outside)``
(space carving during training: `outside` maps centres [P,3] to [P] bool).
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import torch
from torch import Tensor

from ...data.scene import Scene
from ..config import TrainConfig
from ..gaussians import (_bounds_radius, auto_init_source, init_splats, knn_mean_dist, render_splats,
                         visual_hull_points)
from .. import distributed
from ..strategy import ops
from ..strategy.default import DefaultState, DefaultStrategy
from ..strategy.voxel import VoxelState, VoxelStrategy, remove_voxels
from .lattice import is_forward_facing, mean_camera, to_lattice
from .voxel_grid import SparseVoxelGrid, sample_members, voxel_size_for_count
from .voxel_gaussians import VoxelGaussians


def _adam(params, lr: float, batch_size: int, fused: bool) -> torch.optim.Adam:
    # gsplat's convention for batches: lr x sqrt(B), eps / sqrt(B); B counts every rank's views
    return torch.optim.Adam(params, lr=lr * math.sqrt(batch_size), eps=1e-15 / math.sqrt(batch_size),
                            fused=fused)


def _views_per_step(cfg: TrainConfig) -> int:
    """Views one optimizer step sees: the batch on each of the torchrun ranks."""
    return cfg.optim.batch_size * distributed.world_size()


def _optimized(optimizers: dict) -> list[Tensor]:
    """The parameters `optimizers` step, in a fixed order (the same on every rank)."""
    return [p for o in optimizers.values() for g in o.param_groups for p in g["params"]]


class ExplicitModel:
    """Explicit Gaussians in a ParameterDict (gsplat's names, raw form)."""

    kind = "gaussians"

    def __init__(self, splats: torch.nn.ParameterDict, cfg: TrainConfig, scene_scale: float, device):
        self.splats, self.cfg, self.scene_scale = splats.to(device), cfg, scene_scale
        o, B, fused = cfg.optim, _views_per_step(cfg), torch.device(device).type == "cuda"
        lrs = {"means": o.lr_means * scene_scale, "scales": o.lr_scales, "quats": o.lr_quats,
               "opacities": o.lr_opacities, "sh0": o.lr_sh0, "shN": o.lr_shN}
        self.optimizers = {k: _adam([self.splats[k]], lrs[k], B, fused) for k in lrs}
        self.strategy = DefaultStrategy(cfg.densify)
        self.state = self.strategy.initialize_state(self.splats["means"].shape[0], scene_scale, device)
        self._lr0 = lrs["means"] * math.sqrt(B)
        self._gamma = (o.lr_means_final / o.lr_means) ** (1.0 / max(o.steps, 1))

    @staticmethod
    def create(scene: Scene, cfg: TrainConfig, scene_scale: float, device) -> "ExplicitModel":
        splats = init_splats(scene, cfg.init, cfg.optim.sh_degree, cfg.seed, device)
        return ExplicitModel(splats, cfg, scene_scale, device)

    @property
    def n_gaussians(self) -> int:
        return int(self.splats["means"].shape[0])

    def render(self, cams, sh_degree: int, background: Tensor, opacity_scale: Tensor | None = None):
        out = render_splats(self.splats, cams, sh_degree, background, self.cfg.backend, opacity_scale)
        self.strategy.step_pre_backward(out.means2d)
        return out, self.splats

    def update(self, step: int, out, W: int, H: int, gen) -> dict:
        for g in self.optimizers["means"].param_groups:
            g["lr"] = self._lr0 * self._gamma ** step
        for o in self.optimizers.values():
            o.step()
            o.zero_grad(set_to_none=True)
        return self.strategy.step_post_backward(self.splats, self.optimizers, self.state, step,
                                                out.means2d, out.radii, W, H, gen)

    def bake(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.splats.items()}

    def trainable(self) -> list[Tensor]:
        """What the optimizers step (gradients averaged over torchrun ranks)."""
        return _optimized(self.optimizers)

    @torch.no_grad()
    def carve(self, outside) -> int:
        """Remove the Gaussians whose centres `outside(means [N,3]) -> [N] bool` flags, with
        their Adam moments and statistics; returns how many (none when it flags them all)."""
        drop = outside(self.splats["means"])
        n = int(drop.sum())
        if 0 < n < len(drop):
            ops.remove(self.splats, self.optimizers, drop)
            self.state.grad2d, self.state.count = self.state.grad2d[~drop], self.state.count[~drop]
        return n if n < len(drop) else 0

    def state_dict(self) -> dict:
        return {"splats": self.bake(), "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "strategy": self.state.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        for k, o in self.optimizers.items():
            o.load_state_dict(d["optimizers"][k])
        self.state.grad2d = d["strategy"]["grad2d"].to(self.state.grad2d.device)
        self.state.count = d["strategy"]["count"].to(self.state.count.device)

    @staticmethod
    def from_state(d: dict, cfg: TrainConfig, scene_scale: float, device) -> "ExplicitModel":
        splats = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in d["splats"].items()})
        m = ExplicitModel(splats, cfg, scene_scale, device)
        m.state = DefaultState(torch.zeros(m.n_gaussians, device=device),
                               torch.zeros(m.n_gaussians, device=device), scene_scale)
        m.load_state_dict(d)
        return m


def point_spacing(points: Tensor, n_sample: int = 20_000, seed: int = 0) -> float:
    """Median distance of points to their nearest neighbour (on a random subsample)."""
    if points.shape[0] > n_sample:
        idx = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(seed))[:n_sample]
        points = points[idx]
    return float(knn_mean_dist(points.float(), k=1).median()) if points.shape[0] > 1 else 1.0


def lattice_frame(scene: Scene, lattice: str, points: Tensor) -> Tensor | None:
    """`ref_from_world [4,4]` of a "depth" lattice (the mean training camera), None for a
    "world" one; "auto" takes "depth" when the training views face forward over `points`."""
    if lattice not in ("world", "depth", "auto"):
        from ...data.errors import VoxsplatError
        raise VoxsplatError(f"voxel.lattice={lattice!r}: use world, depth or auto")
    cam_from_world = scene.cameras.cam_from_world[list(scene.split("train"))].cpu().float()
    if lattice == "auto":
        lattice = "depth" if is_forward_facing(cam_from_world, points) else "world"
    return mean_camera(cam_from_world) if lattice == "depth" else None


def initial_grid(scene: Scene, cfg: TrainConfig, device
                 ) -> tuple[SparseVoxelGrid, Tensor, tuple[Tensor, Tensor] | None]:
    """The starting voxel grid, per-voxel colours [V,3] and, with `voxel.init_at_points`
    (grids from points or masks), K of each voxel's points with their colours ([V,K,3] each,
    world), from the scene's points, else the visual hull of its masks, else a dense cube over
    the bounds (InitConfig.source)."""
    source = auto_init_source(scene) if cfg.init.source == "auto" else cfg.init.source
    radius = _bounds_radius(scene)
    if source == "bounds":
        res = max(4, round(cfg.voxel.n_voxels ** (1 / 3)))
        grid = SparseVoxelGrid.from_bounds(torch.zeros(3), radius, res)
        return grid, torch.full((len(grid), 3), 0.5), None
    if source == "points":
        if scene.points is None or len(scene.points) == 0:
            from ...data.errors import VoxsplatError
            raise VoxsplatError(f"{scene.source}: --init points, but the scene has no points")
        pts = scene.points.float()
        cols = scene.point_colors if scene.point_colors is not None else torch.full_like(pts, 0.5)
    else:
        # the whole hull, not its shell: a loose hull's surface lies inside it, and Gaussians
        # stay near their voxels; voxels in empty space turn transparent and are pruned
        pts, cols = visual_hull_points(scene, list(scene.split("train")), cfg.init.hull_resolution,
                                       cfg.init.n_random * 4, cfg.seed, radius, device, shell=False)
    ref_from_world = lattice_frame(scene, cfg.voxel.lattice, pts)
    u = to_lattice(pts, ref_from_world)
    size = max(voxel_size_for_count(u, cfg.voxel.n_voxels),
               point_spacing(u) * cfg.voxel.min_spacing_voxels)
    grid, inv = SparseVoxelGrid.from_lattice_points(u, size, ref_from_world=ref_from_world)
    sums = torch.zeros(len(grid), 3).index_add_(0, inv, cols.float())
    counts = torch.zeros(len(grid)).index_add_(0, inv, torch.ones(len(inv)))
    anchors = None
    if cfg.voxel.init_at_points:
        gen = torch.Generator().manual_seed(cfg.seed)
        idx = sample_members(inv, len(grid), cfg.voxel.gaussians_per_voxel, gen)
        anchors = (pts.float()[idx], cols.float()[idx])
    return grid, sums / counts[:, None], anchors


def _columns(out, cols: slice) -> SimpleNamespace:
    """What a strategy reads of a render (``means2d.grad [C,N,2]``, ``radii``), for the
    Gaussians `cols` only."""
    grad = out.means2d.grad
    return SimpleNamespace(means2d=SimpleNamespace(grad=None if grad is None else grad[:, cols]),
                           radii=out.radii[:, cols])


class VoxelModel:
    """Sparse voxels carrying Gaussians decoded by a spconv U-Net."""

    kind = "voxel"

    def __init__(self, net: VoxelGaussians, cfg: TrainConfig, scene_scale: float, device,
                 free: ExplicitModel | None = None):
        self.net, self.cfg, self.scene_scale = net.to(device), cfg, scene_scale
        self.free = free
        """With `voxel.free_gaussians`: explicit Gaussians rendered with the decoded ones."""
        v, B, fused = cfg.voxel, _views_per_step(cfg), torch.device(device).type == "cuda"
        self.optimizers = {
            "latents": _adam([net.params["latents"]], v.lr_latent, B, fused),
            "colors": _adam([net.params["colors"]], v.lr_color, B, fused),
            "net": _adam(list(net.net.parameters()) + list(net.head.parameters()), v.lr_net, B, fused),
        }
        if "residuals" in net.params:
            self.optimizers["residuals"] = _adam([net.params["residuals"]], v.lr_residual, B, fused)
        self._lr0 = {k: o.param_groups[0]["lr"] for k, o in self.optimizers.items()}
        self._gamma = v.lr_final_factor ** (1.0 / max(cfg.optim.steps, 1))
        self.strategy = VoxelStrategy(v)
        self.state = self.strategy.initialize_state(net.n_voxels, device)
        self.device = device
        self.explicit: ExplicitModel | None = None
        """Set once the run passes `voxel.explicit_from`: the baked Gaussians, optimized directly."""
        self._explicit_step = round(v.explicit_from * cfg.optim.steps) if v.explicit_from > 0 else None

    @staticmethod
    def create(scene: Scene, cfg: TrainConfig, scene_scale: float, device) -> "VoxelModel":
        if cfg.voxel.init_at_points and cfg.voxel.lr_residual <= 0:
            from ...data.errors import VoxsplatError
            raise VoxsplatError("voxel.init_at_points places Gaussians through per-Gaussian "
                                "residuals: also --set voxel.lr_residual=2e-3")
        grid, colors, anchors = initial_grid(scene, cfg, device)
        net = VoxelGaussians(grid, colors, cfg.voxel, cfg.optim.sh_degree, cfg.seed, anchors)
        free = ExplicitModel.create(scene, cfg, scene_scale, device) if cfg.voxel.free_gaussians else None
        return VoxelModel(net, cfg, scene_scale, device, free)

    @property
    def n_gaussians(self) -> int:
        if self.explicit is not None:
            return self.explicit.n_gaussians
        n_free = 0 if self.free is None else self.free.n_gaussians
        return self.net.n_voxels * self.cfg.voxel.gaussians_per_voxel + n_free

    @property
    def n_voxels(self) -> int:
        return self.net.n_voxels

    def render(self, cams, sh_degree: int, background: Tensor, opacity_scale: Tensor | None = None):
        if self.explicit is not None:
            return self.explicit.render(cams, sh_degree, background, opacity_scale)
        raw = self.net()
        self._opacities = raw["opacities"]
        if self.free is not None:
            raw = {k: torch.cat([v, self.free.splats[k]]) for k, v in raw.items()}
        out = render_splats(raw, cams, sh_degree, background, self.cfg.backend, opacity_scale)
        self.strategy.step_pre_backward(out.means2d)
        return out, raw

    def update(self, step: int, out, W: int, H: int, gen) -> dict:
        if self.explicit is not None:
            return self.explicit.update(step, out, W, H, gen)
        for k, o in self.optimizers.items():
            for g in o.param_groups:
                g["lr"] = self._lr0[k] * self._gamma ** step
            o.step()
            o.zero_grad(set_to_none=True)
        report = {}
        if self.free is not None:  # each part's strategy sees its own Gaussians' statistics
            n = self._opacities.shape[0]
            free_report = self.free.update(step, _columns(out, slice(n, None)), W, H, gen)
            report = {f"free_{k}": v for k, v in free_report.items()}
            out = _columns(out, slice(0, n))
        report |= self.strategy.step_post_backward(self.net, self.optimizers, self.state, step,
                                                   out.means2d, out.radii, self._opacities, W, H)
        self._opacities = None
        if self._explicit_step is not None and step + 1 >= self._explicit_step:
            self.explicit = self._to_explicit()
            report = {**report, "explicit_from_step": step + 1, "gaussians": self.explicit.n_gaussians}
        return report

    def _to_explicit(self, splats: dict[str, Tensor] | None = None) -> ExplicitModel:
        """The explicit stage: the baked Gaussians (or `splats`) as parameters; it grows and
        prunes from its first step until `voxel.explicit_refine_until` (else never)."""
        splats = self.bake() if splats is None else splats
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.clone()) for k, v in splats.items()})
        stop = round(self.cfg.voxel.explicit_refine_until * self.cfg.optim.steps)
        start = self._explicit_step or 0
        densify = replace(self.cfg.densify, refine_start=start,
                          refine_stop=stop if stop > start else 0)
        cfg = replace(self.cfg, densify=densify)
        return ExplicitModel(params, cfg, self.scene_scale, self.device)

    @torch.no_grad()
    def bake(self) -> dict[str, Tensor]:
        """The decoded Gaussians as explicit ones, without the nearly transparent (after
        `voxel.explicit_from`: the explicit stage's Gaussians)."""
        if self.explicit is not None:
            return self.explicit.bake()
        raw = {k: v.detach() for k, v in self.net().items()}
        keep = torch.sigmoid(raw["opacities"]) >= self.cfg.voxel.bake_min_opacity
        baked = {k: v[keep] for k, v in raw.items()}
        if self.free is not None:
            baked = {k: torch.cat([v, self.free.splats[k].detach()]) for k, v in baked.items()}
        return baked

    @torch.no_grad()
    def carve(self, outside) -> int:
        """Remove what `outside(means [N,3]) -> [N] bool` flags: in the explicit stage those
        Gaussians, before it the voxels all of whose Gaussians it flags. Returns how many
        (none when that would be all)."""
        if self.explicit is not None:
            return self.explicit.carve(outside)
        K = self.cfg.voxel.gaussians_per_voxel
        drop = outside(self.net()["means"]).reshape(-1, K).all(-1)
        n = int(drop.sum())
        if 0 < n < len(drop):
            remove_voxels(self.net, self.optimizers, self.state, drop)
        n_free = 0 if self.free is None else self.free.carve(outside)
        return (n if n < len(drop) else 0) + n_free

    def trainable(self) -> list[Tensor]:
        """What the optimizers step now (gradients averaged over torchrun ranks)."""
        if self.explicit is not None:
            return self.explicit.trainable()
        return _optimized(self.optimizers) + ([] if self.free is None else self.free.trainable())

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "voxel_size": self.net.voxel_size,
                "ref_from_world": self.net.ref_from_world,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "strategy": self.state.state_dict(),
                "free": None if self.free is None else self.free.state_dict(),
                "explicit": None if self.explicit is None else self.explicit.state_dict()}

    @staticmethod
    def from_state(d: dict, cfg: TrainConfig, scene_scale: float, device) -> "VoxelModel":
        coords = d["net"]["coords"].cpu()
        ref = d.get("ref_from_world")
        grid = SparseVoxelGrid(coords, d["net"]["origin"].cpu(), float(d["voxel_size"]),
                               None if ref is None else ref.cpu())
        net = VoxelGaussians(grid, torch.zeros(len(grid), 3), cfg.voxel, cfg.optim.sh_degree, cfg.seed)
        net.load_state_dict(d["net"])
        free = None if d.get("free") is None else ExplicitModel.from_state(d["free"], cfg, scene_scale, device)
        m = VoxelModel(net, cfg, scene_scale, device, free)
        for k, o in m.optimizers.items():
            o.load_state_dict(d["optimizers"][k])
        m.state = VoxelState(**{k: v.to(device) for k, v in d["strategy"].items()})
        if d.get("explicit") is not None:
            m.explicit = m._to_explicit({k: v.to(device) for k, v in d["explicit"]["splats"].items()})
            m.explicit.load_state_dict(d["explicit"])
        return m


MODELS = {"gaussians": ExplicitModel, "voxel": VoxelModel}
