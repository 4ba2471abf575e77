"""`make demo`: the main job on the local stack.

Brings the stack up in a fresh folder, asks every service a real question, runs the sample
jobs of deploy/samples/ through the scheduler and the executor (actors/demo_jobs.py), prints
their results and who earned what time, and takes the stack down. Exit status 0 only when
every service answered and every job finished.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from actors import demo_jobs, logfmt
from actors.stack import orchestrator
from actors.stack.errors import StackError
from actors.stack.health import check_all


def main() -> int:
    logfmt.configure("warning")
    workdir = Path(tempfile.mkdtemp(prefix="clusterjobs-demo-"))
    print(f"== clusterjobs demo: local stack in {workdir}")
    began = time.monotonic()
    try:
        state, _ = orchestrator.up(workdir)
    except StackError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"stack up in {time.monotonic() - began:.1f} s")
        for name, seconds in state["startup_seconds"].items():
            print(f"  {name:<11} {seconds:6.2f} s")
        print("== health")
        results = check_all(state["endpoints"])
        for name, answer in results.items():
            print(f"  {name:<11} {answer}")
        failed = [n for n, a in results.items() if a.startswith("FAILED")]
        if not failed:
            try:
                if not demo_jobs.run_jobs(workdir, state["endpoints"]):
                    failed.append("jobs")
            except RuntimeError as exc:
                print(f"demo: {exc}", file=sys.stderr)
                failed.append("jobs")
    finally:
        stopped = orchestrator.down(workdir)
        print(f"== stack down ({len(stopped)} processes stopped)")
    if failed:
        print(f"demo: failed: {', '.join(failed)}; logs kept in {workdir / 'logs'}",
              file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print("demo: every service healthy, every job finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
