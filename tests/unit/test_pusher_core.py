"""The pusher's core (and its driving loop) against an in-memory chain and store.

The chain model keeps what matters for exactly-once: a transaction id is applied at most once,
a resend of a known id before its expiry is a duplicate, after it an expired transaction; the
finality tracker forgets everything on a node restart, the block log does not. A crash is an
exception at any port call, before or after the call takes effect; a new core then starts from
the store alone. Every crash point of a run is tried.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from scheduler import pusher_core as core
from scheduler.chain import ChainError
from scheduler.pusher import Pusher
from scheduler.pusher_core import Batch, Credit, Limits, PusherCore, Verdict

BLOCK = 0.5


class Crash(BaseException):
    """The process dies here (not an Exception: the loop must not catch it)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Faults:
    """Crash at the ``at``-th port call, before (``after=False``) or after it took effect."""

    def __init__(self, at: int | None = None, after: bool = False) -> None:
        self.at, self.after, self.calls = at, after, 0

    def call(self, effect: Any) -> Any:
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise Crash
        result = effect()
        if self.calls == self.at and self.after:
            raise Crash
        return result


class SimChain:
    """The jobs contract on a one-producer chain: blocks every 0.5 s, LIB one block behind."""

    def __init__(self, clock: Clock, faults: Faults, ttl: int = 60) -> None:
        self.clock, self.faults, self.ttl = clock, faults, ttl
        self.applied: dict[str, int] = {}  # tx id → block (the block log)
        self.tracker: dict[str, int] = {}  # finality status (lost on a node restart)
        self.rows: list[tuple[str, str, str, int]] = []  # (kind, researcher, account, time)
        self.keys_applied: Counter[str] = Counter()
        self.refused: set[str] = set()
        self.down = False
        self.signed = 0
        # A slow network: the push's answer is lost (a time-out) but the transaction reaches
        # the producer and lands ``slow`` seconds later.
        self.slow: float | None = None
        self.mempool: dict[str, tuple[float, dict[str, Any]]] = {}

    def head(self) -> int:
        return int(self.clock.now / BLOCK)

    def lib(self) -> int:
        return self.head() - 1

    def _up(self) -> None:
        for tx_id, (when, body) in list(self.mempool.items()):
            if when <= self.clock.now:
                del self.mempool[tx_id]
                if when <= body["expiration"]:
                    self._apply(body)
        if self.down:
            raise ChainError("cannot reach nodeos at http://sim: refused", retriable=True)

    def sign(self, actions: Sequence[tuple[str, dict[str, Any]]]
             ) -> tuple[str, int, int, dict[str, Any]]:
        def run() -> tuple[str, int, int, dict[str, Any]]:
            self._up()
            self.signed += 1
            expiration = int(self.clock.now) + self.ttl
            body = {"actions": [list(a) for a in actions], "expiration": expiration,
                    "nonce": self.signed}
            tx_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            return tx_id, expiration, self.head(), {**body, "id": tx_id}
        return self.faults.call(run)

    def send(self, body: dict[str, Any]) -> None:
        def run() -> None:
            self._up()
            if body["id"] in self.applied:
                return  # a duplicate: NodeosPort.send treats it as success
            if self.clock.now > body["expiration"]:
                raise ChainError("expired transaction", code=3040005, retriable=True)
            for _name, data in body["actions"]:
                account = data.get("worker") or data.get("dispatcher")
                if account in self.refused:
                    raise ChainError(f"assertion failure with message: worker {account} is "
                                     f"not registered for researcher {data['researcher']}",
                                     code=3050003)
            if self.slow is not None:
                self.mempool.setdefault(body["id"], (self.clock.now + self.slow, body))
                raise ChainError("cannot reach nodeos at http://sim: timed out", retriable=True)
            self._apply(body)
        return self.faults.call(run)

    def _apply(self, body: dict[str, Any]) -> None:
        block = self.head() + 1
        self.applied[body["id"]] = block
        self.tracker[body["id"]] = block
        for name, data in body["actions"]:
            kind = "worker" if name == "newjob" else "dispatcher"
            self.rows.append((kind, data["researcher"], data[kind], data["time"]))
            self.keys_applied[data["key"]] += 1

    def locate(self, batch: Batch) -> Verdict:
        def run() -> Verdict:
            self._up()
            lib = self.lib()
            block = self.tracker.get(batch.tx_id)
            state = "UNKNOWN" if block is None else (
                "IRREVERSIBLE" if block <= lib else "IN_BLOCK")
            status = {"state": state, "irreversible_number": lib}
            verdict = core.judge(status, batch.expiration, lib * BLOCK)
            if verdict is Verdict.NEEDS_SCAN:
                found = self.applied.get(batch.tx_id)
                found = found if found is not None and found <= lib else None
                verdict = core.judge(status, batch.expiration, lib * BLOCK, found)
            return verdict
        return self.faults.call(run)

    def restart_node(self) -> None:
        self.tracker.clear()


class SimStore:
    """The outbox, journal and parked entries (ZooKeeper's role)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.outbox: dict[str, Credit] = {}
        self.journal_entries: dict[int, Batch] = {}
        self.parked: dict[str, str] = {}
        self._seen: set[str] = set()

    def load(self) -> tuple[list[Batch], list[str]]:
        self._seen = set()  # a new process has seen nothing
        return list(self.journal_entries.values()), list(self.parked)

    def new_credits(self) -> list[Credit]:
        new = [c for k, c in self.outbox.items() if k not in self._seen]
        self._seen.update(c.key for c in new)
        return new

    def journal(self, batch: Batch) -> None:
        def run() -> None:
            assert self.journal_entries.get(batch.seq, batch) == batch
            self.journal_entries[batch.seq] = batch
        self.faults.call(run)

    def finish(self, batch: Batch) -> None:
        def run() -> None:
            if batch.seq not in self.journal_entries:
                return  # done before: the answer was lost
            for key in batch.keys:
                del self.outbox[key]
            del self.journal_entries[batch.seq]
        self.faults.call(run)

    def abandon(self, batch: Batch) -> None:
        self.faults.call(lambda: self.journal_entries.pop(batch.seq, None))

    def park(self, seq: int, credit: Credit, message: str, code: int) -> None:
        def run() -> None:
            self.parked[credit.key] = message
            del self.outbox[credit.key]
            del self.journal_entries[seq]
        self.faults.call(run)


def credit(n: int, kind: str = "worker", account: str | None = None) -> Credit:
    return core.parse_credit(f"{n:016x}", {
        "kind": kind, "researcher": "alice", "account": account or f"w{n % 3 + 1}",
        "time_us": 1_000_000 + n, "credit_id": n + 1, "task_id": f"t{n}", "job_id": "j",
        "instance": n, "attempt": 1, "finished_at_us": 5})


class World:
    """A chain and a store that survive crashes; pushers come and go."""

    def __init__(self, entries: int, limits: Limits | None = None) -> None:
        self.clock = Clock()
        self.faults = Faults()
        self.chain = SimChain(self.clock, self.faults)
        self.store = SimStore(self.faults)
        self.limits = limits or Limits(max_actions=4, max_wait=0.1)
        self.expected: dict[str, Credit] = {}
        for n in range(entries):
            self.add(credit(n, "worker" if n % 2 else "dispatcher"))
        self.pusher = self.start()

    def add(self, c: Credit) -> None:
        # The sim's actions carry the entry key so the chain can count each one.
        self.store.outbox[c.key] = c
        self.expected[c.key] = c

    def start(self) -> Pusher:
        new_core = PusherCore(self.limits)
        _tag_actions(new_core)
        return Pusher(new_core, self.chain, self.store, clock=self.clock)

    def run(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            delay = self.pusher.step()
            self.clock.now += max(0.05, min(delay, 0.5))

    def run_until_idle(self, limit: float = 600) -> None:
        end = self.clock.now + limit
        while self.clock.now < end:
            try:
                delay = self.pusher.step()
            except Crash:
                self.faults.at = None
                self.pusher = self.start()
                continue
            if self.pusher.core.idle() and not self.store.outbox:
                return
            self.clock.now += max(0.05, min(delay, 0.5))
        raise AssertionError("did not drain")

    def check_exactly_once(self) -> None:
        confirmed = {k for k in self.expected if k not in self.store.parked}
        assert dict(self.chain.keys_applied) == {k: 1 for k in confirmed}
        totals: Counter[tuple[str, str]] = Counter()
        for kind, _, account, time in self.chain.rows:
            totals[(kind, account)] += time
        wanted: Counter[tuple[str, str]] = Counter()
        for key in confirmed:
            c = self.expected[key]
            wanted[(c.kind, c.account)] += c.time_us
        assert totals == wanted
        assert self.store.outbox == {}
        assert self.store.journal_entries == {}


def _tag_actions(pusher_core: PusherCore) -> None:
    """Make each action carry its entry key (the sim chain counts applications per entry)."""
    tick = pusher_core.tick

    def tagged(now: float) -> list[core.Effect]:
        out = []
        for effect in tick(now):
            if isinstance(effect, core.Sign):
                actions = tuple((name, {**data, "key": key})
                                for key, (name, data) in zip(effect.keys, effect.actions,
                                                             strict=True))
                effect = core.Sign(effect.seq, effect.keys, actions)
            out.append(effect)
        return out
    pusher_core.tick = tagged  # type: ignore[method-assign]


# ------------------------------------------------------------------ parsing

def test_parse_credit_errors() -> None:
    good = {"kind": "worker", "researcher": "alice", "account": "bob", "time_us": 5,
            "credit_id": 7}
    assert core.parse_credit("k", json.dumps(good)).action(False) == (
        "newjob", {"researcher": "alice", "worker": "bob", "time": 5})
    assert core.parse_credit("k", {**good, "kind": "dispatcher"}).action(True) == (
        "updatedptch", {"researcher": "alice", "dispatcher": "bob", "time": 5, "credit_id": 7})
    for bad, message in [
        ({**good, "kind": "miner"}, "kind 'miner' is not worker or dispatcher"),
        ({**good, "time_us": 0}, "time_us 0 is not 1 .. 2^62-1"),
        ({**good, "time_us": True}, "time_us True is not 1 .. 2^62-1"),
        ({**good, "credit_id": -1}, "credit_id -1 is not a uint64"),
        ({k: v for k, v in good.items() if k != "account"}, "missing account"),
    ]:
        with pytest.raises(ValueError) as err:
            core.parse_credit("k", bad)
        assert str(err.value) == f"outbox entry k: {message}"
    with pytest.raises(ValueError, match="outbox entry k: not JSON"):
        core.parse_credit("k", b"{")


# ------------------------------------------------------------------ judging

def test_judge() -> None:
    irreversible = {"state": "IRREVERSIBLE", "irreversible_number": 10}
    assert core.judge(irreversible, 100, 50) is Verdict.IRREVERSIBLE
    assert core.judge({"state": "IN_BLOCK"}, 100, 50) is Verdict.PENDING
    assert core.judge({"state": "LOCALLY_APPLIED"}, 100, 50) is Verdict.PENDING
    unknown = {"state": "UNKNOWN", "irreversible_number": 10}
    assert core.judge(unknown, 100, 50) is Verdict.NOT_SEEN  # not expired: resend the same
    assert core.judge(unknown, 100, 100) is Verdict.NOT_SEEN  # expiry is inclusive
    assert core.judge(unknown, 100, 101) is Verdict.NEEDS_SCAN
    assert core.judge(unknown, 100, 101, None) is Verdict.ABSENT
    assert core.judge(unknown, 100, 101, 9) is Verdict.IRREVERSIBLE
    assert core.judge(unknown, 100, 101, 11) is Verdict.PENDING
    assert core.judge({"state": "FORKED_OUT", "irreversible_number": 10}, 100, 101,
                      None) is Verdict.ABSENT


# ------------------------------------------------------------------ batching

def test_batches_respect_size_and_latency_bounds() -> None:
    c = PusherCore(Limits(max_actions=200, max_wait=0.1))
    c.offer([credit(n) for n in range(450)], now=0)
    signs = c.tick(0)
    assert [len(s.keys) for s in signs] == [200, 200]  # full batches go at once
    assert c.tick(0.05) == []  # the 50 left wait for the latency bound
    late = c.tick(0.1)
    assert [len(s.keys) for s in late] == [50]
    keys = [k for s in signs + late for k in s.keys]
    assert keys == [f"{n:016x}" for n in range(450)]  # FIFO, each once


def test_byte_bound_and_in_flight_bound() -> None:
    c = PusherCore(Limits(max_actions=1000, max_bytes=core.TRANSACTION_BYTES
                          + 10 * core.ACTION_BYTES, max_in_flight=2, max_wait=0))
    c.offer([credit(n) for n in range(50)], now=0)
    assert [len(s.keys) for s in c.tick(0)] == [10, 10]
    assert c.tick(1) == []  # two in flight already


def test_the_handshake_journal_before_send() -> None:
    c = PusherCore(Limits(max_wait=0))
    c.offer([credit(1)], now=0)
    (sign,) = c.tick(0)
    assert isinstance(sign, core.Sign)
    (journal,) = c.signed(sign.seq, "ab" * 32, 160, 7, {"packed_trx": "00"}, 0)
    assert isinstance(journal, core.Journal) and journal.batch.tx_id == "ab" * 32
    (send,) = c.journaled(sign.seq, 0)
    assert isinstance(send, core.Send)
    c.sent(sign.seq, 0)
    assert c.tick(0.1) == []
    (check,) = c.tick(0.5)
    assert isinstance(check, core.Check)
    (finish,) = c.checked(sign.seq, Verdict.IRREVERSIBLE, 0.6)
    assert isinstance(finish, core.Finish)
    c.closed(sign.seq, 0.6)
    assert c.idle() and c.snapshot().confirmed_actions == 1


def test_a_failed_journal_write_is_retried_never_rebatched() -> None:
    c = PusherCore(Limits(max_wait=0, retry_min=1))
    c.offer([credit(1)], now=0)
    (sign,) = c.tick(0)
    c.signed(sign.seq, "ab" * 32, 160, 7, {}, 0)
    c.journal_failed(sign.seq, "connection loss", 0)
    assert c.tick(0.5) == []
    (again,) = c.tick(1)
    assert isinstance(again, core.Journal) and again.batch.tx_id == "ab" * 32


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Limits(max_actions=0)
    with pytest.raises(ValueError):
        Limits(ttl=1)


# ------------------------------------------------------------------ runs with the sim

def test_a_clean_run_confirms_everything_once() -> None:
    world = World(21)
    world.run_until_idle()
    world.check_exactly_once()
    assert world.pusher.core.snapshot().confirmed_actions == 21


def _reference_calls(entries: int) -> int:
    world = World(entries)
    world.run_until_idle()
    return world.faults.calls


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
def test_a_crash_at_every_port_call_neither_loses_nor_duplicates(after: bool) -> None:
    calls = _reference_calls(9)
    assert calls > 15
    for at in range(1, calls + 1):
        world = World(9)
        world.faults.at, world.faults.after = at, after
        world.run_until_idle()
        world.check_exactly_once()


def test_crash_after_push_then_node_restart_scans_the_blocks() -> None:
    world = World(4, Limits(max_actions=4, max_wait=0))
    # Sign, journal, send: then the process dies before hearing back.
    world.faults.at, world.faults.after = 3, True
    with pytest.raises(Crash):
        world.pusher.step()
    assert len(world.chain.applied) == 1 and len(world.store.journal_entries) == 1
    world.chain.restart_node()  # the finality tracker forgot it
    world.clock.now += 120  # past the expiry: only the block log can tell
    world.faults.at = None
    world.pusher = world.start()
    world.run_until_idle()
    world.check_exactly_once()
    assert world.chain.signed == 1  # found in the blocks: never signed again


def test_crash_before_push_and_expiry_repushes_under_a_new_id() -> None:
    world = World(4, Limits(max_actions=4, max_wait=0))
    world.faults.at, world.faults.after = 3, False  # dies just before the push
    with pytest.raises(Crash):
        world.pusher.step()
    assert world.chain.applied == {} and len(world.store.journal_entries) == 1
    world.clock.now += 120
    world.faults.at = None
    world.pusher = world.start()
    world.run_until_idle()
    world.check_exactly_once()
    assert world.chain.signed == 2
    assert world.pusher.core.snapshot().abandoned_batches == 1


@pytest.mark.parametrize("delay", [0.2, 3.0, 59.0])
def test_a_push_whose_answer_is_lost_lands_once(delay: float) -> None:
    world = World(12, Limits(max_actions=4, max_wait=0))
    world.chain.slow = delay
    world.run(delay + 0.5)
    world.chain.slow = None
    world.run_until_idle()
    world.check_exactly_once()
    assert world.chain.signed == 3  # each batch signed once: resent under the same id


def test_an_outage_queues_then_drains() -> None:
    world = World(0)
    world.chain.down = True
    for n in range(30):
        world.add(credit(n))
    world.run(30)
    stats = world.pusher.core.snapshot()
    assert stats.queued + stats.in_flight_entries == 30
    assert stats.retriable_failures > 0 and "cannot reach nodeos" in stats.last_error
    metrics = world.pusher.metrics(wall_now=20.0)
    assert metrics["outbox_entries"] == 30 and metrics["outbox_oldest_age_seconds"] > 19
    world.chain.down = False
    world.run_until_idle()
    world.check_exactly_once()


def test_an_outage_across_the_expiry_of_sent_batches() -> None:
    world = World(8, Limits(max_actions=4, max_wait=0))
    world.faults.at, world.faults.after = 3, False  # first push never happens ...
    with pytest.raises(Crash):
        world.pusher.step()
    world.faults.at = None
    world.pusher = world.start()
    world.chain.down = True  # ... and nodeos is away for two minutes
    world.run(120)
    world.chain.down = False
    world.run_until_idle()
    world.check_exactly_once()


def test_a_refused_entry_is_parked_the_rest_goes_through() -> None:
    world = World(0, Limits(max_actions=10, max_wait=0))
    for n in range(10):
        world.add(credit(n, account="gone" if n == 4 else None))
    world.chain.refused.add("gone")
    world.run_until_idle()
    assert world.store.parked == {f"{4:016x}": "assertion failure with message: worker gone "
                                                "is not registered for researcher alice"}
    world.check_exactly_once()
    stats = world.pusher.core.snapshot()
    assert stats.parked == 1 and stats.rejected_batches >= 2 and stats.confirmed_actions == 9


def test_parked_entries_are_not_taken_again_after_a_restart() -> None:
    world = World(0, Limits(max_actions=10, max_wait=0))
    world.add(credit(1, account="gone"))
    world.chain.refused.add("gone")
    world.run_until_idle()
    world.pusher = world.start()
    world.run(5)
    assert world.chain.signed == 1 and list(world.store.parked) == [f"{1:016x}"]


def test_credit_id_is_sent_when_the_contract_takes_it() -> None:
    c = PusherCore(Limits(max_wait=0), send_credit_id=True)
    c.offer([credit(3)], now=0)
    (sign,) = c.tick(0)
    assert sign.actions[0][1]["credit_id"] == 4


def test_a_key_handed_over_again_after_it_finished_is_ignored() -> None:
    c = PusherCore(Limits(max_wait=0))
    c.offer([credit(1)], now=0)
    (sign,) = c.tick(0)
    c.signed(sign.seq, "ab" * 32, 160, 7, {}, 0)
    c.journaled(sign.seq, 0)
    c.sent(sign.seq, 0)
    assert isinstance(c.tick(1)[0], core.Check)
    c.checked(sign.seq, Verdict.IRREVERSIBLE, 1)
    c.closed(sign.seq, 1)
    c.offer([credit(1)], now=2)  # a stale read of the deleted outbox entry
    assert c.tick(3) == [] and c.idle()
