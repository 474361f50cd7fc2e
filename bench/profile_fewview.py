"""Where a few-view run's training time goes: seconds per 100 steps (synchronized), the depth
stage's seconds, and torch.profiler tables for two windows of steps (the network phase and,
for the voxel model, its explicit stage). Exploration tool for the GPU.

python3 bench/profile_fewview.py CASE MODEL OUT.json [--windows 1000 2500] [--set k=v ...]"""
import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from voxsplat.recon import pipeline
from voxsplat.scripts.bench import source_spec, train_config
from voxsplat.scripts.bench_fewview import FEWVIEW_CASES, case_scene

p = argparse.ArgumentParser()
p.add_argument("case"); p.add_argument("model"); p.add_argument("out", type=Path)
p.add_argument("--data", type=Path, default=Path(".devdata/fv"))
p.add_argument("--windows", type=int, nargs="*", default=[1000, 2500])
p.add_argument("--span", type=int, default=40)
p.add_argument("--set", action="append", default=[])
p.add_argument("--downscale", type=float, default=1.0)
p.add_argument("--steps", type=int, default=None)
a = p.parse_args()
scene = case_scene(a.case, a.data, a.downscale)
folder, preset, masked = FEWVIEW_CASES[a.case]
if masked:
    scene = replace(scene, masks=None)
cfg = train_config(preset, a.steps, (f"downscale={a.downscale}", *a.set), a.model)
cuda = torch.cuda.is_available()
device = "cuda" if cuda else "cpu"
sync = torch.cuda.synchronize if cuda else (lambda: None)
acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
marks, tables, prof = {}, {}, {}
t_start = time.perf_counter()


def on_step(step, info):
    if step % 100 == 0:
        sync()
        marks[step] = time.perf_counter()
    for w in a.windows:
        if step == w:
            sync()
            prof[w] = (torch.profiler.profile(activities=acts), time.perf_counter())
            prof[w][0].start()
        if step == w + a.span and w in prof:
            sync()
            wall = time.perf_counter() - prof[w][1]
            pr = prof[w][0]
            pr.stop()
            ev = pr.key_averages()
            cuda_total = sum(getattr(e, "self_device_time_total", 0) for e in ev) / 1e6
            tables[w] = {"wall_s": wall, "cuda_kernel_s": cuda_total,
                         "by_cuda": ev.table(sort_by="self_device_time_total", row_limit=20) if cuda else None,
                         "by_cpu": ev.table(sort_by="self_cpu_time_total", row_limit=20)}
            print(f"window {w}: {a.span} steps in {wall:.3f} s, kernels {cuda_total:.3f} s")
            print(tables[w]["by_cpu"])


metrics = pipeline.reconstruct(scene, Path(f"/tmp/prof_ws_{a.case}_{a.model}"), cfg,
                               source_spec(a.data, folder, cfg), device=device, progress=False,
                               on_step=on_step)
steps = sorted(marks)
per100 = {s: marks[s] - marks[p] for p, s in zip(steps, steps[1:])}
res = {"case": a.case, "model": a.model, "sets": a.set, "gpu": torch.cuda.get_device_name(0) if cuda else None,
       "torch": torch.__version__, "psnr": metrics["psnr"], "train_seconds": metrics["train_seconds"],
       "wall_total_s": time.perf_counter() - t_start, "per_100_steps_s": per100,
       "windows": tables}
print(json.dumps({k: v for k, v in res.items() if k != "windows"}, indent=1))
json.dump(res, open(a.out, "w"), indent=1)
