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
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Optional

_BAR = re.compile(r"optimize:.*?(\d+)/(\d+) \[([\d:]+),.*?left=(>?[\d:?]+)(?:-([\d:]+))?")


def seconds(text: str) -> float:
    """tqdm's ``MM:SS`` or ``H:MM:SS`` in seconds."""
    parts = [int(p) for p in text.split(":")]
    return float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))))


State = tuple[int, int, float, Optional[float], Optional[float]]
"""(step, total, elapsed s, time left s, or the low and high ends of a range, or None twice)."""


def bar_states(log: str) -> list[list[State]]:
    """The state of every drawn bar, one list per run."""
    runs: list[list[State]] = []
    for chunk in re.split(r"[\r\n]", log):
        m = _BAR.search(chunk)
        if not m:
            continue
        step, total = int(m.group(1)), int(m.group(2))
        low = None if m.group(4) == "?" else seconds(m.group(4).lstrip(">"))
        high = seconds(m.group(5)) if m.group(5) else None if m.group(4).startswith(">") else low
        if not runs or step < runs[-1][-1][0]:
            runs.append([])
        runs[-1].append((step, total, seconds(m.group(3)), low, high))
    return runs


def _ratio(guess: Optional[float], truth: float) -> Optional[float]:
    return None if guess is None or truth <= 0 else round(guess / truth, 3)


def accuracy(states: list[State]) -> dict:
    """At each tenth of the run: the estimate against the time the run then took."""
    total, end = states[-1][1], states[-1][2]
    rows, next_tenth = [], 1
    for step, _, elapsed, low, high in states:
        if step < next_tenth * total / 10 or step >= total:
            continue
        next_tenth = int(step * 10 // total) + 1
        truth = end - elapsed
        rate_guess = elapsed / step * (total - step) if step else None
        rows.append({"step": step, "elapsed_s": elapsed, "left_s": [low, high],
                     "true_left_s": truth, "ratio": [_ratio(low, truth), _ratio(high, truth)],
                     "rate_guess_s": None if rate_guess is None else round(rate_guess, 1),
                     "rate_guess_ratio": _ratio(rate_guess, truth)})
    return {"steps": total, "seconds": end, "tenths": rows}


def run_logged(argv: list[str]) -> tuple[int, str]:
    """Run `argv` on a pseudo-terminal 160 columns wide (tqdm draws nothing on a 0-wide one); its
    exit status and everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    os.close(master)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def _span(pair: list) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}-{pair[1]}"


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
            f"{r['step']}: {_span(r['ratio'])}x (rate {r['rate_guess_ratio']}x)" for r in run["tenths"]),
            file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
