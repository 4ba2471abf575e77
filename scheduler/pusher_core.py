"""The pusher's pure core: outbox credits → batched transactions, each confirmed exactly once.

No I/O: the edge (scheduler/pusher.py) feeds it outbox entries, the time (``now``, monotonic
seconds) and the answers of ZooKeeper and nodeos; the core answers with effects for the edge to
run, one handshake per step, so every crash point leaves a state a restart can judge:

1. ``Sign``: the edge signs a transaction of the batch's actions; its id (sha256 of the
   packed transaction) and expiry are known before anything is sent.
2. ``Journal``: the edge writes the batch (entry keys, id, expiry, the signed body) to the
   journal. Only after :meth:`PusherCore.journaled` does the core ask to send it.
3. ``Send``: push the signed transaction. Resending the *same* body is always safe (same id:
   nodeos refuses a duplicate until the expiry, and after the expiry it refuses it as expired).
4. ``Check``: ask the chain where the transaction is (:func:`judge`): irreversible → 5;
   pending → check again; not seen and not expired → send the same body again; expired and in
   no block up to the last irreversible one → 6.
5. ``Finish``: delete the batch's outbox entries and its journal entry in one ZooKeeper
   transaction. A crash before it: after a restart the check finds the transaction
   irreversible and finishes it; nothing is pushed twice.
6. ``Abandon``: the transaction can never be included: drop its journal entry and batch its
   entries again under a new id.

A permanent rejection (nodeos's assertion, say a worker no longer registered) of a batch of
several entries sends each of them alone; an entry rejected alone is ``Park``ed with the
chain's message (moved out of the outbox, neither retried forever nor dropped).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

KINDS = {"worker": ("newjob", "worker"), "dispatcher": ("updatedptch", "dispatcher")}
_FIELDS = ("kind", "researcher", "account", "time_us", "credit_id")


@dataclass(frozen=True)
class Credit:
    """One outbox entry (INTERFACES.md's CreditEntry JSON) under its znode name ``key``."""

    key: str
    kind: str
    researcher: str
    account: str
    time_us: int
    credit_id: int
    finished_at_us: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def action(self, send_credit_id: bool) -> tuple[str, dict[str, Any]]:
        """(action name, data) of the credit: newjob or updatedptch."""
        name, role = KINDS[self.kind]
        data: dict[str, Any] = {"researcher": self.researcher, role: self.account,
                                "time": self.time_us}
        if send_credit_id:
            data["credit_id"] = self.credit_id
        return name, data


def parse_credit(key: str, data: bytes | str | Mapping[str, Any]) -> Credit:
    """An outbox entry; ValueError naming what is wrong."""
    try:
        obj = json.loads(data) if isinstance(data, bytes | str) else dict(data)
    except ValueError as exc:
        raise ValueError(f"outbox entry {key}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"outbox entry {key}: not a JSON object")
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise ValueError(f"outbox entry {key}: missing {', '.join(missing)}")
    if obj["kind"] not in KINDS:
        raise ValueError(f"outbox entry {key}: kind {obj['kind']!r} is not worker or dispatcher")
    for name in ("researcher", "account"):
        if not isinstance(obj[name], str) or not obj[name]:
            raise ValueError(f"outbox entry {key}: {name} {obj[name]!r} is not an account")
    time_us = obj["time_us"]
    if not isinstance(time_us, int) or isinstance(time_us, bool) or not 0 < time_us < 2**62:
        raise ValueError(f"outbox entry {key}: time_us {time_us!r} is not 1 .. 2^62-1")
    cid = obj["credit_id"]
    if not isinstance(cid, int) or isinstance(cid, bool) or not 0 <= cid < 2**64:
        raise ValueError(f"outbox entry {key}: credit_id {cid!r} is not a uint64")
    finished = obj.get("finished_at_us") or 0
    return Credit(key, obj["kind"], obj["researcher"], obj["account"], time_us, cid,
                  int(finished) if isinstance(finished, int) else 0, obj)


@dataclass(frozen=True)
class Limits:
    """Batching and pacing bounds (seconds unless said otherwise)."""

    max_actions: int = 400  # actions per transaction
    max_bytes: int = 100_000  # estimated packed size per transaction
    max_wait: float = 0.1  # the oldest unbatched entry waits at most this before a send
    max_in_flight: int = 64  # batches signed but not yet finished
    ttl: int = 60  # transaction expiry after the chain's head time
    check_delay: float = 0.5  # first status check after a send
    check_every: float = 0.25  # later checks while pending
    retry_min: float = 0.5  # backoff after a retriable failure ...
    retry_max: float = 10.0  # ... doubling up to this

    def __post_init__(self) -> None:
        if self.max_actions < 1 or self.max_in_flight < 1 or self.ttl < 5:
            raise ValueError("max_actions and max_in_flight must be >= 1, ttl >= 5 s")
        if self.max_wait < 0 or self.retry_min <= 0 or self.retry_max < self.retry_min:
            raise ValueError("max_wait >= 0 and 0 < retry_min <= retry_max")


# An action's packed size: account, name, one authorization, data (two names, time, credit id)
# and the length prefixes; a transaction adds a header and a signature.
ACTION_BYTES = 8 + 8 + 1 + 16 + 1 + 32
DONE_MEMORY = 200_000  # finished keys remembered (see PusherCore._done)
TRANSACTION_BYTES = 200


@dataclass(frozen=True)
class Batch:
    """A journaled transaction: its entries, id, expiry (chain time, Unix s), the head block
    number when it was signed (it cannot be in that block or an earlier one) and the body."""

    seq: int
    keys: tuple[str, ...]
    tx_id: str
    expiration: int
    first_block: int
    body: Mapping[str, Any] = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "keys": list(self.keys), "tx_id": self.tx_id,
                "expiration": self.expiration, "first_block": self.first_block,
                "body": dict(self.body)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Batch:
        return cls(int(data["seq"]), tuple(data["keys"]), str(data["tx_id"]),
                   int(data["expiration"]), int(data["first_block"]), dict(data["body"]))


# ------------------------------------------------------------------ effects

@dataclass(frozen=True)
class Sign:
    """Sign one transaction of ``actions`` ((name, data) on the jobs contract)."""

    seq: int
    keys: tuple[str, ...]
    actions: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class Journal:
    batch: Batch


@dataclass(frozen=True)
class Send:
    batch: Batch


@dataclass(frozen=True)
class Check:
    batch: Batch


@dataclass(frozen=True)
class Finish:
    """Delete the batch's outbox entries and journal entry (one ZooKeeper transaction)."""

    batch: Batch


@dataclass(frozen=True)
class Abandon:
    """Delete the journal entry only; its entries go back to the queue."""

    batch: Batch


@dataclass(frozen=True)
class Park:
    """Move ``credit`` out of the outbox to the parked entries with the chain's message, and
    delete the journal entry of its batch ``seq``."""

    seq: int
    credit: Credit
    message: str
    code: int


Effect = Sign | Journal | Send | Check | Finish | Abandon | Park


# ------------------------------------------------------------------ judging a transaction

class Verdict(Enum):
    IRREVERSIBLE = "irreversible"  # in an irreversible block: finish
    PENDING = "pending"  # applied or in a reversible block: check again
    NOT_SEEN = "not seen"  # in no block, not expired: send the same body again
    ABSENT = "absent"  # expired and in no block up to the irreversible one: abandon
    NEEDS_SCAN = "needs scan"  # the status tracker does not know it: look in the blocks


NOT_SCANNED = object()


def judge(status: Mapping[str, Any], expiration: float, lib_time: float,
          found_in: int | object | None = NOT_SCANNED) -> Verdict:
    """Where a transaction stands, from nodeos's ``get_transaction_status`` answer and, when
    the tracker does not know it (statuses live 180 s and not across a nodeos restart), from a
    scan of the blocks it could be in (``found_in``: the block number holding it, or None when
    no block up to the last irreversible one holds it).

    ``expiration`` and ``lib_time`` (the last irreversible block's time) are chain time. Once
    the last irreversible block is past the expiry, no later block can include it.
    """
    state = str(status.get("state") or "UNKNOWN")
    lib = int(status.get("irreversible_number") or 0)
    if state == "IRREVERSIBLE":
        return Verdict.IRREVERSIBLE
    if state in ("LOCALLY_APPLIED", "IN_BLOCK"):
        return Verdict.PENDING
    # UNKNOWN, FAILED, FORKED_OUT: the tracker cannot say it is in a block now.
    expired = lib_time > expiration
    if not expired:
        return Verdict.NOT_SEEN  # resending the same id is harmless
    if found_in is NOT_SCANNED:
        return Verdict.NEEDS_SCAN
    if found_in is None:
        return Verdict.ABSENT
    assert isinstance(found_in, int)
    return Verdict.IRREVERSIBLE if found_in <= lib else Verdict.PENDING


# ------------------------------------------------------------------ the core

class Phase(Enum):
    SIGNING = "signing"
    JOURNALING = "journaling"
    JOURNAL_RETRY = "journal retry"  # to journal again at next_at
    READY = "ready"  # journaled, to send at next_at
    SENDING = "sending"
    WAITING = "waiting"  # to check at next_at
    CHECKING = "checking"
    CLOSING = "closing"  # Finish, Abandon or Park emitted


@dataclass
class _Flight:
    keys: tuple[str, ...]
    phase: Phase
    next_at: float
    batch: Batch | None = None
    backoff: float = 0.0
    sends: int = 0
    outcome: str = ""  # once CLOSING: "finish", "abandon", "rejected" or "park"


@dataclass
class Stats:
    """What the metrics show."""

    queued: int = 0
    in_flight_entries: int = 0
    batches_in_flight: int = 0
    parked: int = 0
    confirmed_actions: int = 0
    confirmed_batches: int = 0
    rejected_batches: int = 0
    abandoned_batches: int = 0
    retriable_failures: int = 0
    last_error: str = ""


class PusherCore:
    """The state machine; see the module docstring. Not thread-safe: one edge drives it."""

    def __init__(self, limits: Limits | None = None, send_credit_id: bool = False) -> None:
        self.limits = limits or Limits()
        self.send_credit_id = send_credit_id
        self._queue: OrderedDict[str, tuple[Credit, float]] = OrderedDict()  # key → (credit, seen)
        self._credits: dict[str, Credit] = {}  # every known, unfinished credit
        self._flights: dict[int, _Flight] = {}
        self._in_batch: dict[str, int] = {}
        self._alone: set[str] = set()  # keys of a rejected batch: sent one per transaction
        self._parked: set[str] = set()
        # Keys finished lately: an edge that hands one over again (a read that raced the
        # delete) must not get it pushed twice. Bounded: older keys are long gone from reads.
        self._done: OrderedDict[str, None] = OrderedDict()
        self._next_seq = 1
        self._sign_after = 0.0  # no new batch before (after a failed signature)
        self._sign_backoff = 0.0
        self.stats = Stats()

    # ------------------------------------------------------------ inputs

    def load(self, batches: Iterable[Batch], now: float) -> None:
        """The journal after a (re)start: each batch is checked before anything else."""
        for batch in batches:
            self._flights[batch.seq] = _Flight(batch.keys, Phase.WAITING, now, batch)
            for key in batch.keys:
                self._in_batch[key] = batch.seq
            self._next_seq = max(self._next_seq, batch.seq + 1)

    def offer(self, credits: Iterable[Credit], now: float) -> None:
        """Outbox entries seen by the edge; already known ones are ignored."""
        for credit in credits:
            key = credit.key
            if key in self._parked or key in self._queue or key in self._done:
                continue
            self._credits[key] = credit
            if key not in self._in_batch:
                self._queue[key] = (credit, now)

    def parked_keys(self, keys: Iterable[str]) -> None:
        """Entries already parked (never batched)."""
        self._parked.update(keys)

    def signed(self, seq: int, tx_id: str, expiration: int, first_block: int,
               body: Mapping[str, Any], now: float) -> list[Effect]:
        """The edge signed batch ``seq``: journal it next."""
        self._sign_backoff = 0.0
        flight = self._flights[seq]
        flight.batch = Batch(seq, flight.keys, tx_id, expiration, first_block, body)
        flight.phase = Phase.JOURNALING
        return [Journal(flight.batch)]

    def sign_failed(self, seq: int, message: str, now: float) -> None:
        """Signing failed (nodeos unreachable for get_info, say): nothing was journaled."""
        flight = self._flights.pop(seq)
        for key in flight.keys:
            self._in_batch.pop(key, None)
        self._requeue(flight.keys, now)
        # No new batch before a backoff: the chain is likely away.
        self._sign_backoff = min(self.limits.retry_max,
                                 max(self.limits.retry_min, self._sign_backoff * 2))
        self._sign_after = now + self._sign_backoff
        self.stats.retriable_failures += 1
        self._failure(message)

    def journaled(self, seq: int, now: float) -> list[Effect]:
        """The batch is durable: send it."""
        flight = self._flights[seq]
        flight.phase = Phase.SENDING
        flight.sends += 1
        assert flight.batch is not None
        return [Send(flight.batch)]

    def journal_failed(self, seq: int, message: str, now: float) -> None:
        """The journal write failed, or its answer was lost: write it again later (the
        write is idempotent). Never re-batch these entries: the write may have happened, and
        a restart would then send that transaction too."""
        flight = self._flights[seq]
        self._wait(flight, now)
        flight.phase = Phase.JOURNAL_RETRY
        self._failure(message)

    def sent(self, seq: int, now: float) -> None:
        """nodeos accepted the transaction (or already had it: a duplicate)."""
        flight = self._flights[seq]
        flight.phase, flight.next_at = Phase.WAITING, now + self.limits.check_delay
        flight.backoff = 0.0
        self.stats.last_error = ""

    def send_failed(self, seq: int, message: str, code: int, retriable: bool,
                    now: float) -> list[Effect]:
        """The push failed. Retriable: check later (maybe it arrived). Permanent: the whole
        transaction was refused, so none of it is on chain; split it, or park a lone entry."""
        flight = self._flights[seq]
        assert flight.batch is not None
        if retriable:
            self._wait(flight, now)
            self._failure(message)
            return []
        self.stats.rejected_batches += 1
        flight.phase = Phase.CLOSING
        if len(flight.keys) == 1:
            flight.outcome = "park"
            return [Park(seq, self._credits[flight.keys[0]], message, code)]
        flight.outcome = "rejected"
        return [Abandon(flight.batch)]

    def checked(self, seq: int, verdict: Verdict, now: float) -> list[Effect]:
        """What the chain says about batch ``seq`` (:func:`judge`)."""
        flight = self._flights[seq]
        assert flight.batch is not None
        if verdict is Verdict.IRREVERSIBLE:
            flight.phase, flight.outcome = Phase.CLOSING, "finish"
            return [Finish(flight.batch)]
        if verdict is Verdict.ABSENT:
            flight.phase, flight.outcome = Phase.CLOSING, "abandon"
            return [Abandon(flight.batch)]
        if verdict is Verdict.NOT_SEEN:
            flight.phase = Phase.SENDING
            flight.sends += 1
            return [Send(flight.batch)]
        flight.phase, flight.next_at = Phase.WAITING, now + self.limits.check_every
        return []

    def check_failed(self, seq: int, message: str, now: float) -> None:
        """The chain could not be asked (down, slow): ask again later."""
        self._wait(self._flights[seq], now)
        self._failure(message)

    def closed(self, seq: int, now: float) -> None:
        """The edge ran the batch's Finish, Abandon or Park."""
        flight = self._flights.pop(seq)
        for key in flight.keys:
            self._in_batch.pop(key, None)
        if flight.outcome in ("finish", "park"):
            for key in flight.keys:
                self._credits.pop(key, None)
                self._alone.discard(key)
                self._done[key] = None
            while len(self._done) > DONE_MEMORY:
                self._done.popitem(last=False)
            if flight.outcome == "park":
                self._parked.update(flight.keys)
            else:
                self.stats.confirmed_batches += 1
                self.stats.confirmed_actions += len(flight.keys)
            return
        if flight.outcome == "rejected":
            self._alone.update(flight.keys)  # find the refused entry: one per transaction
        else:
            self.stats.abandoned_batches += 1
        self._requeue(flight.keys, now)

    def close_failed(self, seq: int, message: str, now: float) -> None:
        """The ZooKeeper transaction failed (nothing changed): the next check decides again.
        (A rejected transaction is then not seen, so it is sent again and refused again.)"""
        flight = self._flights[seq]
        flight.outcome = ""
        self._wait(flight, now)
        self._failure(message)

    # ------------------------------------------------------------ the clock

    def tick(self, now: float) -> list[Effect]:
        """Effects due at ``now``: checks and resends, then new batches."""
        effects: list[Effect] = []
        for flight in self._flights.values():
            if flight.next_at > now or flight.batch is None:
                continue
            if flight.phase is Phase.WAITING:
                flight.phase = Phase.CHECKING
                effects.append(Check(flight.batch))
            elif flight.phase is Phase.JOURNAL_RETRY:
                flight.phase = Phase.JOURNALING
                effects.append(Journal(flight.batch))
        while (len(self._flights) < self.limits.max_in_flight and self._queue
               and now >= self._sign_after):
            keys = self._take(now)
            if not keys:
                break
            seq = self._next_seq
            self._next_seq += 1
            self._flights[seq] = _Flight(keys, Phase.SIGNING, now)
            for key in keys:
                self._in_batch[key] = seq
            effects.append(Sign(seq, keys, tuple(
                self._credits[k].action(self.send_credit_id) for k in keys)))
        return effects

    def next_wakeup(self, now: float) -> float:
        """When :meth:`tick` may next have something to do (for the edge's sleep)."""
        times = [f.next_at for f in self._flights.values()
                 if f.phase in (Phase.WAITING, Phase.JOURNAL_RETRY)]
        if self._queue and len(self._flights) < self.limits.max_in_flight:
            _, seen = next(iter(self._queue.values()))
            times.append(max(seen + self.limits.max_wait, self._sign_after))
        return min(times) if times else now + 1.0

    def snapshot(self) -> Stats:
        """Counters plus the current sizes."""
        self.stats.queued = len(self._queue)
        self.stats.in_flight_entries = len(self._in_batch)
        self.stats.batches_in_flight = len(self._flights)
        self.stats.parked = len(self._parked)
        return Stats(**vars(self.stats))

    def oldest_finished_at_us(self) -> int | None:
        """finished_at_us of the oldest entry not yet confirmed (for the age metric)."""
        times = [c.finished_at_us for c in self._credits.values() if c.finished_at_us]
        return min(times) if times else None

    def credits_of(self, keys: Iterable[str]) -> list[Credit]:
        """The credits under ``keys`` (of a batch not yet closed)."""
        return [self._credits[k] for k in keys]

    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return not self._queue and not self._flights

    # ------------------------------------------------------------ internals

    def _take(self, now: float) -> tuple[str, ...]:
        """The next batch's keys, or () when it is not yet time (latency bound)."""
        first_key, (_, seen) = next(iter(self._queue.items()))
        if first_key in self._alone:
            self._queue.pop(first_key)
            return (first_key,)
        full = len(self._queue) >= self.limits.max_actions
        if not full and now < seen + self.limits.max_wait:
            return ()
        room = max(1, (self.limits.max_bytes - TRANSACTION_BYTES) // ACTION_BYTES)
        size = min(self.limits.max_actions, room)
        keys: list[str] = []
        for key in list(self._queue):
            if len(keys) >= size:
                break
            if key in self._alone:
                continue
            keys.append(key)
            self._queue.pop(key)
        return tuple(keys)

    def _requeue(self, keys: Iterable[str], now: float) -> None:
        # Back to the front: these entries are the oldest.
        for key in reversed(list(keys)):
            self._queue[key] = (self._credits[key], now - self.limits.max_wait)
            self._queue.move_to_end(key, last=False)

    def _wait(self, flight: _Flight, now: float) -> None:
        flight.backoff = min(self.limits.retry_max,
                             max(self.limits.retry_min, flight.backoff * 2))
        flight.phase, flight.next_at = Phase.WAITING, now + flight.backoff
        self.stats.retriable_failures += 1

    def _failure(self, message: str) -> None:
        self.stats.last_error = message
