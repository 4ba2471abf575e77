"""The pusher's edge: drains the ZooKeeper outbox into the jobs contract, exactly once.

The decisions are :mod:`scheduler.pusher_core`'s; this module only runs its effects against
two ports and reports the outcome back:

- :class:`NodeosPort` signs and sends transactions and tells where one stands (nodeos's
  transaction finality status, else a scan of the blocks it could be in);
- :class:`ZkStore` reads the outbox ``<path>/outbox/``, keeps the journal
  ``<path>/pusher/journal/<seq>`` and the parked entries ``<path>/parked/<key>``; finishing a
  batch deletes its outbox entries and its journal entry in one ZooKeeper transaction.

Run standalone (the scheduler embeds :class:`Pusher` instead)::

    python -m scheduler.pusher --zk 127.0.0.1:2181 --path /clusterjobs --nodeos URL \\
        --account jobs@pusher --key-file jobs.key [--port 9102]

Standalone, it holds the ZooKeeper lock ``<path>/pusher/lock``: a second one waits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from scheduler import pusher_core as core
from scheduler.chain import ChainClient, ChainError, Signer, parse_time
from scheduler.pusher_core import Batch, Credit, PusherCore, Verdict

log = logging.getLogger("clusterjobs.pusher")


class ChainPort(Protocol):
    def sign(self, actions: Sequence[tuple[str, dict[str, Any]]]
             ) -> tuple[str, int, int, dict[str, Any]]: ...

    def send(self, body: dict[str, Any]) -> None: ...

    def locate(self, batch: Batch) -> Verdict: ...


class StorePort(Protocol):
    def load(self) -> tuple[list[Batch], list[str]]: ...

    def new_credits(self) -> list[Credit]: ...

    def journal(self, batch: Batch) -> None: ...

    def finish(self, batch: Batch) -> None: ...

    def abandon(self, batch: Batch) -> None: ...

    def park(self, seq: int, credit: Credit, message: str, code: int) -> None: ...


# ------------------------------------------------------------------ nodeos

class NodeosPort:
    """The jobs contract on nodeos, through :class:`ChainClient`."""

    def __init__(self, client: ChainClient, jobs_account: str, ttl: int = 60,
                 block_cache: int = 4000) -> None:
        self.client = client
        self.jobs = jobs_account
        self.ttl = ttl
        self._blocks: OrderedDict[int, tuple[float, frozenset[str]]] = OrderedDict()
        self._block_cache = block_cache
        # get_info, reused for a quarter second: many batches are signed and checked per block.
        self._info: tuple[float, dict[str, Any]] | None = None
        # The block each sent transaction went into (from push_transaction's answer): while
        # it is above the last irreversible block there is no need to ask for its status.
        self._sent_in: OrderedDict[str, int] = OrderedDict()

    def _head(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._info is None or now - self._info[0] > 0.25:
            self._info = (now, self.client.info())
        return self._info[1]

    def sign(self, actions: Sequence[tuple[str, dict[str, Any]]]
             ) -> tuple[str, int, int, dict[str, Any]]:
        """(id, expiration, first block, body) of a signed transaction of ``actions``."""
        info = self._head()
        expiration = int(parse_time(str(info["head_block_time"]))) + self.ttl
        signed = self.client.sign([self.client.action(self.jobs, name, data)
                                   for name, data in actions],
                                  expiration, str(info["last_irreversible_block_id"]))
        return signed.id, signed.expiration, int(info["head_block_num"]), signed.body

    def send(self, body: dict[str, Any]) -> None:
        """push_transaction; a duplicate means it is already in: not an error."""
        try:
            answer = self.client.rpc("/v1/chain/push_transaction", body)
        except ChainError as exc:
            if not exc.duplicate:
                raise
            return
        block = (answer.get("processed") or {}).get("block_num")
        if isinstance(block, int):
            self._sent_in[str(answer.get("transaction_id"))] = block
            while len(self._sent_in) > 100_000:
                self._sent_in.popitem(last=False)

    def locate(self, batch: Batch) -> Verdict:
        """Where ``batch``'s transaction stands (see :func:`pusher_core.judge`)."""
        block = self._sent_in.get(batch.tx_id)
        if block is not None and block > int(self._head()["last_irreversible_block_num"]):
            return Verdict.PENDING  # applied in a block not yet irreversible: ask later
        try:
            status = self.client.transaction_status(batch.tx_id)
        except ChainError as exc:
            if exc.retriable:
                raise
            # No finality status on this nodeos: judge from the blocks alone.
            info = self._head()
            status = {"state": "UNKNOWN",
                      "irreversible_number": info["last_irreversible_block_num"]}
        lib = int(status["irreversible_number"])
        stamp = status.get("irreversible_timestamp")
        lib_time = parse_time(str(stamp)) if stamp else self._block(lib)[0]
        verdict = core.judge(status, batch.expiration, lib_time)
        if verdict is Verdict.NEEDS_SCAN:
            verdict = core.judge(status, batch.expiration, lib_time,
                                 self._scan(batch.tx_id, batch.first_block, lib,
                                            batch.expiration))
        if verdict is not Verdict.PENDING:
            self._sent_in.pop(batch.tx_id, None)
        return verdict

    def _scan(self, tx_id: str, first: int, lib: int, expiration: int) -> int | None:
        """The block in ``first .. lib`` holding ``tx_id``, None if none does. Stops after the
        first block past the expiry: no later block may include the transaction."""
        for number in range(max(1, first), lib + 1):
            when, ids = self._block(number)
            if tx_id in ids:
                return number
            if when > expiration:
                break
        return None

    def _block(self, number: int) -> tuple[float, frozenset[str]]:
        cached = self._blocks.get(number)
        if cached is None:
            block = self.client.block(number)
            ids = frozenset(t["trx"]["id"] if isinstance(t["trx"], dict) else str(t["trx"])
                            for t in block.get("transactions", []))
            cached = (parse_time(str(block["timestamp"])), ids)
            self._blocks[number] = cached
            while len(self._blocks) > self._block_cache:
                self._blocks.popitem(last=False)
        return cached


# ------------------------------------------------------------------ ZooKeeper

class ZkStore:
    """The outbox, journal and parked entries under ``path`` in ZooKeeper (kazoo client)."""

    def __init__(self, zk: Any, path: str) -> None:
        self.zk = zk
        self.path = path.rstrip("/")
        self.outbox = f"{self.path}/outbox"
        self.journal_path = f"{self.path}/pusher/journal"
        self.parked = f"{self.path}/parked"
        self._seen: set[str] = set()  # outbox keys already handed to the core
        for folder in (self.outbox, self.journal_path, self.parked):
            zk.ensure_path(folder)
        # The outbox's children as of the last change (a watch, not a poll per round), read
        # by a thread of its own into _ready.
        self._children: set[str] = set()
        self._ready: list[Credit] = []
        self._gone: dict[str, int] = {}  # key → generation of its removal (see _read_new)
        self._generation = 0
        self.notify: Callable[[], None] | None = None  # called when entries are ready
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="outbox-reader",
                                        daemon=True)
        self._watch = self._watch_outbox()
        self._reader.start()

    def _watch_outbox(self) -> Any:
        from kazoo.recipe.watchers import ChildrenWatch

        def changed(children: list[str]) -> bool | None:
            with self._lock:
                self._children = set(children)
            self._wake.set()
            return False if self._closed.is_set() else None  # False ends the watch

        return ChildrenWatch(self.zk, self.outbox, changed)

    def load(self) -> tuple[list[Batch], list[str]]:
        """The journaled batches and the parked keys."""
        batches = []
        for name in sorted(self.zk.get_children(self.journal_path)):
            data, _ = self.zk.get(f"{self.journal_path}/{name}")
            batches.append(Batch.from_json(json.loads(data)))
        return batches, list(self.zk.get_children(self.parked))

    def new_credits(self) -> list[Credit]:
        """Outbox entries read since the last call (by the reader thread, so reading the
        outbox overlaps pushing). A malformed entry is parked at once."""
        with self._lock:
            found, self._ready = self._ready, []
        return found

    def close(self) -> None:
        """Stop the reader thread."""
        self._closed.set()
        self._wake.set()

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._read_new()
            except Exception as exc:  # ZooKeeper away: try again at the next change or second
                log.warning("outbox read failed", extra={"error": " ".join(str(exc).split())})
                self._closed.wait(0.5)

    def _read_new(self) -> None:
        # A key is read only while not in _seen; a finished key leaves _seen only after its
        # delete committed, so a read started later finds it gone. A read started earlier may
        # still return it: such keys are in _gone (with the generation of their removal) and
        # are dropped from what the read found.
        with self._lock:
            names = sorted(self._children - self._seen)
        for first in range(0, len(names), 1000):
            with self._lock:
                start = self._generation
                # Removed before this read starts: it cannot see them.
                self._gone = {k: g for k, g in self._gone.items() if g > start}
            pending = [(n, self.zk.get_async(f"{self.outbox}/{n}"))
                       for n in names[first:first + 1000]]
            found = []
            for name, result in pending:
                try:
                    data, _ = result.get()
                except Exception:  # deleted meanwhile (kazoo's NoNodeError): nothing to do
                    continue
                try:
                    found.append(core.parse_credit(name, data))
                except ValueError as exc:
                    self._park_raw(name, data, str(exc))
                    continue
            with self._lock:
                found = [c for c in found if c.key not in self._gone]
                self._seen.update(c.key for c in found)
                self._ready += found
            if found and self.notify is not None:
                self.notify()

    def journal(self, batch: Batch) -> None:
        """Create the journal entry; idempotent (an equal entry already there is success)."""
        from kazoo.exceptions import NodeExistsError

        node = f"{self.journal_path}/{batch.seq:010d}"
        data = json.dumps(batch.to_json(), separators=(",", ":")).encode()
        try:
            self.zk.create(node, data)
        except NodeExistsError:
            existing, _ = self.zk.get(node)
            if existing != data:
                raise RuntimeError(f"journal entry {node} exists with other content") from None

    def finish(self, batch: Batch) -> None:
        """Delete the entries and the journal entry, atomically."""
        tx = self.zk.transaction()
        for key in batch.keys:
            tx.delete(f"{self.outbox}/{key}")
        tx.delete(f"{self.journal_path}/{batch.seq:010d}")
        self._commit(tx, batch.seq)
        self._removed(batch.keys)

    def abandon(self, batch: Batch) -> None:
        from kazoo.exceptions import NoNodeError

        with contextlib.suppress(NoNodeError):
            self.zk.delete(f"{self.journal_path}/{batch.seq:010d}")

    def park(self, seq: int, credit: Credit, message: str, code: int) -> None:
        """Move the entry to ``parked/`` with the chain's message, drop its journal entry."""
        record = {"entry": dict(credit.raw), "message": message, "code": code,
                  "parked_at_us": int(time.time() * 1e6)}
        tx = self.zk.transaction()
        tx.create(f"{self.parked}/{credit.key}", json.dumps(record).encode())
        tx.delete(f"{self.outbox}/{credit.key}")
        tx.delete(f"{self.journal_path}/{seq:010d}")
        self._commit(tx, seq)
        self._removed([credit.key])

    def _removed(self, keys: Iterable[str]) -> None:
        """``keys`` left the outbox (their delete committed)."""
        keys = set(keys)
        with self._lock:
            self._generation += 1
            for key in keys:
                self._seen.discard(key)
                self._gone[key] = self._generation
            # Read but not yet handed over (a restarted pusher finishing a journaled batch).
            self._ready = [c for c in self._ready if c.key not in keys]

    def _park_raw(self, key: str, data: bytes, message: str) -> None:
        record = {"raw": data.decode(errors="replace"), "message": message, "code": 0,
                  "parked_at_us": int(time.time() * 1e6)}
        tx = self.zk.transaction()
        tx.create(f"{self.parked}/{key}", json.dumps(record).encode())
        tx.delete(f"{self.outbox}/{key}")
        self._commit(tx, None)
        log.warning("outbox entry parked", extra={"key": key, "reason": message})

    def _commit(self, tx: Any, seq: int | None) -> None:
        results = tx.commit()
        failed = [r for r in results if isinstance(r, Exception)]
        if not failed:
            return
        # The answer of an earlier attempt may have been lost: its journal entry is then gone.
        if seq is not None and not self.zk.exists(f"{self.journal_path}/{seq:010d}"):
            return
        raise RuntimeError(f"ZooKeeper transaction failed: {failed[0]!r}")


def parked_entries(zk: Any, path: str) -> list[dict[str, Any]]:
    """The parked entries under ``path`` (for `clusterjobs status`): entry, message, code."""
    folder = f"{path.rstrip('/')}/parked"
    if not zk.exists(folder):
        return []
    found = []
    for name in sorted(zk.get_children(folder)):
        data, _ = zk.get(f"{folder}/{name}")
        found.append({"key": name, **json.loads(data)})
    return found


# ------------------------------------------------------------------ the loop

class Pusher:
    """Runs a :class:`PusherCore` against a chain port and a store port."""

    def __init__(self, core_: PusherCore, chain: ChainPort, store: StorePort,
                 clock: Callable[[], float] = time.monotonic,
                 on_confirmed: Callable[[Sequence[Credit]], None] | None = None) -> None:
        self.core = core_
        self.chain = chain
        self.store = store
        self.clock = clock
        self.on_confirmed = on_confirmed
        self.lock = threading.Lock()  # the metrics read the core from another thread
        self._loaded = False
        self._wake = threading.Event()
        if hasattr(store, "notify"):
            store.notify = self._wake.set  # new outbox entries end the loop's sleep

    def step(self) -> float:
        """One round: new entries, due effects, their follow-ups. Returns seconds to sleep."""
        with self.lock:
            now = self.clock()
            if not self._loaded:
                batches, parked = self.store.load()
                self.core.parked_keys(parked)
                self.core.load(batches, now)
                self._loaded = True
            self.core.offer(self.store.new_credits(), now)
            work: list[core.Effect] = self.core.tick(now)
            while work:
                work = self._run(work.pop(0), self.clock()) + work
            return max(0.0, min(1.0, self.core.next_wakeup(self.clock()) - self.clock()))

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set; store failures (ZooKeeper away) wait and retry."""
        while not stop.is_set():
            self._wake.clear()
            try:
                delay = self.step()
            except Exception as exc:  # ZooKeeper lost, say: log, wait, try again
                log.warning("pusher round failed", extra={"error": " ".join(str(exc).split())})
                delay = 1.0
            if delay > 0:
                self._wake.wait(delay)  # at most 1 s: `stop` is seen within a second
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def drain(self, timeout: float) -> bool:
        """Step until nothing is queued or in flight (True) or ``timeout`` passes (False)."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            delay = self.step()
            if self.core.idle():
                return True
            time.sleep(min(delay, 0.05))
        return False

    def _run(self, effect: core.Effect, now: float) -> list[core.Effect]:
        if isinstance(effect, core.Sign):
            try:
                tx_id, expiration, first, body = self.chain.sign(effect.actions)
            except ChainError as exc:
                self.core.sign_failed(effect.seq, str(exc), now)
                return []
            return self.core.signed(effect.seq, tx_id, expiration, first, body, now)
        if isinstance(effect, core.Journal):
            try:
                self.store.journal(effect.batch)
            except Exception as exc:
                self.core.journal_failed(effect.batch.seq, str(exc), now)
                return []
            return self.core.journaled(effect.batch.seq, now)
        if isinstance(effect, core.Send):
            try:
                self.chain.send(dict(effect.batch.body))
            except ChainError as exc:
                if not exc.retriable:
                    log.warning("transaction rejected", extra={
                        "seq": effect.batch.seq, "entries": len(effect.batch.keys),
                        "code": exc.code, "reason": str(exc)})
                return self.core.send_failed(effect.batch.seq, str(exc), exc.code,
                                             exc.retriable, now)
            self.core.sent(effect.batch.seq, now)
            return []
        if isinstance(effect, core.Check):
            try:
                verdict = self.chain.locate(effect.batch)
            except ChainError as exc:
                self.core.check_failed(effect.batch.seq, str(exc), now)
                return []
            return self.core.checked(effect.batch.seq, verdict, now)
        return self._close(effect, now)

    def _close(self, effect: core.Effect, now: float) -> list[core.Effect]:
        seq = effect.seq if isinstance(effect, core.Park) else effect.batch.seq  # type: ignore
        try:
            if isinstance(effect, core.Finish):
                self.store.finish(effect.batch)
            elif isinstance(effect, core.Abandon):
                self.store.abandon(effect.batch)
            elif isinstance(effect, core.Park):
                self.store.park(effect.seq, effect.credit, effect.message, effect.code)
                log.warning("outbox entry parked", extra={
                    "key": effect.credit.key, "account": effect.credit.account,
                    "researcher": effect.credit.researcher, "reason": effect.message})
        except Exception as exc:
            self.core.close_failed(seq, str(exc), now)
            return []
        if isinstance(effect, core.Finish) and self.on_confirmed is not None:
            self.on_confirmed(self.core.credits_of(effect.batch.keys))
        self.core.closed(seq, now)
        return []

    def metrics(self, wall_now: float | None = None) -> dict[str, float]:
        """The pusher's gauges and counters (see :class:`PusherCollector`)."""
        with self.lock:
            stats = self.core.snapshot()
            oldest = self.core.oldest_finished_at_us()
        now_us = (time.time() if wall_now is None else wall_now) * 1e6
        return {
            "outbox_entries": stats.queued + stats.in_flight_entries,
            "outbox_oldest_age_seconds": max(0.0, (now_us - oldest) / 1e6) if oldest else 0.0,
            "outbox_parked": stats.parked,
            "pusher_batches_in_flight": stats.batches_in_flight,
            "pusher_confirmed_actions_total": stats.confirmed_actions,
            "pusher_confirmed_transactions_total": stats.confirmed_batches,
            "pusher_rejected_transactions_total": stats.rejected_batches,
            "pusher_abandoned_transactions_total": stats.abandoned_batches,
            "pusher_retriable_failures_total": stats.retriable_failures,
        }


class PusherCollector:
    """A prometheus_client collector of :meth:`Pusher.metrics` (prefix ``clusterjobs_``)."""

    HELP = {
        "outbox_entries": "credits in the outbox not yet confirmed irreversible",
        "outbox_oldest_age_seconds": "age of the oldest unconfirmed credit (from its task's end)",
        "outbox_parked": "credits parked after a permanent rejection",
        "pusher_batches_in_flight": "transactions signed and not yet finished",
    }

    def __init__(self, pusher: Pusher) -> None:
        self.pusher = pusher

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for name, value in self.pusher.metrics().items():
            if name.endswith("_total"):
                yield CounterMetricFamily(f"clusterjobs_{name[:-6]}", name.replace("_", " "),
                                          value=value)
            else:
                yield GaugeMetricFamily(f"clusterjobs_{name}", self.HELP.get(name, name),
                                        value=value)


def build(zk: Any, path: str, client: ChainClient, jobs_account: str,
          limits: core.Limits | None = None,
          on_confirmed: Callable[[Sequence[Credit]], None] | None = None) -> Pusher:
    """A pusher on ``zk`` (a started kazoo client) and ``client`` (signing as the pusher).
    It sends each credit's ``credit_id`` when the deployed ``newjob`` takes one."""
    limits = limits or core.Limits()
    send_id = "credit_id" in client.action_fields(jobs_account, "newjob")
    return Pusher(PusherCore(limits, send_credit_id=send_id),
                  NodeosPort(client, jobs_account, limits.ttl), ZkStore(zk, path),
                  on_confirmed=on_confirmed)


# ------------------------------------------------------------------ standalone

def _args(argv: Iterable[str] | None) -> argparse.Namespace:
    import os
    from pathlib import Path

    from scheduler import chain

    parser = argparse.ArgumentParser(prog="python -m scheduler.pusher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zk", required=True, help="ZooKeeper host:port[,host:port]")
    parser.add_argument("--path", default="/clusterjobs", help="the scheduler's state path")
    parser.add_argument("--nodeos", default=os.environ.get(chain.NODEOS_ENV), required=False)
    parser.add_argument("--jobs-account", default="jobs")
    parser.add_argument("--account", default="jobs@pusher",
                        help="signer NAME[@PERMISSION] (default jobs@pusher: the permission "
                             "`contracts deploy` links to newjob, updatedptch and removejob)")
    parser.add_argument("--key-file", type=Path)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT0", "0")),
                        help="Prometheus /metrics port (default $PORT0; 0: none)")
    parser.add_argument("--max-actions", type=int, default=core.Limits.max_actions)
    parser.add_argument("--max-wait", type=float, default=core.Limits.max_wait)
    parser.add_argument("--ttl", type=int, default=core.Limits.ttl)
    parser.add_argument("--zk-session-timeout", type=float, default=10.0,
                        help="seconds; a dead pusher's lock is freed after this")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.nodeos:
        parser.error("--nodeos (or $CLUSTERJOBS_NODEOS) is required")
    return args


def _acquire(lock: Any) -> bool:
    from kazoo.exceptions import LockTimeout

    try:
        return bool(lock.acquire(timeout=1))
    except LockTimeout:
        return False


def main(argv: Iterable[str] | None = None) -> int:
    """Run a standalone pusher until SIGTERM/SIGINT."""
    from kazoo.client import KazooClient

    from actors import logfmt
    from scheduler import chain

    args = _args(argv)
    logfmt.configure(args.log_level)
    try:
        account, permission = chain.parse_actor(args.account)
        keys = chain.load_keys(args.key_file)
        limits = core.Limits(max_actions=args.max_actions, max_wait=args.max_wait, ttl=args.ttl)
    except (ChainError, ValueError) as exc:
        print(f"pusher: error: {exc}", file=sys.stderr)
        return 1
    client = ChainClient(args.nodeos, Signer(account, permission, keys))
    zk = KazooClient(hosts=args.zk, timeout=args.zk_session_timeout)
    zk.start(timeout=30)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lock = zk.Lock(f"{args.path.rstrip('/')}/pusher/lock", "pusher")
    while not _acquire(lock):  # another pusher is active: stand by
        if stop.is_set():
            return 0
    while True:
        try:
            pusher = build(zk, args.path, client, args.jobs_account, limits)
            break
        except ChainError as exc:  # nodeos not there yet
            log.warning("waiting for nodeos", extra={"error": str(exc)})
            if stop.wait(1.0):
                return 0
    if args.port:
        from prometheus_client import REGISTRY, start_http_server

        REGISTRY.register(PusherCollector(pusher))
        start_http_server(args.port, addr="127.0.0.1")
    log.info("pusher started", extra={"path": args.path, "nodeos": args.nodeos,
                                      "credit_id": pusher.core.send_credit_id})
    pusher.run(stop)
    lock.release()
    zk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
