"""Benchmark of scheduler.placement.place: 10,000 pending tasks on 1,000 offers.

The input is seeded and the same every run: 4 researchers (one with no registered worker, so a
share of the tasks is refused), jobs of 5-50 instances in 8 shapes, about a fifth of the jobs
with constraints (UNIQUE hostname, MAX_PER rack, LIKE/UNLIKE rack, CLUSTER rack), 2,000 running
tasks counted for fair share and constraints, and 1,000 offers of mixed sizes from 50 worker
accounts, 70 % of them on agents that already run the executor. Prints the median (and min) of
several runs of ``place`` beside a baseline measured in the same run: plain first fit (each task,
in order, takes the first offer with room; no eligibility, constraints, priority or fairness).
Also prints the same input with every job constrained (the slow case). Times are wall clock
and CPU time of this process (the machine is shared; CPU time is what placement costs).
Goal: placement <= 100 ms.

Run: ``.venv/bin/python benchmarks/placement.py [--tasks 10000] [--offers 1000] [--runs 9]
[--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler.placement import (
    EPSILON,
    OfferView,
    PendingTask,
    Resources,
    RunningTask,
    place,
)

SHAPES = [(0.5, 256, 0), (0.5, 1024, 100), (1, 512, 0), (1, 2048, 500), (2, 1024, 0),
          (2, 4096, 1000), (4, 8192, 0), (4, 2048, 2000)]
CONSTRAINTS = [(("hostname", "UNIQUE", None),), (("rack", "MAX_PER", "3"),),
               (("rack", "LIKE", "r[0-9]"),), (("rack", "UNLIKE", "r1[0-4]"),),
               (("rack", "CLUSTER", None),), (("rack", "CLUSTER", "r7"),)]
RESEARCHERS = ("alice", "bob", "carol", "dave")


def scenario(tasks: int, offers: int, seed: int = 1, constrained: float = 0.2):
    """The benchmark's input (plain values), the same for a given seed; ``constrained`` is
    the share of jobs with a constraint."""
    rng = random.Random(seed)
    accounts = [f"worker{i:02d}" for i in range(50)]
    offer_views = [OfferView(
        f"offer-{i:05d}", f"agent-{i:05d}", f"host-{i:05d}",
        {"eos_account": accounts[i % len(accounts)], "rack": f"r{i % 20}"},
        Resources(rng.choice([8, 16, 32]), rng.choice([16384, 32768, 65536]),
                  rng.choice([50_000, 100_000])),
        rng.random() < 0.7) for i in range(offers)]
    eligible = {"alice": frozenset(accounts), "bob": frozenset(accounts[:25]),
                "carol": frozenset(accounts[::4]), "dave": frozenset({"nobody"})}
    pending: list[PendingTask] = []
    job = 0
    while len(pending) < tasks:
        researcher = rng.choices(RESEARCHERS, weights=[4, 3, 2, 1])[0]
        cpus, mem, disk = rng.choice(SHAPES)
        constraints = rng.choice(CONSTRAINTS) if rng.random() < constrained else ()
        priority = rng.randrange(3)
        for instance in range(min(rng.randint(5, 50), tasks - len(pending))):
            pending.append(PendingTask(
                f"job{job:04d}.{instance}", f"job{job:04d}", researcher, priority,
                Resources(cpus, mem, disk), constraints, float(job)))
        job += 1
    running = []
    for i in range(2000):
        owner = rng.randrange(job)  # a job's running tasks share a rack (as CLUSTER keeps them)
        running.append(RunningTask(
            f"old{i}", f"job{owner:04d}", rng.choice(RESEARCHERS),
            f"agent-{rng.randrange(offers * 2):05d}", {"rack": f"r{owner % 20}"},
            Resources(1, 1024, 0)))
    total = Resources(sum(o.available.cpus for o in offer_views) * 2,
                      sum(o.available.mem for o in offer_views) * 2,
                      sum(o.available.disk for o in offer_views) * 2)
    return pending, offer_views, running, eligible, total


def first_fit(pending, offers) -> int:
    """Baseline: each task takes the first offer with room; returns the number launched."""
    free = [list(o.available.as_tuple()) for o in offers]
    launched = 0
    for t in pending:
        c, m, d = t.resources.as_tuple()
        for room in free:
            if c <= room[0] + EPSILON and m <= room[1] + EPSILON and d <= room[2] + EPSILON:
                room[0] -= c
                room[1] -= m
                room[2] -= d
                launched += 1
                break
    return launched


def _timed(fn, runs: int) -> tuple[float, float, float, object]:
    """Median wall ms, min wall ms, median CPU ms of ``runs`` calls, and the last result."""
    wall, cpu = [], []
    result = None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return (statistics.median(wall) * 1000, min(wall) * 1000, statistics.median(cpu) * 1000,
            result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run")
    args = parser.parse_args()
    executor = Resources(0.1, 64, 0)

    def placement_of(pending, offers, running, eligible, total):
        return lambda: place(pending, offers, running=running, eligible=eligible,
                             executor_resources=executor, cluster_total=total)

    pending, offers, running, eligible, total = scenario(args.tasks, args.offers)
    placement = placement_of(pending, offers, running, eligible, total)
    result = placement()
    median, fastest, cpu, again = _timed(placement, args.runs)
    assert again == result, "placement is not deterministic"
    base, base_fastest, base_cpu, base_launched = _timed(
        lambda: first_fit(pending, offers), args.runs)
    reasons: dict[str, int] = {}
    for reason in result.unplaced.values():
        kind = reason.split(":")[0]
        reasons[kind] = reasons.get(kind, 0) + 1
    print(f"input: {len(pending)} pending tasks, {len(offers)} offers, {len(running)} running, "
          f"{len(RESEARCHERS)} researchers, 20 % of jobs constrained")
    print(f"placement: {len(result.launches)} launched, {len(result.unplaced)} waiting "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}), "
          f"{len(result.unused_offers)} offers unused")
    print(f"placement time: median {median:.1f} ms wall (min {fastest:.1f}), median "
          f"{cpu:.1f} ms CPU over {args.runs} runs (goal <= 100 ms: "
          f"{'met' if cpu <= 100 else 'NOT met'} in CPU time)")
    print(f"baseline first fit (no eligibility, constraints, fairness): {base_launched} "
          f"launched, median {base:.1f} ms wall (min {base_fastest:.1f}), {base_cpu:.1f} ms CPU")
    print(f"ratio placement / baseline (CPU): {cpu / base_cpu:.2f}")
    worst = scenario(args.tasks, args.offers, constrained=1.0)
    w_median, _, w_cpu, w_result = _timed(placement_of(*worst), max(3, args.runs // 3))
    print(f"every job constrained: {len(w_result.launches)} launched, median "
          f"{w_median:.1f} ms wall, {w_cpu:.1f} ms CPU")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        placement()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
