"""The master's vocabulary: the records it keeps, the effects and errors its calls produce,
and the constants (version, metric names) the other master modules share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from actors.local.resources import Resources

VERSION = "1.11.0"  # the Mesos release whose v1 API this emulates
DEFAULT_REFUSE_SECONDS = 5.0  # Filters.refuse_seconds default (mesos.proto)
MAX_REFUSE_SECONDS = 365 * 86400.0  # the allocator caps refuse_seconds at 365 days
# Scheduler calls -> the master counter Mesos bumps for them (src/master/metrics.cpp).
CALL_METRICS = {
    "DECLINE": "master/messages_decline_offers",
    "REVIVE": "master/messages_revive_offers",
    "SUPPRESS": "master/messages_suppress_offers",
    "KILL": "master/messages_kill_task",
    "ACKNOWLEDGE": "master/messages_status_update_acknowledgement",
    "RECONCILE": "master/messages_reconcile_tasks",
    "MESSAGE": "master/messages_framework_to_executor",
    "TEARDOWN": "master/messages_unregister_framework",
    "REQUEST": "master/messages_resource_request",
}
ZERO_METRICS = (*sorted(set(CALL_METRICS.values())), "master/messages_launch_tasks",
                "master/messages_register_framework", "master/messages_reregister_framework",
                "master/messages_register_slave", "master/messages_reregister_slave",
                "master/messages_status_update", "master/messages_exited_executor",
                "master/messages_executor_to_framework", "master/valid_status_updates",
                "master/valid_framework_to_executor_messages",
                "master/invalid_framework_to_executor_messages",
                "master/valid_executor_to_framework_messages", "master/slave_registrations",
                "master/slave_reregistrations", "master/slave_removals",
                "master/slave_removals/reason_unhealthy", "master/dropped_messages")
COMPLETED_KEEP = 1000  # completed tasks / frameworks kept for /master/state


class CallError(Exception):
    """A call refused with an HTTP status (4xx) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SubscribeRefused(CallError):
    """A SUBSCRIBE that Mesos refuses only after answering 200: the stream carries one ERROR
    event with the message, then closes (e.g. a framework id past its failover_timeout)."""

    def __init__(self, message: str) -> None:
        super().__init__(200, message)


@dataclass(frozen=True)
class Effect:
    """Something the edge must do: kind is "event", "agent", "close" or "registry" (store the
    payload as the registry that a newly elected master recovers)."""

    kind: str
    target: str  # framework id ("event", "close"), agent id ("agent"), "" ("registry")
    payload: dict = field(default_factory=dict)
    path: str = ""  # for "agent": the internal endpoint on the agent
    stream: str = ""  # for "event" and "close": the stream it belongs to


@dataclass
class Framework:
    id: str
    info: dict
    stream_id: str | None = None
    connected: bool = False
    disconnected_at: float | None = None
    suppressed: bool = False
    registered_at: float = 0.0
    # agent id -> its refused-offer filters, each (refused resources, until). As in the Mesos
    # allocator (offerFilters[role][agent] is a set), several coexist; an offer is withheld
    # while any unexpired one's resources contain it.
    filters: dict[str, list[tuple[Resources, float]]] = field(default_factory=dict)

    @property
    def failover_timeout(self) -> float:
        # Mesos accepts a negative failover_timeout; its timer then fires at once.
        value = self.info.get("failover_timeout", 0.0)
        return max(0.0, float(value)) if isinstance(value, int | float) else 0.0

    @property
    def roles(self) -> list[str]:
        """protobuf::framework::getRoles(): ``roles`` for MULTI_ROLE, else ``[role]``."""
        if self.multi_role:
            return [r for r in self.info.get("roles") or [] if isinstance(r, str)]
        role = self.info.get("role")
        return [role if isinstance(role, str) and role else "*"]

    @property
    def multi_role(self) -> bool:
        caps = self.info.get("capabilities") or []
        return any(isinstance(c, dict) and c.get("type") == "MULTI_ROLE" for c in caps)

    @property
    def partition_aware(self) -> bool:
        caps = self.info.get("capabilities") or []
        return any(isinstance(c, dict) and c.get("type") == "PARTITION_AWARE" for c in caps)


@dataclass
class Agent:
    id: str
    info: dict  # v1 AgentInfo (id, hostname, port, resources, attributes)
    url: str
    total: Resources
    used: Resources = field(default_factory=Resources)
    offered: Resources = field(default_factory=Resources)
    last_seen: float = 0.0
    registered_at: float = 0.0
    registered_wall: float = field(default_factory=time.time)  # Unix seconds for /state

    def available(self) -> Resources:
        return self.total - self.used - self.offered


@dataclass
class Offer:
    id: str
    framework_id: str
    agent_id: str
    resources: Resources


@dataclass
class Task:
    framework_id: str
    agent_id: str
    info: dict
    resources: Resources
    executor_id: str | None
    state: str = "TASK_STAGING"
    statuses: list[dict] = field(default_factory=list)
    uuid_states: dict[str, str] = field(default_factory=dict)  # status uuid -> its state
    # The state of the update the agent is forwarding (oldest unacknowledged), which is
    # what Mesos reconciles with (Task.status_update_state); None before any update.
    status_update_state: str | None = None
    released: bool = False  # its resources went back to the agent

    @property
    def id(self) -> str:
        return self.info["task_id"]["value"]

    def to_json(self) -> dict:
        """The task as /master/state lists it."""
        out = {"id": self.id, "name": self.info.get("name", ""),
               "framework_id": self.framework_id, "agent_id": self.agent_id,
               "slave_id": self.agent_id, "state": self.state,
               "resources": self.resources.summary(),
               "statuses": [{"state": s["state"], "timestamp": s.get("timestamp")}
                            for s in self.statuses]}
        if self.executor_id:
            out["executor_id"] = self.executor_id
        return out
