"""How right the optimization bar's `left=` was: run a command (under a pseudo-terminal, so the
bench's bars draw), or read a saved log, and compare each `left=` to the time the run then took.

    python bench/eta_accuracy.py --out eta.json -- python -m voxsplat.scripts.bench ... lego_8view
    python bench/eta_accuracy.py --out eta.json --log run.log

The JSON lists, at each tenth of the steps, the estimate, the true time left (from tqdm's
elapsed, 1 s resolution) and their ratio, with tqdm's own rate-based guess beside it
(steps left / the rate so far), the estimate the bar replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import sys
from pathlib import Path

_BAR = re.compile(r"optimize:.*?(\d+)/(\d+) \[([\d:]+),.*?left=([\d:?]+)")


def seconds(text: str) -> float:
    """tqdm's ``MM:SS`` or ``H:MM:SS`` in seconds."""
    parts = [int(p) for p in text.split(":")]
    return float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))))


def bar_states(log: str) -> list[list[tuple[int, int, float, float | None]]]:
    """The (step, total, elapsed s, left s or None) of every drawn bar, one list per run."""
    runs: list[list[tuple[int, int, float, float | None]]] = []
    for chunk in re.split(r"[\r\n]", log):
        m = _BAR.search(chunk)
        if not m:
            continue
        step, total = int(m.group(1)), int(m.group(2))
        state = (step, total, seconds(m.group(3)), None if m.group(4) == "?" else seconds(m.group(4)))
        if not runs or step < runs[-1][-1][0]:
            runs.append([])
        runs[-1].append(state)
    return runs


def accuracy(states: list[tuple[int, int, float, float | None]]) -> dict:
    """At each tenth of the run: the estimate against the time the run then took."""
    total, end = states[-1][1], states[-1][2]
    rows, next_tenth = [], 1
    for step, _, elapsed, left in states:
        if step < next_tenth * total / 10 or step >= total:
            continue
        next_tenth = int(step * 10 // total) + 1
        truth = end - elapsed
        rate_guess = elapsed / step * (total - step) if step else None
        rows.append({"step": step, "elapsed_s": elapsed, "left_s": left, "true_left_s": truth,
                     "ratio": None if left is None or truth <= 0 else round(left / truth, 3),
                     "rate_guess_s": None if rate_guess is None else round(rate_guess, 1),
                     "rate_guess_ratio": None if rate_guess is None or truth <= 0
                     else round(rate_guess / truth, 3)})
    return {"steps": total, "seconds": end, "tenths": rows}


def run_logged(argv: list[str]) -> tuple[int, str]:
    """Run `argv` under a pseudo-terminal; its exit status and everything it wrote."""
    chunks: list[bytes] = []

    def read(fd: int) -> bytes:
        data = os.read(fd, 65536)
        chunks.append(data)
        return data

    status = pty.spawn(argv, read)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log", type=Path, help="a saved log instead of a command")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.log is not None:
        rc, log = 0, a.log.read_text(errors="replace")
    else:
        argv = a.command[1:] if a.command[:1] == ["--"] else a.command
        rc, log = run_logged(argv)
        a.out.with_suffix(".log").write_text(log)
    runs = [accuracy(states) for states in bar_states(log) if states]
    a.out.write_text(json.dumps({"command": a.command, "exit_code": rc, "runs": runs}, indent=1) + "\n")
    for run in runs:
        print(f"{run['steps']} steps in {run['seconds']:.0f} s:", ", ".join(
            f"{r['step']}: {r['ratio']}x (rate {r['rate_guess_ratio']}x)" for r in run["tenths"]),
            file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
