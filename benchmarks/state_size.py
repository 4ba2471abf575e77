"""State size of the scheduler at 100,000 tracked tasks: ZooKeeper bytes and process memory.

Writes 100 jobs x 1,000 instances, every instance mid-run (launched, running, two failed
attempts in its history: a worst-ish case), through the scheduler's own store into a real
ZooKeeper, and reports per tracked task: the record's JSON bytes, the znode path bytes,
ZooKeeper's own ``zk_approximate_data_size`` growth (``mntr``), and the Python memory the
scheduler's core holds (tracemalloc). Baseline in the same run: the same tasks written as
uncompacted JSON (full field names) would take, per task. Goal: <= 2 KB per tracked task.

Run: ``.venv/bin/python benchmarks/state_size.py [--jobs 100] [--instances 1000]`` (with
CLUSTERJOBS_STACK=DIR the stack's ZooKeeper is used; else a ZooKeeper of its own starts).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.stack import orchestrator, zookeeper
from actors.stack.context import StackContext, StackOptions
from actors.stack.process import stop
from scheduler.records import Instance, Job
from scheduler.spec import parse_spec
from scheduler.store import Store


def mntr(hostport: str) -> dict[str, str]:
    host, port = hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"mntr")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return dict(line.split("\t", 1) for line in data.decode().splitlines() if "\t" in line)


def busy_instance(index: int, job_id: str) -> Instance:
    now = time.time()
    return Instance(index, state="running", attempts=3, failures=2, task_id=f"{job_id}.{index}.2",
                    agent_id="6a1f0b7e-3c55-4c1e-9a57-2f1d1f7b9a10-S12", worker="worker12",
                    launched_at=now, running_at=now + 1.5, not_before=now - 4,
                    run_us=123456789,
                    history=[[0, "failed", "TASK_FAILED: exit code 1: Traceback ... "
                              "ValueError: bad input line 123"],
                             [1, "timeout", "TASK_KILLED: timed out after 600 s"]])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    args = parser.parse_args()
    total = args.jobs * args.instances
    reuse = os.environ.get("CLUSTERJOBS_STACK")
    ctx = None
    if reuse:
        hostport = str(orchestrator.status(Path(reuse))["zookeeper"])
    else:
        ctx = StackContext(Path(tempfile.mkdtemp(prefix="cj-statesize-")), StackOptions())
        hostport = str(zookeeper.start(ctx)["zookeeper"])
    path = f"/cj-statesize-{uuid.uuid4().hex[:6]}"
    store = Store(f"zk://{hostport}{path}")
    try:
        store.start()
        spec = parse_spec({"version": 1, "researcher": "alice", "name": "bench",
                           "command": ["python3", "simulate.py", "--steps", "1000"],
                           "instances": args.instances, "inputs": ["data/params.json"],
                           "outputs": ["out"], "timeout_seconds": 600, "max_retries": 3},
                          datadir="/protocols/alice")
        before = int(mntr(hostport).get("zk_approximate_data_size", 0))
        tracemalloc.start()
        jobs = []
        for j in range(args.jobs):
            job_id = f"bench-20261126t120000-{j:06x}"
            jobs.append(Job(job_id, spec, "/protocols/alice", time.time(),
                            [busy_instance(i, job_id) for i in range(args.instances)]))
        memory, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        started = time.perf_counter()
        record_bytes = path_bytes = 0
        for job in jobs:
            store.create_job(job)
            record_bytes += len(json.dumps(job.to_record()))
            for inst in job.instances:
                record_bytes += len(json.dumps(inst.to_record(), separators=(",", ":")))
                path_bytes += len(f"{path}/jobs/{job.job_id}/{inst.index}")
        write_s = time.perf_counter() - started
        after = int(mntr(hostport).get("zk_approximate_data_size", 0))
        started = time.perf_counter()
        loaded = store.load(parse_spec)
        load_s = time.perf_counter() - started
        assert sum(len(j.instances) for j in loaded) == total
        verbose = sum(len(json.dumps(asdict_instance(i))) for i in jobs[0].instances)
        print(f"tasks tracked:                      {total:,}")
        print(f"record JSON per task:               {record_bytes / total:,.0f} B")
        print(f"record + znode path per task:       {(record_bytes + path_bytes) / total:,.0f} B")
        print(f"ZooKeeper approximate data growth:  {(after - before) / total:,.0f} B per task "
              f"({(after - before) / 1e6:,.1f} MB)")
        print(f"baseline, full field names:         {verbose / args.instances:,.0f} B per task")
        print(f"scheduler core memory per task:     {memory / total:,.0f} B "
              f"({memory / 1e6:,.1f} MB)")
        print(f"write all: {write_s:.1f} s; load all after a restart: {load_s:.1f} s")
        print("goal: <= 2,048 B per tracked task in ZooKeeper")
        store.zk.delete(path, recursive=True)
    finally:
        store.stop()
        if ctx is not None:
            for record in ctx.records:
                stop(record)
    return 0


def asdict_instance(inst: Instance) -> dict:
    return asdict(inst)


if __name__ == "__main__":
    sys.exit(main())
