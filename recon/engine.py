"""The optimization loop over a scene model (explicit or voxel): losses, checkpoints, resume."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor

from ..data.cameras import Cameras
from ..data.errors import VoxsplatError
from ..data.scene import Scene
from ..render.sky import SkyMap
from . import distributed
from .checkpoint import load_latest_checkpoint, save_checkpoint, stop_at_step_end
from .config import TrainConfig, for_scene
from .depth.loss import depth_loss
from .gaussians import outside_silhouettes, render_splats, scene_extent
from .progress import StepTimes, format_left, progress_bar
from .losses import binocular_loss, consistency_loss, photometric_loss, shifted_cameras
from .pseudo import depth_smoothness, neighbour_degrees, orbited_cameras
from .representation.models import MODELS
from .appearance import Appearance, new_appearance
from .sky import depth_far_parallax, wants_sky


@dataclass
class TrainResult:
    """What a finished run produced."""

    splats: dict
    """The final Gaussians, explicit and detached (the voxel model's are baked)."""
    steps: int
    train_seconds: float
    """Wall time of the optimization loop (this process; resumed runs add the earlier time)."""
    peak_gpu_mem_mb: Optional[float]
    model: str = "gaussians"
    n_voxels: Optional[int] = None
    sky: Optional[SkyMap] = None
    """The learned sky (detached), when the run learned one (`SkyConfig`)."""
    train_cameras: Optional[Cameras] = None
    """The training views' cameras with their learned pose corrections (`pose_refine`)."""
    pose_refinement: Optional[dict] = None
    """How far the training poses moved (`ViewPoses.summary`)."""


def parse_device(name: str) -> torch.device:
    """The device `name` (cpu, cuda, cuda:N) names, without asking for it.

    Raises:
        VoxsplatError: any other name.
    """
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise VoxsplatError(f"unknown device '{name}'; use cpu, cuda (or cuda:N) or auto")
    return device


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available; 'cuda' without CUDA is a clear error. Under torchrun,
    cuda is this rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = parse_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VoxsplatError(f"--device {name}, but PyTorch sees no CUDA GPU; use --device cpu "
                            f"or install a CUDA build of torch")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise VoxsplatError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                            f"CUDA GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return distributed.device_of_rank(device)


class TrainData:
    """Training images and cameras on the device, drawn in batches of one size where there are
    enough views of it, else (with `pad`) of several sizes on one canvas."""

    def __init__(self, scene: Scene, ids: list[int], device, seed: int, depth=None,
                 masks: bool = False, pad: bool = False):
        if not ids:
            raise VoxsplatError(f"{scene.source}: the scene has no training views")
        self.scene = scene
        self.images = {i: scene.images[i].to(device) for i in ids}
        self.masks = ({i: scene.masks[i].to(device) for i in ids}
                      if masks and scene.masks is not None else {})
        # random backgrounds, drawn where the images are: a colour drawn on the host and sent
        # over would be a blocking copy, every step
        self.bg_gen = torch.Generator(device=device).manual_seed(seed + 2)
        self.depths = {} if depth is None else _depth_targets(depth, scene, ids, device)
        cams = scene.cameras.to(device)
        self.cameras = {i: cams[i:i + 1] for i in ids}  # slices: no index copies or syncs per step
        self.gen = torch.Generator().manual_seed(seed)
        self.sizes = {i: scene.cameras.size(i) for i in ids}
        self.pad = pad
        """Fill batches with views of other sizes, on one canvas (OptimConfig.pad_batches)."""
        self.order: list[int] = []
        self.ids = ids

    def sample(self, batch_size: int) -> tuple[Cameras, Tensor, Optional[Tensor], Optional[Tensor],
                                               list[int], Optional[Tensor]]:
        """Next batch in shuffled epochs: cameras, images [B,H,W,3], MVS depth targets [B,H,W]
        (0 = none) or None when the scene has no depth maps, masks [B,H,W] bool or None (kept
        only for random backgrounds), the B view ids, and None, or for views of several sizes
        on one canvas (`pad`) where each view's pixels are, [B,H,W] bool.
        Under torchrun every rank draws the world's batches in the same order and keeps its
        own: together the ranks see what one process with W x B views per step would."""
        groups = [self._next_ids(batch_size) for _ in range(distributed.world_size())]
        group = groups[distributed.rank()]
        cams = self.cameras[group[0]] if len(group) == 1 else Cameras.cat([self.cameras[i] for i in group])
        sizes = [self.sizes[i] for i in group]
        if len(set(sizes)) > 1:
            return self._on_canvas(cams, group, sizes)
        imgs = torch.stack([self.images[i] for i in group]).float() / 255.0
        depths = None
        if self.depths:
            zero = torch.zeros_like(imgs[..., 0])
            depths = torch.stack([self.depths.get(i, zero[0]) for i in group])
        masks = torch.stack([self.masks[i] for i in group]) if self.masks else None
        return cams, imgs, depths, masks, group, None

    def _on_canvas(self, cams: Cameras, group: list[int], sizes: list[tuple[int, int]]):
        """`sample`'s batch for views of several sizes, each at the top-left of one canvas."""
        Wc, Hc = max(w for w, _ in sizes), max(h for _, h in sizes)
        B, dev = len(group), self.images[group[0]].device
        imgs = torch.zeros(B, Hc, Wc, 3, device=dev)
        valid = torch.zeros(B, Hc, Wc, dtype=torch.bool, device=dev)
        depths = torch.zeros(B, Hc, Wc, device=dev) if self.depths else None
        masks = torch.zeros(B, Hc, Wc, dtype=torch.bool, device=dev) if self.masks else None
        for b, (i, (w, h)) in enumerate(zip(group, sizes)):
            imgs[b, :h, :w] = self.images[i].float() / 255.0
            valid[b, :h, :w] = True
            if depths is not None and i in self.depths:
                depths[b, :h, :w] = self.depths[i]
            if masks is not None:
                masks[b, :h, :w] = self.masks[i]
        return cams.with_size(Wc, Hc), imgs, depths, masks, group, valid

    def _next_ids(self, batch_size: int) -> list[int]:
        """The next view of the shuffled epoch and, up to `batch_size`, the next ones of its
        size; with `pad`, then the next ones of any size."""
        if not self.order:
            self.order = [self.ids[j] for j in torch.randperm(len(self.ids), generator=self.gen)]
        group = [self.order.pop()]
        size = self.sizes[group[0]]
        j = len(self.order) - 1
        while len(group) < batch_size and j >= 0:
            if self.sizes[self.order[j]] == size:
                group.append(self.order.pop(j))
            j -= 1
        while self.pad and len(group) < batch_size and self.order:  # other sizes, on a canvas
            group.append(self.order.pop())
        return group

    def random_background(self, images: Tensor, masks: Tensor, background: Tensor
                          ) -> tuple[Tensor, Tensor]:
        """A random colour [3] and `images [B,H,W,3]` (composited on `background [3]`) moved
        onto it outside `masks [B,H,W]`: the object's alpha becomes supervised."""
        bg = torch.rand(3, generator=self.bg_gen, device=self.bg_gen.device)
        return bg, images + (~masks)[..., None].float() * (bg - background)


def _depth_targets(depth, scene: Scene, ids: list[int], device) -> dict[int, Tensor]:
    """MVS depth maps (DepthResult) resized (nearest) to each training image, by view id."""
    out = {}
    for j, vid in enumerate(depth.view_ids):
        if vid not in ids:
            continue
        H, W = scene.images[vid].shape[:2]
        d = depth.depth_map(j)[None, None].float()
        if tuple(d.shape[-2:]) != (H, W):
            d = torch.nn.functional.interpolate(d, size=(H, W), mode="nearest")
        out[vid] = d[0, 0].to(device)
    return out


def dropout_scale(n: int, rate: float, gen: torch.Generator) -> Optional[Tensor]:
    """[n] opacity factors hiding each Gaussian with probability `rate` and scaling the rest
    by 1/(1 - rate) (DropGaussian); None when `rate` is 0."""
    if rate <= 0:
        return None
    keep = torch.rand(n, generator=gen, device=gen.device) >= rate
    return keep.float() / (1.0 - rate)


def coarse_level(step: int, steps: int, levels: int, until: float) -> int:
    """How many times the training images are halved at `step`: `levels` at the start, one
    fewer after each of `levels` equal stretches of the first `until` x `steps` steps, 0 after."""
    if levels <= 0 or until <= 0:
        return 0
    stretch = until * steps / levels
    return max(0, levels - int(step // stretch))


def downsampled(cams: Cameras, images: Tensor, depths: Optional[Tensor], masks: Optional[Tensor],
                level: int) -> tuple[Cameras, Tensor, Optional[Tensor], Optional[Tensor]]:
    """A batch at 1/2^level size: cameras rescaled, images [B,H,W,3] area-averaged, depth
    targets [B,H,W] nearest (0 stays "none"), masks [B,H,W] by majority."""
    if level == 0:
        return cams, images, depths, masks
    small = cams.scaled(0.5 ** level)
    W, H = small.size(0)
    images = torch.nn.functional.interpolate(images.permute(0, 3, 1, 2), size=(H, W),
                                             mode="area").permute(0, 2, 3, 1)
    if depths is not None:
        depths = torch.nn.functional.interpolate(depths[:, None], size=(H, W), mode="nearest")[:, 0]
    if masks is not None:
        masks = shrunk_mask(masks, (W, H))
    return small, images, depths, masks


def shrunk_mask(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """[B,H,W] bool masks area-resized to `size` (W, H), by majority."""
    W, H = size
    return torch.nn.functional.interpolate(masks[:, None].float(), size=(H, W), mode="area")[:, 0] > 0.5


def bar_postfix(left: Optional[str], loss: float, n_gaussians: int) -> dict:
    """The optimization bar's postfix, in this order (tqdm sorts keyword arguments), as text:
    tqdm writes numbers as 2e+4 where that is shorter."""
    postfix = {} if left is None else {"left": left}
    postfix.update(loss=f"{loss:.4f}", gaussians=str(int(n_gaussians)))
    return postfix


def _diverged(what: str) -> str:
    return (f"training diverged: {what}; the checkpoints before it stand, but resuming would "
            f"diverge again: start over with other settings (check any --set values), or "
            f"report it with VOXSPLAT_DEBUG=1")


class Trainer:
    """Optimizes a scene model (explicit or voxel, `cfg.model`); checkpoints to
    `workdir/checkpoints`. `depth`: optional DepthResult whose maps supervise rendered depth."""

    def __init__(self, scene: Scene, cfg: TrainConfig, workdir: Path, device: torch.device,
                 depth=None):
        # the `*_masked` fields decide by whether the training views have masks, whether or
        # not random backgrounds load them
        cfg = for_scene(cfg, scene.masked("train"))
        self.scene, self.cfg, self.workdir, self.device = scene, cfg, Path(workdir), device
        self.depth = depth
        self.ckpt_dir = self.workdir / "checkpoints"
        train = scene.cameras[list(scene.split("train"))]
        self.scene_scale = scene_extent(train)
        self.train_cameras = train.to(device)
        views, n_train = cfg.optim.pseudo_weight_views, len(self.train_cameras)
        share = min(1.0, views / n_train) ** cfg.optim.pseudo_weight_power if views > 0 else 1.0
        self.pseudo_weight = cfg.optim.pseudo_weight * share
        """The unseen-view weight for this scene's number of training views."""
        self.background = torch.tensor(scene.background, device=device, dtype=torch.float32)
        self.appearance: Optional[Appearance] = None
        """The learned sky and per-view exposure while `fit` runs (each may be off)."""
        if cfg.model not in MODELS:
            raise VoxsplatError(f"unknown model '{cfg.model}'; use {' or '.join(MODELS)}")

    def fit(self, resume: bool = False, progress: bool = True,
            on_step: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
        cfg, dev = self.cfg, self.device
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()  # initialization counts towards train_seconds
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        model, step, prior_seconds, ckpt = self._start(resume)
        finished = step >= cfg.optim.steps  # a resumed finished run: its time and checkpoint stand
        data = TrainData(self.scene, list(self.scene.split("train")), dev, cfg.seed,
                         self.depth if cfg.optim.depth_weight > 0 else None,  # loss targets only
                         masks=cfg.optim.random_background and self.scene.masked("train"),
                         pad=cfg.optim.pad_batches)
        gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)
        self._start_appearance(data, ckpt, progress)
        distributed.broadcast_tensors_([*model.trainable(), *self.appearance.parameters()])
        if ckpt is not None:
            self._restore(ckpt, data, gen)
        outside = (self._outside(data) if cfg.optim.hull_carve and any(
            bool(m.any()) for m in data.masks.values()) else None)
        o = cfg.optim
        coarse = coarse_level(0, o.steps, o.coarse_levels, o.coarse_until) > 0
        bar = progress_bar(o.steps, step, progress and distributed.is_main(), coarse)
        times = StepTimes(lambda s: coarse_level(s, o.steps, o.coarse_levels, o.coarse_until),
                          o.steps) if bar is not None and coarse else None
        with stop_at_step_end(not distributed.active()) as stop_asked:
            step, t0 = self._loop(model, data, gen, step, outside, bar, times, on_step, t0,
                                  prior_seconds, stop_asked)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = prior_seconds + (0.0 if finished else time.perf_counter() - t0)
        if bar is not None:
            bar.close()
        if not finished:
            self._save(model, data, gen, step, seconds)
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
        splats = model.bake()
        if outside is not None:
            keep = ~outside(splats["means"])
            if keep.any():  # as the periodic carve: never every Gaussian (masks that miss the object)
                splats = {k: v[keep] for k, v in splats.items()}
        sky = self.appearance.sky
        sky = None if sky is None else sky.map().detach()
        cams, moved = None, None
        if self.appearance.poses is not None:
            with torch.no_grad():
                cams = self.appearance.posed(self.train_cameras, data.ids).to("cpu")
            moved = self.appearance.poses.summary()
        return TrainResult(splats, step, seconds, peak, model.kind,
                           getattr(model, "n_voxels", None), sky, cams, moved)

    def _loop(self, model, data: TrainData, gen, step: int, outside, bar, times, on_step,
              t0: float, prior_seconds: float,
              stop_asked: Callable[[], bool]) -> tuple[int, float]:
        """The optimization steps from `step` on: (the last step, `t0` moved on by the time
        the callbacks took, which is not training time). Where a stop was asked (Ctrl-C),
        saves a checkpoint at the end of the step and raises KeyboardInterrupt."""
        cfg, o = self.cfg, self.cfg.optim
        every = o.hull_carve_every
        loss = math.nan  # the last loss read back
        while step < cfg.optim.steps:
            t_step = time.perf_counter()
            try:
                read = self._step(model, data, step, gen, outside)
            except (RuntimeError, ValueError) as e:  # NaN Gaussians fail in many places
                if all(bool(torch.isfinite(p).all()) for p in model.trainable()):
                    raise
                raise VoxsplatError(_diverged(f"the Gaussians went NaN by step {step + 1}")) from e
            if times is not None:
                times.add(step, time.perf_counter() - t_step, model.n_gaussians)
            step += 1
            if read is not None:
                loss = read
                if not math.isfinite(loss):
                    raise VoxsplatError(_diverged(f"the loss is {loss} at step {step}"))
            if outside is not None and every > 0 and step % every == 0 and step < cfg.optim.steps:
                model.carve(outside)
            if bar is not None and (step % 10 == 0 or step == cfg.optim.steps):
                bar.update(step - bar.n)  # `_step` read the loss back: the device caught up
                left = None
                if times is not None:
                    times.flush()
                    left = format_left(times.left(step))
                bar.set_postfix(bar_postfix(left, loss, model.n_gaussians), refresh=False)
            if on_step is not None:  # callback time (e.g. evaluation) is not training time
                t_cb = time.perf_counter()
                on_step(step, {"loss": loss, "n": model.n_gaussians, "model": model,
                               "train_seconds": prior_seconds + t_cb - t0})
                t0 += time.perf_counter() - t_cb
            stop = stop_asked()
            if step < cfg.optim.steps and (stop or (cfg.checkpoint_every
                                                    and step % cfg.checkpoint_every == 0)):
                self._save(model, data, gen, step, prior_seconds + time.perf_counter() - t0)
                if stop:
                    raise KeyboardInterrupt
        return step, t0

    def _start_appearance(self, data: TrainData, ckpt: Optional[dict], progress: bool) -> None:
        """The learned sky and per-view exposure the config and scene want, with their
        optimizer (from the checkpoint when resuming)."""
        cfg = self.cfg
        sky = wants_sky(self.scene, cfg.sky, data.ids,
                        (self._far_share(progress) if cfg.sky.mode == "far"
                         and not self.scene.masked(data.ids) else None))
        mean = (torch.stack([img.float().mean((0, 1)) for img in data.images.values()]).mean(0) / 255
                if sky else None)
        self.appearance = new_appearance(self.train_cameras, data.ids, mean, sky, cfg.sky.resolution,
                                         cfg.sky.lr, cfg.optim.exposure, cfg.optim.lr_exposure,
                                         cfg.sky.smooth_weight, cfg.optim.pose_refine,
                                         cfg.optim.lr_pose, self.scene_scale)
        if ckpt is not None and self.appearance.active:
            self.appearance.restore(ckpt)

    def _far_share(self, say: bool) -> Optional[float]:
        """`far_parallax` of the depth stage's maps of the training views (None without
        them); `say`: print it."""
        if self.depth is None:
            return None
        share = depth_far_parallax(self.depth, self.scene.split("train"))
        if say and share is not None and distributed.is_main():
            print(f"the farthest content moves {share:.2f} of the image width across the "
                  f"training views: {'a' if share <= self.cfg.sky.far_parallax else 'no'} "
                  f"learned sky (sky.mode far, bound {self.cfg.sky.far_parallax:g})")
        return share

    def _outside(self, data: TrainData) -> Callable[[Tensor], Tensor]:
        """points [P,3] -> [P] bool: outside a training view's silhouette (space carving).
        Views whose mask is empty carve nothing: one mistaken mask would carve all it sees."""
        ids = sorted(i for i, m in data.masks.items() if bool(m.any()))
        cams = self.scene.cameras[ids].to(self.device)
        masks = torch.stack([data.masks[i] for i in ids])
        return lambda points: outside_silhouettes(points, cams, masks)

    def _step(self, model, data: TrainData, step: int, gen,
              outside: Optional[Callable[[Tensor], Tensor]] = None) -> Optional[float]:
        """One optimization step; the loss, read back (a device sync) every 10 steps, else None."""
        o = self.cfg.optim
        cams, gt, depth, masks, ids, valid = data.sample(o.batch_size)
        look = self.appearance
        input_cams = cams
        if step >= o.pose_from * o.steps:
            cams = look.posed(cams, ids)
        level = coarse_level(step, o.steps, o.coarse_levels, o.coarse_until)
        cams, gt, depth, masks = downsampled(cams, gt, depth, masks, level)
        if valid is not None and level:
            valid = shrunk_mask(valid, cams.size(0))
        background = look.background(self.background)
        if masks is not None:
            background, gt = data.random_background(gt, masks, self.background)
        sh_degree = min(step // o.sh_degree_interval, o.sh_degree)
        drop = dropout_scale(model.n_gaussians, o.drop_rate * step / o.steps, gen)
        out, raw = model.render(cams, sh_degree, background, drop)
        colors = look.adjust(out.colors, ids)
        if valid is not None:  # views of several sizes on one canvas: no target outside each
            gt = torch.where(valid[..., None], gt, colors.detach())
        loss = photometric_loss(colors, gt, o.ssim_weight)
        binocular = o.binocular_weight > 0 and step >= o.binocular_from * o.steps
        pseudo = (o.pseudo_weight > 0 or o.pseudo_smooth_weight > 0) and step >= o.pseudo_from * o.steps
        if binocular or pseudo:
            loss = loss + self._moved_views(raw, cams, out, gt, sh_degree, background, drop, gen,
                                            binocular, pseudo, lambda c: look.adjust(c, ids),
                                            input_cams)
        if depth is not None and o.depth_weight > 0:
            loss = loss + o.depth_weight * self.scene_scale * depth_loss(out.depths, depth)
        if o.opacity_weight > 0:
            loss = loss + o.opacity_weight * torch.sigmoid(raw["opacities"]).mean()
        if o.hull_opacity_weight > 0 and outside is not None:
            flags = outside(raw["means"].detach()).float()
            loss = loss + o.hull_opacity_weight * (torch.sigmoid(raw["opacities"]) * flags).mean()
        loss = loss + look.regularizer()
        loss.backward()
        if distributed.active():  # one process: no parameter lists on the hot path
            distributed.average_gradients([*model.trainable(), *look.parameters()])
        look.step()
        W, H = cams.size(0)
        model.update(step, out, W, H, gen)
        return float(loss.detach()) if (step + 1) % 10 == 0 else None

    def _moved_views(self, raw, cams: Cameras, out, gt: Tensor, sh_degree: int,
                     background: Tensor | SkyMap, drop: Optional[Tensor], gen, binocular: bool,
                     pseudo: bool, adjust: Callable[[Tensor], Tensor],
                     input_cams: Cameras) -> Tensor:
        """The losses on views rendered from moved copies of the training cameras, all in one
        rasterization: binocular consistency with a sideways move (OptimConfig.binocular_weight)
        and the unseen-view losses with a turn about the rendered median depth
        (pseudo_weight, pseudo_smooth_weight). `adjust` turns renders into how the training
        photos look (per-view exposure); `input_cams`: `cams` before their pose corrections,
        to find each one's neighbours among the training cameras. These renders do not feed
        densification."""
        o, B = self.cfg.optim, len(cams)
        solid = out.alphas[..., 0].detach() > 0.5
        depth = out.depths[..., 0]
        solid_depth = torch.where(solid, depth, 0.0)
        median = torch.where(solid, depth.detach(), torch.nan).flatten(1).nanmedian(1).values
        moved = []
        if binocular:
            u = torch.rand(B, generator=gen, device=gen.device) * 2 - 1
            shifts = (u * o.binocular_shift * median).nan_to_num(0.0)
            moved.append(shifted_cameras(cams, shifts))
        if pseudo:
            scale = median.nan_to_num(self.scene_scale)
            world_from_cam = cams.world_from_cam
            pivots = world_from_cam[:, :3, 3] + scale[:, None] * world_from_cam[:, :3, 2]
            degrees = o.pseudo_degrees
            if o.pseudo_neighbours:
                degrees = neighbour_degrees(input_cams, self.train_cameras).clamp_max(degrees)
            turned = orbited_cameras(cams, pivots, degrees, gen)
            moved.append(turned)
        views = render_splats(raw, moved[0] if len(moved) == 1 else Cameras.cat(moved),
                              sh_degree, background, self.cfg.backend, drop)
        loss = gt.new_zeros(())
        if binocular:
            loss = loss + o.binocular_weight * binocular_loss(adjust(views.colors[:B]), solid_depth, gt,
                                                              cams.Ks, shifts)
        if pseudo:
            colors, depths, alphas = (x[-B:] for x in (views.colors, views.depths, views.alphas))
            colors = adjust(colors)
            if o.pseudo_weight > 0:
                loss = loss + self.pseudo_weight * consistency_loss(
                    colors, solid_depth, gt, cams.Ks, turned.Ks,
                    turned.cam_from_world @ world_from_cam,
                    depths[..., 0] if o.pseudo_occlusion else None)
            if o.pseudo_smooth_weight > 0:
                loss = loss + o.pseudo_smooth_weight * depth_smoothness(
                    depths[..., 0], alphas[..., 0], scale)
        return loss

    def _start(self, resume: bool):
        """(model, step, seconds so far, checkpoint or None)."""
        cls = MODELS[self.cfg.model]
        if resume:
            ckpt_path, ckpt = load_latest_checkpoint(self.ckpt_dir, self.device)
            trained_by, resumed_by = ckpt.get("world_size"), distributed.world_size()
            if trained_by is not None and trained_by != resumed_by:  # (older checkpoints: unknown)
                how = ("as one plain process, without torchrun" if trained_by == 1 else
                       f"under torchrun --nproc_per_node {trained_by}")
                raise VoxsplatError(f"{ckpt_path}: the run trained as {trained_by} process(es), "
                                    f"and its learning rates and batches follow that; resume it "
                                    f"{how}")
            model = cls.from_state(ckpt["model"], self.cfg, self.scene_scale, self.device)
            return model, int(ckpt["step"]), float(ckpt["train_seconds"]), ckpt
        return cls.create(self.scene, self.cfg, self.scene_scale, self.device), 0, 0.0, None

    def _save(self, model, data: TrainData, gen, step: int, seconds: float) -> None:
        if not distributed.is_main():  # the replicas are identical: rank 0 writes
            return
        payload = {
            "step": step, "train_seconds": seconds, "config": self.cfg.to_dict(),
            "world_size": distributed.world_size(), "model": model.state_dict(),
            "data_order": list(data.order), "data_rng": data.gen.get_state(), "rng": gen.get_state(),
            "bg_rng": data.bg_gen.get_state(),
        }
        if self.appearance.active:
            payload |= self.appearance.checkpoint()
        save_checkpoint(self.ckpt_dir, step, payload)

    def _restore(self, ckpt: dict, data: TrainData, gen) -> None:
        data.order = list(ckpt["data_order"])
        data.gen.set_state(ckpt["data_rng"])
        if "bg_rng" in ckpt:
            data.bg_gen.set_state(ckpt["bg_rng"].cpu())
        gen.set_state(ckpt["rng"].cpu() if hasattr(ckpt["rng"], "cpu") else ckpt["rng"])

