"""Where a few-view run spends the time before its steps settle: the depth stage, the imports
a run pays once per process (spconv's CUDA build, torch's optimizer machinery), the model's
creation, and each of the first steps (synchronized). With --cprofile, also cProfile's top
functions of the creation and of the first step (its overhead inflates those two times).
Exploration tool for the GPU.

python3 bench/profile_init.py CASE MODEL OUT.json [--steps-timed 30] [--cprofile] [--set k=v]"""
import argparse
import cProfile
import io
import json
import pstats
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from voxsplat.recon.engine import Trainer, TrainData
from voxsplat.recon.pipeline import dense_depth_stage
from voxsplat.recon.representation.models import MODELS
from voxsplat.scripts.bench import train_config
from voxsplat.scripts.bench_fewview import FEWVIEW_CASES, case_scene

p = argparse.ArgumentParser()
p.add_argument("case"); p.add_argument("model"); p.add_argument("out", type=Path)
p.add_argument("--data", type=Path, default=Path(".devdata/fv"))
p.add_argument("--steps-timed", type=int, default=30)
p.add_argument("--set", action="append", default=[])
p.add_argument("--cprofile", action="store_true")
a = p.parse_args()
cuda = torch.cuda.is_available()
dev = torch.device("cuda" if cuda else "cpu")
sync = torch.cuda.synchronize if cuda else (lambda: None)
scene = case_scene(a.case, a.data)
folder, preset, masked = FEWVIEW_CASES[a.case]
if masked:
    scene = replace(scene, masks=None)
cfg = train_config(preset, None, tuple(a.set), a.model)


def profiled(fn):
    pr = cProfile.Profile() if a.cprofile else None
    sync(); t = time.perf_counter()
    if pr is not None:
        pr.enable()
    out = fn(); sync()
    if pr is None:
        return out, time.perf_counter() - t, ""
    pr.disable()
    dt = time.perf_counter() - t
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(25)
    return out, dt, s.getvalue()


def import_optim():
    p = torch.nn.Parameter(torch.zeros(8, device=dev))
    opt = torch.optim.Adam([p], lr=1e-3, fused=cuda)
    p.grad = torch.ones_like(p)
    opt.step()


def import_spconv():
    from voxsplat.recon.backbone import spconv
    spconv()


res = {"case": a.case, "model": a.model, "sets": a.set,
       "gpu": torch.cuda.get_device_name(0) if cuda else None, "torch": torch.__version__}
if cuda:
    torch.zeros(1, device=dev); sync()
with tempfile.TemporaryDirectory() as ws:
    (scene2, depth), res["depth_stage_s"], _ = profiled(
        lambda: dense_depth_stage(scene, cfg, Path(ws), dev, False))
    _, res["import_optim_s"], _ = profiled(import_optim)
    if a.model == "voxel":
        _, res["import_spconv_s"], _ = profiled(import_spconv)
    trainer = Trainer(scene2, cfg, Path(ws), dev, depth)
    cfg2 = trainer.cfg
    model, res["create_s"], res["create_profile"] = profiled(
        lambda: MODELS[cfg2.model].create(scene2, cfg2, trainer.scene_scale, dev))
    data = TrainData(scene2, list(scene2.split("train")), dev, cfg2.seed, depth,
                     masks=cfg2.optim.random_background)
    gen = torch.Generator(device=dev).manual_seed(cfg2.seed + 1)
    _, res["first_step_s"], res["first_step_profile"] = profiled(
        lambda: trainer._step(model, data, 0, gen))
    times = []
    for step in range(1, a.steps_timed):
        sync(); t = time.perf_counter()
        trainer._step(model, data, step, gen)
        sync(); times.append(time.perf_counter() - t)
    res["step_s"] = times
print(json.dumps({k: v for k, v in res.items() if not k.endswith("profile")}, indent=1))
print(res["create_profile"][:3000]); print(res["first_step_profile"][:3000])
json.dump(res, open(a.out, "w"), indent=1)
