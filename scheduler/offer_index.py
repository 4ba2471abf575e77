"""The offers of one placement call, indexed to answer "best offer for this task" fast.

Used only by :mod:`scheduler.placement` (one index per call, thrown away after it). Offers are
numbered in offer-id order (so ties in fitness go to the smaller offer id) and kept as plain
lists. The pieces:

- fitness (best fit): :meth:`OfferIndex.score`, the free resources normalised by the cluster
  total and summed, plus the executor's normalised size when the agent has no executor yet
  (a new executor is a cost, not packing). Lower is better.
- a group: the offers of a researcher's eligible accounts that pass a task's static
  constraints, found once per (researcher, accounts, constraints), sorted by score (a sorted
  list is a valid heap);
- a bucket: one group for one task shape, a lazy min-heap of ``(score, offer, version)``.
  Entries go stale when their offer changes (``version`` moves on); every change is appended to
  a log, and a bucket pushes fresh entries for the offers changed since it last answered before
  it answers again. An offer popped because the shape no longer fits is dropped for good:
  offers only shrink within a call.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from scheduler.constraints import (
    Constraint,
    dynamic_match,
    dynamic_reason,
    field_value,
    static_match,
)

# Offers and tasks come from floats (Mesos keeps 3 decimals); sums of many small tasks must
# still fit exactly-full offers.
EPSILON = 1e-6
RESOURCE_NAMES = ("cpus", "mem", "disk")
Need = tuple[float, float, float]


class Group:
    """The offers a set of eligible accounts and static constraints allows."""

    __slots__ = ("empty_reason", "entries", "log_position", "members")

    def __init__(self, members: list[int], entries: list, log_position: int,
                 empty_reason: str | None) -> None:
        self.members = set(members)
        self.entries = entries  # (score, offer, version), sorted
        self.log_position = log_position  # changes after this point are not in ``entries``
        self.empty_reason = empty_reason


class Bucket:
    """A group's offers for one task shape; ``dead`` once no offer has room for the shape.

    A job with UNIQUE/MAX_PER constraints gets its own copy (``jobs``) from which offers those
    constraints refuse are dropped for good (the job's counts only grow within a call), so a
    spread-out job does not wade through its own full agents at every task.
    """

    __slots__ = ("cursor", "dead", "dropped", "group", "heap", "jobs", "need", "room_new",
                 "room_plain")

    def __init__(self, group: Group, need: Need, executor: Need) -> None:
        self.group = group
        self.need = need
        # What an offer must have free, with the float tolerance folded in: on an agent that
        # runs the executor, and on one that would need it started.
        self.room_plain = tuple(n - EPSILON for n in need)
        self.room_new = tuple(n + x - EPSILON for n, x in zip(need, executor, strict=True))
        self.heap = list(group.entries)
        self.cursor = group.log_position
        self.dead: str | None = group.empty_reason
        self.jobs: dict[str, Bucket] = {}  # job -> its copy (dynamic constraints)
        self.dropped: list[int] = []  # in a job's copy: offers its constraints refused

    def copy_for_job(self) -> Bucket:
        """A copy whose heap a job with dynamic constraints may prune."""
        copy = Bucket.__new__(Bucket)
        copy.group, copy.need = self.group, self.need
        copy.room_plain, copy.room_new = self.room_plain, self.room_new
        copy.heap, copy.cursor, copy.dead = list(self.heap), self.cursor, None
        copy.jobs, copy.dropped = {}, []
        return copy


class OfferIndex:
    """Free resources, executor state and fitness of every offer, with groups and buckets."""

    def __init__(self, offers: Sequence, executor: Need, total: Need) -> None:
        ordered = sorted(offers, key=lambda o: o.offer_id)
        ids = [o.offer_id for o in ordered]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate offer ids in offers")
        self.offers = ordered
        self.offer_ids = ids
        self.agent_ids = [o.agent_id for o in ordered]
        self.executor = executor
        self.inv = tuple(1.0 / whole if whole > 0 else 0.0 for whole in total)
        self.executor_cost = sum(x * i for x, i in zip(executor, self.inv, strict=True))
        running = {o.agent_id for o in ordered if o.executor_running}
        self.has_executor = [o.agent_id in running for o in ordered]  # per offer (its agent)
        self.siblings: dict[str, list[int]] = {}  # agent -> its offers
        self.by_account: dict[str, list[int]] = {}
        self.agent_hostname: dict[str, str] = {}
        for index, offer in enumerate(ordered):
            self.siblings.setdefault(offer.agent_id, []).append(index)
            self.agent_hostname.setdefault(offer.agent_id, offer.hostname)
            account = offer.attributes.get("eos_account")
            if account is not None:
                self.by_account.setdefault(str(account), []).append(index)
        self.free = [list(o.available.as_tuple()) for o in ordered]
        self.version = [0] * len(ordered)
        self.score = [self.fitness(i) for i in range(len(ordered))]
        self.used = [False] * len(ordered)
        self.log: list[int] = []  # offer numbers, appended whenever one changes
        self.groups: dict[tuple, Group] = {}
        self.buckets: dict[tuple, Bucket] = {}
        self.values: dict[str, list[str | None]] = {}  # field -> its value on each offer

    def fitness(self, i: int) -> float:
        """Best-fit score of offer ``i`` now: lower is a better (fuller) fit."""
        free, (ic, im, idisk) = self.free[i], self.inv
        score = free[0] * ic + free[1] * im + free[2] * idisk
        return score if self.has_executor[i] else score + self.executor_cost

    def field_values(self, name: str) -> list[str | None]:
        """The value of field ``name`` (attribute or hostname) on each offer."""
        values = self.values.get(name)
        if values is None:
            values = self.values[name] = [field_value(name, o.hostname, o.attributes)
                                          for o in self.offers]
        return values

    # -- groups and buckets ----------------------------------------------------------------------
    def bucket(self, accounts: frozenset[str], researcher: str,
               static: tuple[Constraint, ...], need: Need) -> Bucket:
        """The bucket of offers for these accounts, static constraints and shape."""
        key = (researcher, accounts, static, need)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(self._group(accounts, researcher, static), need,
                                                self.executor)
        return bucket

    def _group(self, accounts: frozenset[str], researcher: str,
               static: tuple[Constraint, ...]) -> Group:
        key = (researcher, accounts, static)  # researcher: reasons name them
        group = self.groups.get(key)
        if group is not None:
            return group
        candidates = sorted(i for account in accounts for i in self.by_account.get(account, ()))
        eligible_count = len(candidates)
        reason = None
        if not candidates:
            reason = (f"no eligible agent: researcher {researcher} has no registered worker "
                      f"among {len(self.offers)} offers")
        for constraint in static:
            if not candidates:
                break
            values = self.field_values(constraint.field)
            candidates = [i for i in candidates if static_match(constraint, values[i])]
            if not candidates:
                reason = (f"constraint {constraint.describe()}: none of {eligible_count} "
                          f"eligible offers matches")
        entries = sorted((self.score[i], i, self.version[i]) for i in candidates)
        group = self.groups[key] = Group(candidates, entries, len(self.log), reason)
        return group

    # -- queries ---------------------------------------------------------------------------------
    def best(self, bucket: Bucket) -> int | None:
        """The best-fitting offer of ``bucket`` with room for its shape, or None."""
        heap, version, free, has_executor = self.heap_state(bucket)
        c, m, d = bucket.room_plain
        cx, mx, dx = bucket.room_new
        while heap:
            _, i, v = heap[0]
            if v != version[i]:
                heapq.heappop(heap)  # stale: its current entry was pushed when it changed
                continue
            room = free[i]
            if (c <= room[0] and m <= room[1] and d <= room[2] if has_executor[i]
                    else cx <= room[0] and mx <= room[1] and dx <= room[2]):
                return i
            heapq.heappop(heap)  # offers only shrink: never again for this shape
        return None

    def best_for_job(self, bucket: Bucket, dynamic: tuple[Constraint, ...],
                     counts: dict[str, dict[str, int]]) -> int | None:
        """Like :meth:`best` on a job's copy, also passing the job's UNIQUE/MAX_PER
        constraints given its ``counts`` (field -> value -> tasks of the job there); offers
        they refuse leave the copy for good."""
        heap, version, free, has_executor = self.heap_state(bucket)
        c, m, d = bucket.room_plain
        cx, mx, dx = bucket.room_new
        # The counts dicts are live: the job's launches show up in them at once.
        checks = [(self.field_values(k.field), counts.setdefault(k.field, {}), k.limit)
                  for k in dynamic]
        dropped = bucket.dropped
        while heap:
            _, i, v = heap[0]
            if v != version[i]:
                heapq.heappop(heap)
                continue
            room = free[i]
            if not (c <= room[0] and m <= room[1] and d <= room[2] if has_executor[i]
                    else cx <= room[0] and mx <= room[1] and dx <= room[2]):
                heapq.heappop(heap)
                continue
            for values, seen, limit in checks:
                value = values[i]
                if value is None or seen.get(value, 0) >= limit:
                    heapq.heappop(heap)
                    dropped.append(i)
                    break
            else:
                return i
        return None

    def job_reason(self, bucket: Bucket, dynamic: tuple[Constraint, ...], job_id: str,
                   counts: dict[str, dict[str, int]]) -> str:
        """Why a job's copy has no offer left: a constraint refused every offer with room, or
        no offer has room at all."""
        for i in sorted(set(bucket.dropped)):
            if self.has_room(i, bucket):
                failed = self._dynamic_failure(i, dynamic, counts)
                if failed is not None:
                    return dynamic_reason(failed, job_id, counts[failed.field])
        return self.resource_reason(bucket)

    def has_room(self, i: int, bucket: Bucket) -> bool:
        """Whether offer ``i`` has room for the bucket's shape now."""
        room = self.free[i]
        c, m, d = bucket.room_plain if self.has_executor[i] else bucket.room_new
        return c <= room[0] and m <= room[1] and d <= room[2]

    def heap_state(self, bucket: Bucket) -> tuple[list, list[int], list[list[float]], list[bool]]:
        """Bring ``bucket``'s heap up to date with the offers changed since it last answered."""
        log, heap = self.log, bucket.heap
        if bucket.cursor != len(log):
            changed = bucket.group.members.intersection(log[bucket.cursor:])
            bucket.cursor = len(log)
            free, score, version, has_executor = (
                self.free, self.score, self.version, self.has_executor)
            c, m, d = bucket.room_plain
            cx, mx, dx = bucket.room_new
            for i in changed:
                room = free[i]
                if (c <= room[0] and m <= room[1] and d <= room[2] if has_executor[i]
                        else cx <= room[0] and mx <= room[1] and dx <= room[2]):
                    heapq.heappush(heap, (score[i], i, version[i]))
        return heap, self.version, self.free, self.has_executor

    def _dynamic_failure(self, i: int, dynamic: tuple[Constraint, ...],
                         counts: dict[str, dict[str, int]]) -> Constraint | None:
        for constraint in dynamic:
            value = self.field_values(constraint.field)[i]
            if value is None or not dynamic_match(constraint, value,
                                                  counts.get(constraint.field, {})):
                return constraint
        return None

    # -- launching -------------------------------------------------------------------------------
    def take(self, i: int, need: Need, bucket: Bucket) -> bool:
        """Use ``need`` of offer ``i`` (found through ``bucket``); True when the task also
        starts the executor on the agent (first task there)."""
        room = self.free[i]
        log = self.log
        synced = bucket.cursor == len(log)
        with_executor = not self.has_executor[i]
        if with_executor:
            executor = self.executor
            room[0] -= executor[0]
            room[1] -= executor[1]
            room[2] -= executor[2]
            for sibling in self.siblings[self.agent_ids[i]]:
                self.has_executor[sibling] = True
                if sibling != i:  # its executor cost is gone: a better score
                    self.version[sibling] += 1
                    self.score[sibling] = self.fitness(sibling)
                    log.append(sibling)
                    synced = False
        room[0] -= need[0]
        room[1] -= need[1]
        room[2] -= need[2]
        self.version[i] += 1
        ic, im, idisk = self.inv
        score = self.score[i] = room[0] * ic + room[1] * im + room[2] * idisk
        log.append(i)
        self.used[i] = True
        heap = bucket.heap
        if synced and heap and heap[0][1] == i:
            # Only this launch changed anything since the bucket answered: fix its entry in
            # place instead of pushing a new one at the next answer.
            bucket.cursor = len(log)
            c, m, d = bucket.room_plain
            if c <= room[0] and m <= room[1] and d <= room[2]:
                heapq.heapreplace(heap, (score, i, self.version[i]))
            else:
                heapq.heappop(heap)
        return with_executor

    # -- reasons ---------------------------------------------------------------------------------
    def resource_reason(self, bucket: Bucket) -> str:
        """Why no offer of the bucket's group has room for its shape (one line)."""
        members = sorted(bucket.group.members)
        best = [-math.inf] * 3
        for i in members:
            extra = (0.0, 0.0, 0.0) if self.has_executor[i] else self.executor
            for k in range(3):
                best[k] = max(best[k], self.free[i][k] - extra[k])
        need = bucket.need
        short = [k for k in range(3) if need[k] > best[k] + EPSILON]
        executor_note = "" if all(self.has_executor[i] for i in members) else (
            " (after the executor's own resources on agents without it)")
        count = len(members)
        if short:
            names = ", ".join(RESOURCE_NAMES[k] for k in short)
            needs = ", ".join(f"{need[k]:g}" for k in short)
            frees = ", ".join(f"{max(best[k], 0.0):g}" for k in short)
            return (f"insufficient {names}: needs {needs}, at most {frees} free on {count} "
                    f"eligible offers{executor_note}")
        needs = " ".join(f"{name} {value:g}" for name, value in zip(
            RESOURCE_NAMES, need, strict=True))
        return (f"insufficient resources: none of {count} eligible offers has {needs} free "
                f"at once{executor_note}")
