"""Chain RAM stays bounded (issue 9, must show 6): credits go through the scheduler's outbox
and pusher (real ZooKeeper and nodeos), payouts settle them, and the scheduler's row archiver
removes the paid rows past the credit window; the jobs account's ``ram_usage`` after 1,000 and
after 10,000 credited tasks is the same within one archive batch's worth of rows.

The contract here is a copy of the jobs contract built with a 2-second credit window (the
real one keeps identities 24 hours), deployed on fresh accounts of the stack's nodeos, so the
window passes within the test. Everything else is the code the scheduler runs.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from contracts_world import Chain, make_world, open_protocol, payout_args
from kazoo.client import KazooClient
from test_pusher import Outbox

from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from scheduler import pusher
from scheduler.chain import ChainClient, Signer
from scheduler.chain_view import ChainView
from scheduler.pusher_core import Limits
from scheduler.row_archive import RowArchiver, read_job_rows

WINDOW_S = 2.0
ROUND = 1_000  # credited tasks between two measurements
BATCH = 100  # removejob actions per transaction


@pytest.fixture
def zk(stack: dict) -> Iterator[KazooClient]:
    client = KazooClient(hosts=str(stack["zookeeper"]))
    client.start(timeout=30)
    yield client
    client.stop()


def ram(url: str, account: str) -> int:
    return int(devchain.rpc(url, "/v1/chain/get_account", {"account_name": account})[
        "ram_usage"])


def test_ram_of_the_jobs_account_levels_off_with_archiving(chain: Chain, zk: KazooClient,
                                                           tmp_path: Path) -> None:
    contract_build.build_one("jobs", "jobs", tmp_path,
                             defines=(f"CJ_CREDIT_WINDOW_US={int(WINDOW_S * 1e6)}",))
    contract_build.build_one("registry", "registry", tmp_path)
    target = contract_deploy.Deployment(chain.url, _name("jobs"),
                                        _name("regy"))
    contract_deploy.deploy(target, build_dir=tmp_path)
    jobs = target.jobs
    own = Chain(chain.url, target.jobs, target.registry, chain.api)
    world = make_world(own, workers=2, dispatchers=0)
    open_protocol(own, world)
    chain.push_many([(jobs, "regworker", {"worker": w, "researcher": world.researcher},
                      {jobs: "active"}) for w in world.workers])

    signer = ChainClient(chain.url, Signer(jobs, "pusher", (devchain.DEV_PRIVATE_KEY,)))
    path = f"/cjtest/{_name('ram')}"
    outbox = Outbox(zk, path)
    built = pusher.build(zk, path, signer, jobs, Limits(max_wait=0.05))
    stop = threading.Event()
    runner = threading.Thread(target=built.run, args=(stop,), daemon=True)
    runner.start()
    view = ChainView(chain.url, registry=target.registry, jobs=jobs)
    archiver = RowArchiver(view, signer, WINDOW_S, batch=BATCH, every_s=3600)
    credited = {w: 0 for w in world.workers}
    measured: dict[int, int] = {}
    per_row: list[float] = []
    try:
        for n in range(10):
            entries = [_entry(world.researcher, world.workers[i % 2], n * ROUND + i)
                       for i in range(ROUND)]
            for start in range(0, ROUND, 250):
                outbox.write(entries[start:start + 250])
            outbox.wait_drained()
            for e in entries:
                credited[e["account"]] += e["time_us"]
            rows_before = sum(len(read_job_rows(view, w)) for w in world.workers)
            # Within the window nothing may go, paid or not: the contract would refuse.
            assert archiver.round() == 0
            chain.push_many([(jobs, "payout", payout_args(world, w, "worker"),
                              {world.funder: "active"}) for w in world.workers])
            time.sleep(WINDOW_S + 0.5)
            before = ram(chain.url, jobs)
            assert archiver.round() == rows_before == ROUND
            after = ram(chain.url, jobs)
            per_row.append((before - after) / ROUND)
            assert [read_job_rows(view, w) for w in world.workers] == [[], []]
            measured[(n + 1) * ROUND] = after
    finally:
        stop.set()
        runner.join(30)
    # The totals are untouched by archiving: each worker's credited time, to the microsecond.
    for w in world.workers:
        [row] = own.rows(jobs, w, "worker")
        assert (int(row["total_time"]), int(row["unpaid_time"])) == (credited[w], 0)
    assert archiver.failed == 0
    bytes_per_row = min(per_row)
    assert bytes_per_row > 100  # a job row and its index entry
    drift = abs(measured[10_000] - measured[1_000])
    print(f"jobs ram_usage after 1,000: {measured[1_000]} B, after 10,000: "
          f"{measured[10_000]} B; a job row costs {bytes_per_row:.0f} B")
    assert drift <= BATCH * bytes_per_row, measured


def _name(prefix: str) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return prefix + "".join(secrets.choice(letters) for _ in range(12 - len(prefix)))


def _entry(researcher: str, worker: str, n: int) -> dict:
    """A worker CreditEntry (INTERFACES.md) as the scheduler writes it."""
    return {"kind": "worker", "researcher": researcher, "account": worker,
            "time_us": 1_000 + n % 977, "key": secrets.token_hex(8),
            "credit_id": int.from_bytes(secrets.token_bytes(8), "little") or 1,
            "task_id": f"task-{n}", "job_id": "ram", "instance": n, "attempt": 1,
            "finished_at_us": int(time.time() * 1e6)}
