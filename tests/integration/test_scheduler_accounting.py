"""Accounting through the scheduler on the local stack: the scheduler's pusher drains the
credits of finished tasks into the jobs contract; the chain's totals grow by exactly the time
the scheduler credited, to the microsecond, with one job row per worker credit."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

from scheduler.chain import ChainClient

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))
from scheduler_proc import SchedulerProc, marker_command, submit_many, wait

_CREDITED = re.compile(r'^clusterjobs_credited_seconds_total\{(?P<labels>[^}]*)\} (?P<v>\S+)$')


def settle(client: ChainClient) -> None:
    """Wait until whatever was sent before now is in an irreversible block (a scheduler of an
    earlier test may have pushed a credit just before it stopped)."""
    head = int(client.info()["head_block_num"])
    wait(lambda: int(client.info()["last_irreversible_block_num"]) > head + 1, 30,
         "the chain's last irreversible block past the current head")


def chain_totals(client: ChainClient, sample: dict) -> tuple[Counter, Counter]:
    """(total_time by (kind, account), job rows by worker) for the sample's researcher."""
    researcher = sample["researcher"]
    totals: Counter = Counter()
    rows: Counter = Counter()
    for worker in sample["workers"]:
        for row in client.rows("jobs", worker, "worker"):
            if row["researcher"] == researcher:
                totals[("worker", worker)] += int(row["total_time"])
        rows[worker] = sum(1 for r in client.rows("jobs", worker, "job")
                           if r["researcher"] == researcher)
    for dispatcher in set(sample["dispatchers"].values()):
        for row in client.rows("jobs", dispatcher, "dispatcher"):
            if row["researcher"] == researcher:
                totals[("dispatcher", dispatcher)] += int(row["total_time"])
    return totals, rows


def credited(proc: SchedulerProc) -> Counter:
    """µs the scheduler wrote to its outbox, by (kind, account), from its /metrics."""
    with urllib.request.urlopen(f"{proc.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found: Counter = Counter()
    for line in text.splitlines():
        match = _CREDITED.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            found[(labels["kind"], labels["account"])] += round(float(match["v"]) * 1e6)
    return found


def test_finished_tasks_are_credited_on_chain_exactly(stack, stack_dir, tmp_path):
    sample = stack["sample"]
    client = ChainClient(str(stack["nodeos"]))
    settle(client)
    totals_before, rows_before = chain_totals(client, sample)
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-acct-{uuid.uuid4().hex[:8]}"
    proc = SchedulerProc(stack, state, tmp_path)
    try:
        proc.wait_healthy()
        spec = {"version": 1, "researcher": sample["researcher"], "name": "credit",
                "command": marker_command(markers, "sleep 0.3"), "instances": 5,
                "resources": {"cpus": 0.1, "mem": 32}}
        job_ids = submit_many(str(stack_dir), [spec] * 4, tmp_path)

        def done() -> bool:
            jobs = [proc.job(j) for j in job_ids]
            return all(j is not None and j["state"] == "finished" for j in jobs)

        wait(done, 300, "4 jobs finished", proc.proc)

        def drained() -> bool:
            code, body = proc.get("/accounting")
            return code == 200 and body["enabled"] and body["outbox"] == 0

        wait(drained, 60, "the outbox drained", proc.proc)
        wanted = credited(proc)
        status = subprocess.run([sys.executable, "-m", "actors.cli", "status", "--stack",
                                 str(stack_dir)], capture_output=True, text=True, timeout=60,
                                check=False)
    finally:
        proc.stop()
    totals_after, rows_after = chain_totals(client, sample)
    moved = Counter({k: totals_after[k] - totals_before[k] for k in totals_after})
    moved = +moved  # drop zeros
    assert moved == wanted
    assert sum(v for (kind, _), v in wanted.items() if kind == "worker") > 0
    assert any(kind == "dispatcher" for kind, _ in wanted)
    # One job row per worker credit: 20 finished instances, none twice.
    assert sum(rows_after.values()) - sum(rows_before.values()) == 20
    assert status.returncode == 0, status.stderr
    assert "accounting on: 0 credit(s) in the outbox" in status.stdout


def _rows(client: ChainClient, sample: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """(kind, account) → (total_time, unpaid_time) for the sample's researcher."""
    found = {}
    accounts = [("worker", w) for w in sample["workers"]] + [
        ("dispatcher", d) for d in set(sample["dispatchers"].values())]
    for kind, account in accounts:
        for row in client.rows("jobs", account, kind):
            if row["researcher"] == sample["researcher"]:
                found[(kind, account)] = (int(row["total_time"]), int(row["unpaid_time"]))
    return found


def _units(client: ChainClient, account: str) -> int:
    found = [b for b in client.balances(account, "eosio.token") if b.endswith(" JOB")]
    return round(float(found[0].split()[0]) * 10_000) if found else 0


def test_payout_policy_pays_the_contract_formula_once(stack, stack_dir, tmp_path):
    from contracts import pay
    from scheduler import payout_service
    from scheduler.chain_view import ChainView

    sample = stack["sample"]
    url = str(stack["nodeos"])
    client = ChainClient(url)
    _, terms = payout_service.read_owed(ChainView(url))
    rates = terms[sample["researcher"]]
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-pay-{uuid.uuid4().hex[:8]}"
    settle(client)
    before = _rows(client, sample)
    balances = {account: _units(client, account) for _, account in before}
    proc = SchedulerProc(stack, state, tmp_path, "--payout-every", "1")
    try:
        proc.wait_healthy()
        spec = {"version": 1, "researcher": sample["researcher"], "name": "paid",
                "command": marker_command(markers, "sleep 0.5"), "instances": 4,
                "resources": {"cpus": 0.1, "mem": 32}}
        job_ids = submit_many(str(stack_dir), [spec] * 2, tmp_path)

        def paid() -> bool:
            jobs = [proc.job(j) for j in job_ids]
            if not all(j is not None and j["state"] == "finished" for j in jobs):
                return False
            code, body = proc.get("/accounting")
            if code != 200 or body["outbox"]:
                return False
            # Paid down to less than one token unit (the policy waits for more).
            return all(pay.compute_pay(total, unpaid, rates.worker_rate if kind == "worker"
                                       else rates.dispatcher_rate) == 0
                       for (kind, _), (total, unpaid) in _rows(client, sample).items())

        wait(paid, 300, "jobs finished, credited and paid", proc.proc)
    finally:
        proc.stop()
    after = _rows(client, sample)
    moved_any = False
    for key, (total, unpaid) in after.items():
        kind, account = key
        rate = rates.worker_rate if kind == "worker" else rates.dispatcher_rate
        total0, unpaid0 = before.get(key, (0, 0))
        # Payouts telescope: what was paid is value(paid time), whatever the split.
        expected = pay.time_value(total - unpaid, rate) - pay.time_value(total0 - unpaid0, rate)
        assert _units(client, account) - balances[account] == expected, key
        moved_any = moved_any or expected > 0
    assert moved_any
    # A second payout with nothing unpaid moves nothing.
    worker = next(a for (k, a), (_, u) in after.items() if k == "worker" and u == 0)
    held = _units(client, worker)
    from actors.stack import devchain
    from scheduler.chain import ChainError, Signer

    payer = ChainClient(url, Signer("", "cjpay", (devchain.DEV_PRIVATE_KEY,)))
    try:
        payer.push([payer.action("jobs", "payout", {
            "owner": sample["owner"], "funder": sample["fund_account"],
            "researcher": sample["researcher"], "contributor": worker, "type": "worker"},
            [(sample["fund_account"], "cjpay")])])
    except ChainError as exc:
        assert "nothing to pay" in str(exc)
    assert _units(client, worker) == held


class OutboxRecorder:
    """Records every credit the scheduler writes to its outbox (the test's ground truth:
    entries stay there until confirmed irreversible, seconds after they are written)."""

    def __init__(self, zk_hosts: str, state: str) -> None:
        from kazoo.client import KazooClient
        from kazoo.recipe.watchers import ChildrenWatch

        self.zk = KazooClient(hosts=zk_hosts)
        self.zk.start(timeout=30)
        self.path = f"/{state}/outbox"
        self.zk.ensure_path(self.path)
        self.pending: dict[str, object] = {}
        self.credits: dict[str, dict] = {}
        self.missed: set[str] = set()
        ChildrenWatch(self.zk, self.path, self._changed)

    def _changed(self, children: list[str]) -> None:
        for name in children:
            if name not in self.pending:
                self.pending[name] = self.zk.get_async(f"{self.path}/{name}")

    def collect(self) -> None:
        import json

        for name, result in list(self.pending.items()):
            if name in self.credits or name in self.missed:
                continue
            try:
                self.credits[name] = json.loads(result.get(timeout=10)[0])
            except Exception:
                self.missed.add(name)

    def stop(self) -> None:
        self.zk.stop()


def recorded_attempts(zk, state: str) -> dict[str, dict]:
    """The scheduler's own record of every attempt, read from its ZooKeeper state: task id ->
    {job, instance, ended, finished (the instance's last, finishing attempt), run_us (the
    instance's executor time over its attempts)}. Every job of the state is included, also one
    the scheduler took from the shared incoming folder that this test did not submit."""
    import json

    from scheduler.records import Instance, task_id_of

    found: dict[str, dict] = {}
    root = f"/{state}/jobs"
    for job_id in zk.get_children(root):
        for name in zk.get_children(f"{root}/{job_id}"):
            inst = Instance.from_record(json.loads(zk.get(f"{root}/{job_id}/{name}")[0]))
            # The record keeps the last four attempts: with more, the check would be partial.
            assert len(inst.history) == inst.attempts, (job_id, inst)
            for attempt, ended, _reason in inst.history:
                found[task_id_of(job_id, inst.index, attempt)] = {
                    "job": job_id, "instance": inst.index, "ended": ended,
                    "finished": inst.state == "finished" and attempt == inst.attempts - 1,
                    "run_us": inst.run_us or 0}
    return found


def assert_worker_credits_exact(credits: list[dict], attempts: dict[str, dict]) -> None:
    """Exactly one worker credit per attempt that ran on a worker (every attempt the scheduler
    recorded, lost ones aside: no executor time comes back from a lost agent), none for
    anything else, none twice; a finished attempt's credit is > 0 unless the executor measured
    0, and an instance is never credited more than its executor time."""
    worker = [c for c in credits if c["kind"] == "worker"]
    by_task = Counter(c["task_id"] for c in worker)
    twice = {t: n for t, n in by_task.items() if n > 1}
    assert not twice, f"attempts credited more than once: {twice}"
    ran = {t for t, a in attempts.items() if a["ended"] != "lost"}
    assert set(by_task) - set(attempts) == set(), "credits for attempts the scheduler never made"
    missing = {t: attempts[t] for t in ran - set(by_task)
               if attempts[t]["finished"] and attempts[t]["run_us"] > 0}
    assert not missing, f"finished attempts with no worker credit: {missing}"
    assert set(by_task) == ran, {"not credited": sorted(ran - set(by_task)),
                                 "credited": sorted(set(by_task) - ran)}
    per_instance: Counter = Counter()
    for c in worker:
        assert c["time_us"] > 0
        per_instance[(c["job_id"], c["instance"])] += c["time_us"]
    for task_id, a in attempts.items():
        key = (a["job"], a["instance"])
        assert per_instance[key] <= a["run_us"], (task_id, per_instance[key], a["run_us"])


def assert_own_jobs_ran_once(proc: SchedulerProc, job_ids: list[str], markers: Path,
                             attempts: dict[str, dict]) -> None:
    """Each job this test submitted was accepted by this test's scheduler (not answered from
    another scheduler's HDFS archive: every scheduler on the stack watches the same incoming
    folder), and each of its instances' commands ran exactly as many times as the scheduler
    recorded attempts that ran (one here: nothing fails)."""
    from scheduler_proc import runs

    for job_id in job_ids:
        job = proc.job(job_id)
        assert job is not None and not job.get("archived"), \
            f"job {job_id} was not run by this test's scheduler: {job}"
        for task in job["tasks"]:
            ran = sum(1 for a in attempts.values() if a["job"] == job_id
                      and a["instance"] == task["instance"] and a["ended"] != "lost")
            assert runs(markers, job_id, task["instance"]) == ran == 1, (job_id, task)


def test_sigkill_the_scheduler_at_five_points_totals_stay_exact(stack, stack_dir, tmp_path):
    import random

    sample = stack["sample"]
    client = ChainClient(str(stack["nodeos"]))
    settle(client)
    totals_before, _ = chain_totals(client, sample)
    rows_before = {w: {r["id"] for r in client.rows("jobs", w, "job")}
                   for w in sample["workers"]}
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-kill-{uuid.uuid4().hex[:8]}"
    recorder = OutboxRecorder(str(stack["zookeeper"]), state)
    journal = f"/{state}/pusher/journal"
    procs = [SchedulerProc(stack, state, tmp_path, "--zk-session-timeout", "10")]
    rng = random.Random(5)
    try:
        procs[-1].wait_healthy()
        spec = {"version": 1, "researcher": sample["researcher"], "name": "killed",
                "command": marker_command(markers, "sleep $((CLUSTERJOBS_INSTANCE % 3))"),
                "instances": 6, "resources": {"cpus": 0.1, "mem": 32}}
        job_ids = submit_many(str(stack_dir), [spec] * 5, tmp_path)
        for kill in range(5):
            if kill < 2:
                # Inside the push: a transaction journaled and not yet finished.
                wait(lambda: recorder.zk.exists(journal) and recorder.zk.get_children(journal),
                     120, "a journaled transaction", procs[-1].proc)
            else:
                time.sleep(rng.uniform(0.5, 4.0))
            procs[-1].kill()
            # A 10 s ZooKeeper session (not the fixture's 4 s): on a loaded machine a 4 s
            # session expires under a healthy scheduler, which then exits by design (its lock
            # is gone); the kills under test are the SIGKILLs, not session losses.
            procs.append(SchedulerProc(stack, state, tmp_path, "--zk-session-timeout", "10"))
            procs[-1].wait_healthy(90)
        proc = procs[-1]

        def done() -> bool:
            jobs = [proc.job(j) for j in job_ids]
            if not all(j is not None and j["state"] == "finished" for j in jobs):
                return False
            code, body = proc.get("/accounting")
            return code == 200 and body["outbox"] == 0 and not recorder.zk.get_children(
                journal)

        wait(done, 400, "all jobs finished and their credits confirmed", proc.proc)
        recorder.collect()
        attempts = recorded_attempts(recorder.zk, state)
        assert_own_jobs_ran_once(proc, job_ids, markers, attempts)
    finally:
        for p in procs:
            p.stop()
        recorder.stop()
    assert not recorder.missed, f"credits drained before the test could read them: " \
                                f"{recorder.missed}"
    credits = list(recorder.credits.values())
    worker_credits = [c for c in credits if c["kind"] == "worker"]
    # Exactly one per attempt the scheduler recorded as run (30 here when it ran only this
    # test's jobs, each instance once; more if it also took another test's spec).
    assert_worker_credits_exact(credits, attempts)
    assert len(worker_credits) == sum(1 for a in attempts.values() if a["ended"] != "lost")
    assert len({c["task_id"] for c in worker_credits if c["job_id"] in job_ids}) == 30
    totals_after, _ = chain_totals(client, sample)
    moved = +Counter({k: totals_after[k] - totals_before[k] for k in totals_after})
    wanted: Counter = Counter()
    for c in credits:
        wanted[(c["kind"], c["account"])] += c["time_us"]
    assert moved == wanted
    # No duplicate job rows: the new rows are exactly the worker credits, each once.
    new_rows = [r for w in sample["workers"] for r in client.rows("jobs", w, "job")
                if r["id"] not in rows_before[w] and r["researcher"] == sample["researcher"]]
    assert sorted((int(r["credit_id"]), int(r["time"])) for r in new_rows) == sorted(
        (c["credit_id"], c["time_us"]) for c in worker_credits)
