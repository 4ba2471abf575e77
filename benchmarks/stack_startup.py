"""Start-up time of each local-stack service, over a few `up`/`down` rounds.

Usage: .venv/bin/python benchmarks/stack_startup.py [--rounds N]
Prints per-service start-up seconds (min / median / max) and the wall time of `up` and `down`.
Services in one wave start in parallel, so `up` is less than the sum of the services.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from actors import logfmt
from actors.stack import orchestrator
from actors.stack.context import StackOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    logfmt.configure("warning")
    per_service: dict[str, list[float]] = {}
    ups: list[float] = []
    downs: list[float] = []
    for round_no in range(1, args.rounds + 1):
        workdir = Path(tempfile.mkdtemp(prefix="clusterjobs-bench-stack-"))
        began = time.monotonic()
        state, _ = orchestrator.up(workdir, StackOptions())
        ups.append(time.monotonic() - began)
        began = time.monotonic()
        orchestrator.down(workdir)
        downs.append(time.monotonic() - began)
        for name, seconds in state["startup_seconds"].items():
            per_service.setdefault(name, []).append(seconds)
        print(f"round {round_no}/{args.rounds}: up {ups[-1]:.1f} s, down {downs[-1]:.1f} s",
              flush=True)
    print(f"\nmachine: {os.cpu_count()} cores; rounds: {args.rounds}")
    print(f"{'service':<12} {'min s':>7} {'median s':>9} {'max s':>7}")
    for name, values in per_service.items():
        print(f"{name:<12} {min(values):7.2f} {statistics.median(values):9.2f} {max(values):7.2f}")
    for label, values in (("stack up", ups), ("stack down", downs)):
        print(f"{label:<12} {min(values):7.2f} {statistics.median(values):9.2f} {max(values):7.2f}")


if __name__ == "__main__":
    main()
