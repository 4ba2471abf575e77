"""Task states, status construction, and the agent's status-update ledger.

The ledger does what the Mesos agent's status update manager does: updates of one task are
delivered in order, only the oldest unacknowledged one is in flight, and it is resent until the
scheduler's acknowledgement (carrying its uuid) comes back, first after ``retry_seconds``
(STATUS_UPDATE_RETRY_INTERVAL_MIN, 10 s) and then twice as long each time, up to
``max_retry_seconds`` (STATUS_UPDATE_RETRY_INTERVAL_MAX, 10 min).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

TERMINAL_STATES = frozenset({
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
    "TASK_GONE", "TASK_GONE_BY_OPERATOR",
})
ACTIVE_STATES = frozenset({
    "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE",
})
ALL_STATES = TERMINAL_STATES | ACTIVE_STATES | {"TASK_UNKNOWN"}


def is_terminal(state: str) -> bool:
    """True for states after which a task never changes again."""
    return state in TERMINAL_STATES


def new_uuid() -> str:
    """A status uuid as the v1 API carries bytes: base64 of the 16 raw bytes."""
    return base64.b64encode(uuid.uuid4().bytes).decode("ascii")


def is_uuid_bytes(value: object) -> bool:
    """True when ``value`` is base64 of exactly 16 bytes (how v1 JSON carries a UUID)."""
    if not isinstance(value, str):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except (ValueError, binascii.Error):
        return False


def make_status(
    task_id: str,
    state: str,
    *,
    agent_id: str | None = None,
    executor_id: str | None = None,
    source: str = "SOURCE_EXECUTOR",
    reason: str | None = None,
    message: str | None = None,
    with_uuid: bool = True,
    now: float | None = None,
) -> dict:
    """A v1 ``TaskStatus``; master-generated ones go without uuid (nothing to acknowledge)."""
    status: dict = {"task_id": {"value": task_id}, "state": state, "source": source,
                    "timestamp": time.time() if now is None else now}
    if agent_id:
        status["agent_id"] = {"value": agent_id}
    if executor_id:
        status["executor_id"] = {"value": executor_id}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if with_uuid:
        status["uuid"] = new_uuid()
    return status


ACKED_KEEP = 10000  # acknowledged updates remembered to recognise duplicates


@dataclass
class _Stream:
    framework_id: str
    pending: deque = field(default_factory=deque)  # statuses, oldest first
    next_send: float = 0.0  # when the head may be (re)sent
    interval: float = 0.0  # the wait after the next send (doubles per retry)
    latest_state: str = "TASK_STAGING"


class UpdateLedger:
    """Per-task ordered queues of unacknowledged status updates (pure; the caller sends)."""

    def __init__(self, retry_seconds: float = 2.0, max_retry_seconds: float = 600.0) -> None:
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max(retry_seconds, max_retry_seconds)
        self._streams: dict[str, _Stream] = {}
        # Recently acknowledged (task id, uuid): an executor re-sending an update the
        # scheduler already acknowledged is a duplicate (the status update manager's check).
        self._acked: deque[tuple[str, str]] = deque(maxlen=ACKED_KEEP)
        self._acked_set: set[tuple[str, str]] = set()

    def add(self, framework_id: str, status: dict, now: float) -> bool:
        """Queue ``status`` (which must carry a uuid); True when it is due to be sent now."""
        task_id = status["task_id"]["value"]
        stream = self._streams.get(task_id)
        if stream is None:
            stream = self._streams[task_id] = _Stream(framework_id)
        stream.latest_state = status["state"]
        stream.pending.append(status)
        if len(stream.pending) == 1:
            stream.next_send = now
            stream.interval = self.retry_seconds
            return True
        return False

    def latest_state(self, task_id: str) -> str | None:
        """The newest state queued for the task (what the master should believe)."""
        stream = self._streams.get(task_id)
        return stream.latest_state if stream else None

    def due(self, now: float) -> list[tuple[str, dict, str]]:
        """(framework_id, head status, latest state) of each stream whose head should go out.

        Marks them sent: the next retry comes after the stream's interval, which then
        doubles (up to ``max_retry_seconds``) unless an acknowledgement comes first."""
        out = []
        for stream in self._streams.values():
            if stream.pending and stream.next_send <= now:
                out.append((stream.framework_id, stream.pending[0], stream.latest_state))
                interval = stream.interval or self.retry_seconds
                stream.next_send = now + interval
                stream.interval = min(interval * 2, self.max_retry_seconds)
        return out

    def resend_all(self, now: float) -> None:
        """Make every head due now, the backoff starting again from ``retry_seconds`` (after
        re-registering with a new master, or when a framework re-subscribed)."""
        for stream in self._streams.values():
            stream.next_send = now
            stream.interval = self.retry_seconds

    def acknowledge(self, task_id: str, status_uuid: str) -> tuple[dict | None, bool]:
        """Drop the head if ``status_uuid`` is its uuid; returns (acked status, next is due).

        An ack for anything but the head is a duplicate or stale and is ignored."""
        stream = self._streams.get(task_id)
        if stream is None or not stream.pending:
            return None, False
        head = stream.pending[0]
        if head.get("uuid") != status_uuid:
            return None, False
        stream.pending.popleft()
        if len(self._acked) == self._acked.maxlen:
            self._acked_set.discard(self._acked[0])
        self._acked.append((task_id, status_uuid))
        self._acked_set.add((task_id, status_uuid))
        if not stream.pending:
            if is_terminal(head["state"]):
                del self._streams[task_id]
            return head, False
        stream.next_send = 0.0
        stream.interval = self.retry_seconds
        return head, True

    def seen(self, task_id: str, status_uuid: str) -> bool:
        """True when the update is queued or was acknowledged recently (a duplicate)."""
        if (task_id, status_uuid) in self._acked_set:
            return True
        stream = self._streams.get(task_id)
        return stream is not None and any(s.get("uuid") == status_uuid for s in stream.pending)

    def export(self, framework_ids: set[str], task_ids: set[str]) -> dict:
        """The streams of these frameworks, and the acknowledged updates of these tasks, as
        JSON (the agent's checkpoint, issue 10)."""
        return {"streams": [{"task_id": tid, "framework_id": st.framework_id,
                             "pending": list(st.pending), "latest_state": st.latest_state}
                            for tid, st in self._streams.items()
                            if st.framework_id in framework_ids],
                "acked": [list(pair) for pair in self._acked if pair[0] in task_ids]}

    def restore(self, saved: dict) -> None:
        """What :meth:`export` wrote, back (agent recovery); every stream due at once."""
        for item in saved.get("streams") or []:
            self._streams[item["task_id"]] = _Stream(
                item["framework_id"], deque(item["pending"]),
                latest_state=item["latest_state"])
        for task_id, status_uuid in saved.get("acked") or []:
            self._acked.append((task_id, status_uuid))
            self._acked_set.add((task_id, status_uuid))

    def unacknowledged(self, task_id: str) -> int:
        """How many updates of the task wait for acknowledgement."""
        stream = self._streams.get(task_id)
        return len(stream.pending) if stream else 0

    def drop_framework(self, framework_id: str) -> int:
        """Forget a removed framework's updates; returns how many were dropped."""
        gone = [t for t, s in self._streams.items() if s.framework_id == framework_id]
        dropped = 0
        for task_id in gone:
            dropped += len(self._streams.pop(task_id).pending)
        return dropped

    def __len__(self) -> int:
        return sum(len(s.pending) for s in self._streams.values())
