"""Step-time traces of training runs, and how well the progress bar's `left=` would predict them.

    python bench/step_trace.py record --out trace.json [--data DIR] [--steps N] [--model voxel]
        [--set optim.coarse_levels_masked=3] CASE [CASE ...]   # fern_3view, lego_8view, synthetic
    python bench/step_trace.py replay trace.json [...]

`record` trains each case with the `sparse` preset and keeps, after every step, the clock, the
image level (coarse to fine) and the number of Gaussians; on a GPU the loss is read back every
10th step, so only 10-step sums of the times are exact. `replay` feeds the trace's 10-step
windows to `recon.progress.StepTimes` (what the bar shows) and to the alternatives below, and
prints each estimate of the time left over the true one at every tenth of the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def record(case: str, data: Path, steps, model: str, sets: list[str], device: str) -> dict:
    from voxsplat.recon import pipeline
    from voxsplat.recon.config import for_scene
    from voxsplat.recon.engine import coarse_level
    from voxsplat.scripts.bench import environment, train_config
    cfg = train_config("sparse", steps, tuple(sets), model)
    if case == "synthetic":
        from voxsplat.data.synthetic import SyntheticConfig, make_synthetic_scene
        scene = make_synthetic_scene(SyntheticConfig()).scene
    else:
        from voxsplat.scripts.bench_fewview import case_scene
        scene = case_scene(case, data, cfg.downscale)
    rows: list[tuple[int, float, int]] = []

    def on_step(step: int, info: dict) -> None:
        rows.append((step, time.perf_counter(), info["n"]))

    with tempfile.TemporaryDirectory() as ws:
        m = pipeline.reconstruct(scene, Path(ws), cfg, {"kind": "bench", "case": case}, device=device,
                                 progress=False, on_step=on_step)
    o = for_scene(cfg, scene.masks is not None).optim  # as the trainer applies it
    return {"case": case, "model": model, "steps": cfg.optim.steps, "sets": sets,
            "coarse_levels": o.coarse_levels, "coarse_until": o.coarse_until,
            "levels": [coarse_level(s, cfg.optim.steps, o.coarse_levels, o.coarse_until)
                       for s in range(cfg.optim.steps)],
            "step": [r[0] for r in rows], "clock": [r[1] for r in rows], "n": [r[2] for r in rows],
            "psnr": m["psnr"], **environment()}


def windows(trace: dict, every: int = 10) -> list[tuple[int, int, float]]:
    """(first step, last step + 1, seconds) of each `every`-step window of the trace."""
    clock, out = trace["clock"], []
    for end in range(every, len(clock) + 1, every):
        start = end - every
        before = clock[start - 1] if start else None
        if before is not None:
            out.append((start, end, clock[end - 1] - before))
    return out


def replay(trace: dict, by_size: bool = True) -> dict:
    """The bar's estimate (and tqdm's rate) against the truth at every tenth of the run."""
    from voxsplat.recon.progress import StepTimes
    levels, total = trace["levels"], trace["steps"]
    times = StepTimes(lambda s: levels[s], total)
    end_clock = trace["clock"][-1]
    start_clock = trace["clock"][0]
    rows, next_tenth = [], 1
    sizes = trace["n"] if by_size else [1.0] * len(trace["n"])
    for start, end, seconds in windows(trace):
        for s in range(start, end):
            times.add(s, seconds / (end - start), sizes[s])
        times.flush()
        if end < next_tenth * total / 10 or end >= total:
            continue
        next_tenth = int(end * 10 // total) + 1
        truth = end_clock - trace["clock"][end - 1]
        left = times.left(end)
        elapsed = trace["clock"][end - 1] - start_clock
        rows.append({"step": end, "true_left_s": round(truth, 1),
                     "left_s": None if left is None else [round(t, 1) for t in left],
                     "ratio": None if left is None else [round(t / truth, 3) for t in left],
                     "rate_ratio": round(elapsed / end * (total - end) / truth, 3)})
    return {"case": trace["case"], "model": trace["model"], "steps": total, "by_size": by_size,
            "seconds": round(end_clock - start_clock, 1), "tenths": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("cases", nargs="+")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--data", type=Path, default=_ROOT / ".." / "shared" / "data")
    r.add_argument("--steps", type=int)
    r.add_argument("--model", default="voxel")
    r.add_argument("--device", default="auto")
    r.add_argument("--set", dest="sets", action="append", default=[])
    q = sub.add_parser("replay")
    q.add_argument("traces", nargs="+", type=Path)
    a = p.parse_args()
    if a.cmd == "record":
        traces = [record(c, a.data, a.steps, a.model, a.sets, a.device) for c in a.cases]
        a.out.write_text(json.dumps(traces) + "\n")
        for t in traces:
            print(json.dumps(replay(t)))
        return 0
    for path in a.traces:
        for t, by_size in ((t, b) for t in json.loads(path.read_text()) for b in (True, False)):
            res = replay(t, by_size)
            print(f"{res['case']} {res['model']} {res['steps']} steps, {res['seconds']} s, "
                  f"{'per Gaussian' if by_size else 'per step'}:",
                  ", ".join(f"{r['step']}: {r['ratio']} (rate {r['rate_ratio']})"
                            for r in res["tenths"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
