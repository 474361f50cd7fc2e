"""The optimization loop: Adam on explicit Gaussians, grow/prune, checkpoints, resume."""

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
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .gaussians import init_splats, render_splats, scene_extent
from .losses import photometric_loss
from .strategy.default import DefaultStrategy


@dataclass
class TrainResult:
    """What a finished run produced."""

    splats: torch.nn.ParameterDict
    steps: int
    train_seconds: float
    """Wall time of the optimization loop (this process; resumed runs add the earlier time)."""
    peak_gpu_mem_mb: Optional[float]


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available; 'cuda' without CUDA is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VoxsplatError("--device cuda, but PyTorch sees no CUDA GPU; use --device cpu or "
                            "install a CUDA build of torch")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise VoxsplatError(f"unknown device '{name}'; use cpu, cuda or auto")
    return torch.device(name)


def make_optimizers(splats, cfg: TrainConfig, scene_scale: float, device) -> dict:
    o = cfg.optim
    lrs = {"means": o.lr_means * scene_scale, "scales": o.lr_scales, "quats": o.lr_quats,
           "opacities": o.lr_opacities, "sh0": o.lr_sh0, "shN": o.lr_shN}
    fused = device.type == "cuda"
    B = o.batch_size  # gsplat's convention for batches: lr x sqrt(B), eps / sqrt(B)
    return {k: torch.optim.Adam([splats[k]], lr=lrs[k] * math.sqrt(B), eps=1e-15 / math.sqrt(B),
                                fused=fused) for k in lrs}


class TrainData:
    """Training images and cameras on the device, grouped by size so a batch shares one size."""

    def __init__(self, scene: Scene, ids: list[int], device, seed: int):
        if not ids:
            raise VoxsplatError(f"{scene.source}: the scene has no training views")
        self.scene = scene
        self.images = {i: scene.images[i].to(device) for i in ids}
        cams = scene.cameras.to(device)
        self.cameras = {i: cams[i:i + 1] for i in ids}  # slices: no index copies or syncs per step
        self.gen = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.ids = ids

    def sample(self, batch_size: int) -> tuple[Cameras, Tensor]:
        """Next batch (one image size) in shuffled epochs: cameras and images [B,H,W,3]."""
        if not self.order:
            self.order = [self.ids[j] for j in torch.randperm(len(self.ids), generator=self.gen)]
        group = [self.order.pop()]
        size = self.scene.cameras.size(group[0])
        while len(group) < batch_size and self.order and self.scene.cameras.size(self.order[-1]) == size:
            group.append(self.order.pop())
        cams = self.cameras[group[0]] if len(group) == 1 else Cameras.cat([self.cameras[i] for i in group])
        imgs = torch.stack([self.images[i] for i in group]).float() / 255.0
        return cams, imgs


class Trainer:
    """Optimizes Gaussians for one scene; checkpoints to `workdir/checkpoints`."""

    def __init__(self, scene: Scene, cfg: TrainConfig, workdir: Path, device: torch.device):
        self.scene, self.cfg, self.workdir, self.device = scene, cfg, Path(workdir), device
        self.ckpt_dir = self.workdir / "checkpoints"
        self.scene_scale = scene_extent(scene.cameras[list(scene.split("train"))])
        self.background = torch.tensor(scene.background, device=device, dtype=torch.float32)
        self.strategy = DefaultStrategy(cfg.densify)

    def fit(self, resume: bool = False, progress: bool = True,
            on_step: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
        cfg, dev = self.cfg, self.device
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()  # initialization counts towards train_seconds
        splats, step, prior_seconds, ckpt = self._start(resume)
        opts = make_optimizers(splats, cfg, self.scene_scale, dev)
        state = self.strategy.initialize_state(splats["means"].shape[0], self.scene_scale, dev)
        data = TrainData(self.scene, list(self.scene.split("train")), dev, cfg.seed)
        gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)
        if ckpt is not None:
            self._restore(ckpt, opts, state, data, gen)
        o = cfg.optim
        lr0 = o.lr_means * self.scene_scale * math.sqrt(o.batch_size)
        gamma = (o.lr_means_final / o.lr_means) ** (1.0 / max(o.steps, 1))  # exponential decay
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        bar = _progress(cfg.optim.steps, step, progress)
        while step < cfg.optim.steps:
            for g in opts["means"].param_groups:
                g["lr"] = lr0 * gamma ** step
            loss, n = self._step(splats, opts, state, data, step, gen)
            step += 1
            if bar is not None and (step % 10 == 0 or step == cfg.optim.steps):
                bar.update(step - bar.n)
                bar.set_postfix(loss=f"{loss:.4f}", gaussians=n, refresh=False)
            if on_step is not None:  # callback time (e.g. evaluation) is not training time
                t_cb = time.perf_counter()
                on_step(step, {"loss": loss, "n": n, "splats": splats,
                               "train_seconds": prior_seconds + t_cb - t0})
                t0 += time.perf_counter() - t_cb
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.optim.steps:
                self._save(splats, opts, state, data, gen, step, prior_seconds + time.perf_counter() - t0)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = prior_seconds + time.perf_counter() - t0
        if bar is not None:
            bar.close()
        self._save(splats, opts, state, data, gen, step, seconds)
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
        return TrainResult(splats, step, seconds, peak)

    def _step(self, splats, opts, state, data: TrainData, step: int, gen) -> tuple[float, int]:
        cfg = self.cfg
        cams, gt = data.sample(cfg.optim.batch_size)
        sh_degree = min(step // cfg.optim.sh_degree_interval, cfg.optim.sh_degree)
        out = render_splats(splats, cams, sh_degree, self.background, cfg.backend)
        self.strategy.step_pre_backward(out.means2d)
        loss = photometric_loss(out.colors, gt, cfg.optim.ssim_weight)
        loss.backward()
        for o in opts.values():
            o.step()
            o.zero_grad(set_to_none=True)
        W, H = cams.size(0)
        self.strategy.step_post_backward(splats, opts, state, step, out.means2d, out.radii, W, H, gen)
        return (float(loss.detach()) if (step + 1) % 10 == 0 else math.nan), int(splats["means"].shape[0])

    def _start(self, resume: bool):
        """(splats, step, seconds so far, checkpoint or None)."""
        ckpt_path = latest_checkpoint(self.ckpt_dir) if resume else None
        if resume and ckpt_path is None:
            raise VoxsplatError(f"{self.ckpt_dir}: --resume, but there is no checkpoint to resume "
                                "from; run without --resume")
        if ckpt_path is not None:
            ckpt = load_checkpoint(ckpt_path, self.device)
            splats = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in ckpt["splats"].items()})
            return splats, int(ckpt["step"]), float(ckpt["train_seconds"]), ckpt
        splats = init_splats(self.scene, self.cfg.init, self.cfg.optim.sh_degree, self.cfg.seed,
                             self.device)
        return splats.to(self.device), 0, 0.0, None

    def _save(self, splats, opts, state, data: TrainData, gen, step: int, seconds: float) -> None:
        payload = {
            "step": step, "train_seconds": seconds, "config": self.cfg.to_dict(),
            "splats": {k: v.detach() for k, v in splats.items()},
            "optimizers": {k: o.state_dict() for k, o in opts.items()},
            "strategy": state.state_dict(),
            "data_order": list(data.order), "data_rng": data.gen.get_state(), "rng": gen.get_state(),
        }
        save_checkpoint(self.ckpt_dir, step, payload)

    def _restore(self, ckpt: dict, opts, state, data: TrainData, gen) -> None:
        for k, o in opts.items():
            o.load_state_dict(ckpt["optimizers"][k])
        state.grad2d = ckpt["strategy"]["grad2d"].to(self.device)
        state.count = ckpt["strategy"]["count"].to(self.device)
        data.order = list(ckpt["data_order"])
        data.gen.set_state(ckpt["data_rng"])
        gen.set_state(ckpt["rng"].cpu() if hasattr(ckpt["rng"], "cpu") else ckpt["rng"])


def _progress(total: int, start: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=start, desc="optimize", unit="step", dynamic_ncols=True)
