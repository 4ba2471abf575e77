"""The master's bookkeeping, without I/O: frameworks, agents, offers, tasks, and the calls.

Every method takes ``now`` (seconds, monotonic) and appends what must happen outside to
``self.outbox`` as :class:`Effect` values: an event for a framework's stream, a message for an
agent, or the closing of a stream. The HTTP edge (actors/local/master.py) calls these under one
lock and carries out the effects after releasing it.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from actors.local.resources import ResourceError, Resources
from actors.local.tasks import TERMINAL_STATES, is_terminal, is_uuid_bytes, make_status

VERSION = "1.11.0"  # the Mesos release whose v1 API this emulates
DEFAULT_REFUSE_SECONDS = 5.0
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
    """Something the edge must do: kind is "event", "agent" or "close"."""

    kind: str
    target: str  # framework id ("event", "close") or agent id ("agent")
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
    # agent id -> (refused resources, until): offers of a subset are not made before ``until``
    filters: dict[str, tuple[Resources, float]] = field(default_factory=dict)

    @property
    def failover_timeout(self) -> float:
        value = self.info.get("failover_timeout", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

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
    released: bool = False  # its resources went back to the agent

    @property
    def id(self) -> str:
        return self.info["task_id"]["value"]

    def to_json(self) -> dict:
        out = {"id": self.id, "name": self.info.get("name", ""),
               "framework_id": self.framework_id, "agent_id": self.agent_id,
               "slave_id": self.agent_id, "state": self.state,
               "resources": self.resources.summary(),
               "statuses": [{"state": s["state"], "timestamp": s.get("timestamp")}
                            for s in self.statuses]}
        if self.executor_id:
            out["executor_id"] = self.executor_id
        return out


def _id_value(obj: object) -> str | None:
    """``{"value": "x"}`` -> "x"; anything else -> None."""
    if isinstance(obj, dict) and isinstance(obj.get("value"), str) and obj["value"]:
        return obj["value"]
    return None


def _missing_required_resources(where: str, resources: object) -> str:
    if resources is None:
        return ""
    if not isinstance(resources, list):
        return f"{where}.resources must be a list"
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("type"), str):
            return f"{where}: Resource needs its required fields 'name' and 'type'"
    return ""


def _missing_required_task(task: object) -> str:
    """The first required TaskInfo field (v1 mesos.proto) that is absent, or ""."""
    if not isinstance(task, dict):
        return "TaskInfo must be an object"
    for name in ("task_id", "agent_id"):
        if _id_value(task.get(name)) is None:
            return f"TaskInfo is missing required field '{name}.value'"
    if not isinstance(task.get("name"), str):
        return "TaskInfo is missing required field 'name'"
    executor = task.get("executor")
    if executor is not None:
        missing = _missing_required_executor(executor)
        if missing:
            return missing
    return _missing_required_resources("TaskInfo", task.get("resources"))


def _missing_required_executor(executor: object) -> str:
    """The first required ExecutorInfo field that is absent, or ""."""
    if not isinstance(executor, dict) or _id_value(executor.get("executor_id")) is None:
        return "ExecutorInfo is missing required field 'executor_id.value'"
    return _missing_required_resources("ExecutorInfo", executor.get("resources"))


class MasterCore:
    """All master state; not thread-safe (the edge holds a lock around every call)."""

    def __init__(self, master_id: str, master_info: dict, *, heartbeat_seconds: float = 15.0,
                 agent_timeout: float = 75.0, reregister_window: float = 10.0,
                 now: float = 0.0) -> None:
        self.master_id = master_id
        self.master_info = master_info
        self.heartbeat_seconds = heartbeat_seconds
        self.agent_timeout = agent_timeout
        self.reregister_window = reregister_window
        self.elected_at: float | None = None
        self.elected_wall: float | None = None
        self.started_wall = time.time()
        self.started = now
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[dict] = deque(maxlen=COMPLETED_KEEP)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        self.removed_agents: dict[str, str] = {}  # agent id -> "unreachable"
        self.offers: dict[str, Offer] = {}
        self.tasks: dict[tuple[str, str], Task] = {}  # (framework id, task id)
        self.lost_tasks: set[tuple[str, str]] = set()  # reported lost with their agent
        self.unreachable_tasks: dict[tuple[str, str], Task] = {}  # partition-aware ones
        self.completed_tasks: deque[dict] = deque(maxlen=COMPLETED_KEEP)
        self.executors: dict[tuple[str, str, str], Resources] = {}  # (agent, fw, exec)
        self.outbox: list[Effect] = []
        self.counters: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self.wants_allocation = False

    # -- helpers -----------------------------------------------------------------------------
    def _next(self, prefix: str) -> str:
        return f"{self.master_id}-{prefix}{next(self._ids):06d}"

    def _event(self, framework_id: str, event: dict) -> None:
        fw = self.frameworks.get(framework_id)
        if fw is not None and fw.connected and fw.stream_id:
            self.outbox.append(Effect("event", framework_id, event, stream=fw.stream_id))

    def _to_agent(self, agent_id: str, path: str, payload: dict) -> None:
        if agent_id in self.agents:
            self.outbox.append(Effect("agent", agent_id, payload, path))

    def _update_event(self, framework_id: str, status: dict) -> None:
        self._event(framework_id, {"type": "UPDATE", "update": {"status": status}})

    def _count_terminal(self, state: str) -> None:
        self.counters[f"master/tasks_{state[5:].lower()}"] += 1

    def is_elected(self) -> bool:
        """True while this master leads."""
        return self.elected_at is not None

    def elect(self, now: float) -> None:
        """This master became the leader: start the agent re-registration window."""
        self.elected_at = now
        self.elected_wall = time.time()  # /master/state gives Unix seconds, as Mesos does

    # -- frameworks ----------------------------------------------------------------------------
    def subscribe(self, call: dict, stream_id: str, now: float) -> Framework:
        """SUBSCRIBE: register or re-register a framework; raises CallError when refused."""
        sub = call.get("subscribe")
        info = sub.get("framework_info") if isinstance(sub, dict) else None
        if not isinstance(info, dict):
            raise CallError(400, "Expecting 'subscribe.framework_info' to be present")
        if not isinstance(info.get("name"), str) or not isinstance(info.get("user"), str):
            raise CallError(400, "FrameworkInfo needs 'user' and 'name' strings")
        timeout = info.get("failover_timeout", 0.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise CallError(400, "FrameworkInfo.failover_timeout must be a number >= 0")
        call_id = _id_value(call.get("framework_id"))
        info_id = _id_value(info.get("id"))
        if call_id and info_id and call_id != info_id:
            raise CallError(400, "'framework_id' differs from 'subscribe.framework_info.id'")
        fw_id = call_id or info_id
        if fw_id and fw_id in self.removed_framework_ids:
            raise SubscribeRefused("Framework has been removed")
        if fw_id and fw_id in self.frameworks:
            fw = self.frameworks[fw_id]
            if fw.connected and fw.stream_id:
                # The old connection loses: Mesos tells it that it failed over.
                self.outbox.append(Effect("event", fw_id, {"type": "ERROR", "error": {
                    "message": "Framework failed over"}}, stream=fw.stream_id))
                self.outbox.append(Effect("close", fw_id, stream=fw.stream_id))
            self._recover_offers(fw_id)
            fw.info = {**info, "id": {"value": fw_id}}
            self.counters["master/messages_reregister_framework"] += 1
        else:
            fw_id = fw_id or self._next("F")
            fw = Framework(fw_id, {**info, "id": {"value": fw_id}}, registered_at=now)
            self.frameworks[fw_id] = fw
            self.counters["master/messages_register_framework"] += 1
        fw.stream_id = stream_id
        fw.connected = True
        fw.disconnected_at = None
        fw.suppressed = False
        self._event(fw_id, {"type": "SUBSCRIBED", "subscribed": {
            "framework_id": {"value": fw_id},
            "heartbeat_interval_seconds": self.heartbeat_seconds,
            "master_info": self.master_info}})
        self.wants_allocation = True
        return fw

    def disconnect(self, framework_id: str, stream_id: str, now: float) -> None:
        """The framework's event stream broke: start its failover timeout."""
        fw = self.frameworks.get(framework_id)
        if fw is None or fw.stream_id != stream_id or not fw.connected:
            return
        fw.connected = False
        fw.disconnected_at = now
        fw.stream_id = None
        self._recover_offers(framework_id)

    def _recover_offers(self, framework_id: str) -> None:
        for offer in [o for o in self.offers.values() if o.framework_id == framework_id]:
            self._drop_offer(offer)

    def _drop_offer(self, offer: Offer) -> None:
        self.offers.pop(offer.id, None)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offered = agent.offered - offer.resources
        self.wants_allocation = True

    def remove_framework(self, framework_id: str, now: float) -> None:
        """TEARDOWN or failover timeout: kill its tasks, drop its offers, forget it."""
        fw = self.frameworks.pop(framework_id, None)
        if fw is None:
            return
        self._recover_offers(framework_id)
        agents = {t.agent_id for t in self.tasks.values() if t.framework_id == framework_id}
        agents |= {a for (a, f, _e) in self.executors if f == framework_id}
        for agent_id in agents:
            self._to_agent(agent_id, "/internal/shutdown_framework",
                           {"framework_id": framework_id})
        for key, task in list(self.tasks.items()):
            if task.framework_id == framework_id:
                self._release_task(task)
                del self.tasks[key]
                if not is_terminal(task.state):
                    task.state = "TASK_KILLED"
                    self._count_terminal("TASK_KILLED")
                self.completed_tasks.append(task.to_json())
        for key in [k for k in self.executors if k[1] == framework_id]:
            self._release_executor(key)
        if fw.connected and fw.stream_id:
            self.outbox.append(Effect("close", framework_id, stream=fw.stream_id))
        self.removed_framework_ids.add(framework_id)
        self.completed_frameworks.append({"id": framework_id, "name": fw.info.get("name"),
                                          "unregistered_time": time.time()})
        self.wants_allocation = True

    # -- scheduler calls -----------------------------------------------------------------------
    def handle_call(self, call: object, stream_id: str | None, now: float) -> None:
        """Any call but SUBSCRIBE; raises CallError for a 4xx answer."""
        if not isinstance(call, dict):
            raise CallError(400, "Expecting a JSON object")
        kind = call.get("type")
        handler = getattr(self, f"_call_{kind.lower()}", None) if isinstance(kind, str) else None
        if handler is None:
            raise CallError(400, f"Failed to validate scheduler::Call: unknown type {kind!r}")
        fw_id = _id_value(call.get("framework_id"))
        if fw_id is None:
            raise CallError(400, "Expecting 'framework_id' to be present")
        fw = self.frameworks.get(fw_id)
        if fw is None:
            raise CallError(400, "Framework cannot be found")
        if not fw.connected:
            raise CallError(403, "Framework is not subscribed")
        if stream_id != fw.stream_id:
            raise CallError(400, "The stream ID included in this request didn't match the "
                                 "stream ID currently associated with framework ID " + fw_id)
        if kind == "ACCEPT":
            # As Mesos: a LAUNCH with tasks counts as launch_tasks, one without as a decline.
            for op in (call.get("accept") or {}).get("operations") or []:
                if isinstance(op, dict) and op.get("type") in ("LAUNCH", "LAUNCH_GROUP"):
                    infos = (op.get("launch") or {}).get("task_infos") \
                        if op["type"] == "LAUNCH" else [1]
                    self.counters["master/messages_launch_tasks" if infos
                                  else "master/messages_decline_offers"] += 1
        elif kind in CALL_METRICS:
            self.counters[CALL_METRICS[kind]] += 1
        handler(fw, call, now)

    def _call_teardown(self, fw: Framework, call: dict, now: float) -> None:
        self.remove_framework(fw.id, now)

    def _call_revive(self, fw: Framework, call: dict, now: float) -> None:
        fw.filters.clear()
        fw.suppressed = False
        self.wants_allocation = True

    def _call_suppress(self, fw: Framework, call: dict, now: float) -> None:
        fw.suppressed = True

    def _call_request(self, fw: Framework, call: dict, now: float) -> None:
        pass  # REQUEST is accepted and ignored, as by the Mesos allocator

    def _call_accept_inverse_offers(self, fw: Framework, call: dict, now: float) -> None:
        pass  # no maintenance schedules here, so never an inverse offer

    _call_decline_inverse_offers = _call_accept_inverse_offers

    def _call_reconcile_operations(self, fw: Framework, call: dict, now: float) -> None:
        pass  # no offer operations other than launches are supported

    def _refuse_seconds(self, section: dict) -> float:
        filters = section.get("filters")
        if isinstance(filters, dict) and "refuse_seconds" in filters:
            value = filters["refuse_seconds"]
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
            # Mesos falls back to the default for a negative (or unusable) value.
        return DEFAULT_REFUSE_SECONDS

    def _filter(self, fw: Framework, agent_id: str, refused: Resources, seconds: float,
                now: float) -> None:
        if seconds > 0 and not refused.empty():
            fw.filters[agent_id] = (refused, now + seconds)

    def _call_decline(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("decline")
        if not isinstance(section, dict) or not isinstance(section.get("offer_ids"), list):
            raise CallError(400, "Expecting 'decline.offer_ids' to be present")
        seconds = self._refuse_seconds(section)
        for raw in section["offer_ids"]:
            offer = self.offers.get(_id_value(raw) or "")
            if offer is None or offer.framework_id != fw.id:
                continue  # declining an unknown offer is harmless, as in Mesos
            self._drop_offer(offer)
            self._filter(fw, offer.agent_id, offer.resources, seconds, now)

    def _call_accept(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("accept")
        if not isinstance(section, dict) or not isinstance(section.get("offer_ids"), list):
            raise CallError(400, "Expecting 'accept.offer_ids' to be present")
        operations = section.get("operations") or []
        if not isinstance(operations, list):
            raise CallError(400, "'accept.operations' must be a list")
        launches = self._launch_groups(operations)
        offers: list[Offer] = []
        invalid = ""
        ids = [_id_value(raw) for raw in section["offer_ids"]]
        if not ids:
            invalid = "No offers given"
        for offer_id in ids:
            offer = self.offers.get(offer_id or "")
            if offer is None or offer.framework_id != fw.id:
                invalid = f"Offer {offer_id} is no longer valid"
            elif offers and offer.agent_id != offers[0].agent_id:
                invalid = "Offers of different agents cannot be accepted together"
            elif offer not in offers:
                offers.append(offer)
        for offer in offers:
            self._drop_offer(offer)
        if invalid:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for _executor, tasks in launches:
                for task in tasks:
                    tid = _id_value(task.get("task_id")) if isinstance(task, dict) else None
                    self._reject(fw, tid or "", state, "REASON_INVALID_OFFERS", invalid)
            return
        agent = self.agents[offers[0].agent_id]
        remaining = Resources()
        for offer in offers:
            remaining = remaining + offer.resources
        for executor, tasks in launches:
            remaining = self._launch(fw, agent, executor, tasks, remaining, now)
        self._filter(fw, agent.id, remaining, self._refuse_seconds(section), now)

    @staticmethod
    def _launch_groups(operations: list) -> list[tuple[dict | None, list]]:
        """Checked launch operations; raises CallError(400) as Mesos does for a body that
        does not convert to the Call protobuf (a required field missing)."""
        out = MasterCore._launch_operations(operations)
        for executor, tasks in out:
            missing = _missing_required_executor(executor) if executor is not None else ""
            for task in tasks:
                missing = missing or _missing_required_task(task)
            if missing:
                raise CallError(400, f"Failed to convert JSON into Call protobuf: {missing}")
        return out

    @staticmethod
    def _launch_operations(operations: list) -> list[tuple[dict | None, list]]:
        """(group executor or None, task infos) per LAUNCH / LAUNCH_GROUP operation."""
        out: list[tuple[dict | None, list]] = []
        for op in operations:
            if not isinstance(op, dict):
                raise CallError(400, "Each operation must be an object")
            kind = op.get("type")
            if kind == "LAUNCH":
                infos = (op.get("launch") or {}).get("task_infos")
                if not isinstance(infos, list):
                    raise CallError(400, "Expecting 'launch.task_infos' to be a list")
                out.extend((None, [t]) for t in infos)
            elif kind == "LAUNCH_GROUP":
                group = op.get("launch_group") or {}
                tasks = (group.get("task_group") or {}).get("tasks")
                if not isinstance(tasks, list) or not isinstance(group.get("executor"), dict):
                    raise CallError(400, "LAUNCH_GROUP needs 'executor' and 'task_group.tasks'")
                out.append((group["executor"], tasks))
            else:
                raise CallError(400, f"Operation type {kind!r} is not supported here")
        return out

    def _reject(self, fw: Framework, task_id: str, state: str, reason: str, message: str) -> None:
        self._count_terminal(state)
        self._update_event(fw.id, make_status(task_id, state, source="SOURCE_MASTER",
                                              reason=reason, message=message, with_uuid=False))

    def _validate_task(self, fw: Framework, agent: Agent, task: object,
                       group_executor: dict | None) -> tuple[str, Resources, dict | None]:
        """(error message or "", task resources, executor info) for one TaskInfo."""
        if not isinstance(task, dict):
            return "TaskInfo must be an object", Resources(), None
        tid = _id_value(task.get("task_id"))
        if tid is None:
            return "TaskInfo needs task_id.value", Resources(), None
        if (fw.id, tid) in self.tasks:
            return f"Task {tid} already exists", Resources(), None
        if _id_value(task.get("agent_id")) not in (agent.id, None) or "agent_id" not in task:
            return f"Task {tid} names an agent other than the offer's", Resources(), None
        executor = group_executor if group_executor is not None else task.get("executor")
        if group_executor is not None and task.get("executor"):
            return "A task of a task group must not have its own executor", Resources(), None
        has_command = isinstance(task.get("command"), dict)
        if group_executor is None and has_command == isinstance(executor, dict):
            return "TaskInfo needs exactly one of 'command' and 'executor'", Resources(), None
        if executor is not None and (not isinstance(executor, dict)
                                     or _id_value(executor.get("executor_id")) is None):
            return "ExecutorInfo needs executor_id.value", Resources(), None
        if has_command and not isinstance(task["command"].get("value", ""), str):
            return "CommandInfo.value must be a string", Resources(), None
        try:
            resources = Resources.from_json(task.get("resources", []))
        except ResourceError as exc:
            return f"Task {tid}: {exc}", Resources(), None
        if resources.empty():
            return f"Task {tid} uses no resources", Resources(), None
        return "", resources, executor

    def _launch(self, fw: Framework, agent: Agent, group_executor: dict | None, tasks: list,
                remaining: Resources, now: float) -> Resources:
        checked = [self._validate_task(fw, agent, t, group_executor) for t in tasks]
        ids = [_id_value(t.get("task_id")) if isinstance(t, dict) else None for t in tasks]
        error = next((e for e, _r, _x in checked if e), "")
        if not error and len(set(ids)) != len(ids):
            error = "Task ids in a group must differ"
        need = Resources()
        executor = checked[0][2] if checked else None
        new_executor: tuple[str, str, str] | None = None
        if not error and executor is not None:
            exec_id = executor["executor_id"]["value"]
            key = (agent.id, fw.id, exec_id)
            if key not in self.executors:
                try:
                    need = Resources.from_json(executor.get("resources", []))
                except ResourceError as exc:
                    error = f"Executor {exec_id}: {exc}"
                new_executor = key
        for _e, res, _x in checked:
            need = need + res
        if not error and not remaining.contains(need):
            error = "Task uses more resources than available in the accepted offers"
        if error:
            for tid in ids:
                self._reject(fw, tid or "", "TASK_ERROR", "REASON_TASK_INVALID", error)
            return remaining
        remaining = remaining - need
        agent.used = agent.used + need
        if new_executor is not None:
            self.executors[new_executor] = need - sum(
                (r for _e, r, _x in checked), Resources())
        launched = []
        for task_info, (_e, res, exe) in zip(tasks, checked, strict=True):
            exec_id = exe["executor_id"]["value"] if exe else None
            task = Task(fw.id, agent.id, task_info, res, exec_id)
            self.tasks[(fw.id, task.id)] = task
            launched.append(task_info)
        payload = {"framework_info": fw.info, "tasks": launched,
                   "executor": executor, "group": group_executor is not None}
        self._to_agent(agent.id, "/internal/launch", payload)
        return remaining

    def _call_kill(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("kill")
        tid = _id_value(section.get("task_id")) if isinstance(section, dict) else None
        if tid is None:
            raise CallError(400, "Expecting 'kill.task_id' to be present")
        task = self.tasks.get((fw.id, tid))
        if task is None:
            # Mesos answers a kill of an unknown task with an explicit reconciliation of it.
            wanted: dict = {"task_id": {"value": tid}}
            if _id_value(section.get("agent_id")):
                wanted["agent_id"] = section["agent_id"]
            self._call_reconcile(fw, {"reconcile": {"tasks": [wanted]}}, now)
            return
        if not is_terminal(task.state):
            self._to_agent(task.agent_id, "/internal/kill",
                           {"framework_id": fw.id, "task_id": tid, "kill": section})

    def _call_acknowledge(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("acknowledge")
        if not isinstance(section, dict):
            raise CallError(400, "Expecting 'acknowledge' to be present")
        tid = _id_value(section.get("task_id"))
        agent_id = _id_value(section.get("agent_id"))
        status_uuid = section.get("uuid")
        if tid is None or agent_id is None or not isinstance(status_uuid, str):
            raise CallError(400, "ACKNOWLEDGE needs agent_id, task_id and uuid")
        if not is_uuid_bytes(status_uuid):
            # Mesos parses the uuid (base64 of 16 bytes in JSON) and refuses the call if not.
            raise CallError(400, "Failed to validate scheduler::Call: 'acknowledge.uuid' is "
                                 "not a valid UUID")
        self._to_agent(agent_id, "/internal/ack",
                       {"framework_id": fw.id, "task_id": tid, "uuid": status_uuid})
        task = self.tasks.get((fw.id, tid))
        if task is not None and is_terminal(task.uuid_states.get(status_uuid, "")):
            # The terminal update is acknowledged: the task is complete (as in Mesos).
            del self.tasks[(fw.id, tid)]
            self.completed_tasks.append(task.to_json())

    def _call_reconcile(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("reconcile")
        if not isinstance(section, dict):
            # Implicit reconciliation is an empty 'reconcile.tasks', not a missing 'reconcile'.
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'reconcile' "
                                 "to be present")
        wanted = section.get("tasks") or []
        if not isinstance(wanted, list):
            raise CallError(400, "'reconcile.tasks' must be a list")
        if not wanted:  # implicit: every task the master knows
            for task in self.tasks.values():
                if task.framework_id == fw.id:
                    self._reconciled(fw, task)
            return
        recovering = (self.elected_at is not None
                      and now - self.elected_at < self.reregister_window)
        for item in wanted:
            tid = _id_value(item.get("task_id")) if isinstance(item, dict) else None
            if tid is None:
                raise CallError(400, "Each reconcile task needs task_id.value")
            task = self.tasks.get((fw.id, tid))
            if task is not None:
                self._reconciled(fw, task)
                continue
            agent_id = _id_value(item.get("agent_id"))
            if recovering and (agent_id is None or agent_id not in self.agents):
                continue  # its agent may still re-register: Mesos answers nothing for now
            if agent_id in self.removed_agents or (fw.id, tid) in self.lost_tasks:
                state = "TASK_UNREACHABLE" if fw.partition_aware else "TASK_LOST"
            else:
                state = "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST"
            self._update_event(fw.id, make_status(tid, state, agent_id=agent_id,
                                                  source="SOURCE_MASTER",
                                                  reason="REASON_RECONCILIATION",
                                                  with_uuid=False))

    def _reconciled(self, fw: Framework, task: Task) -> None:
        status = make_status(task.id, task.state, agent_id=task.agent_id,
                             executor_id=task.executor_id, source="SOURCE_MASTER",
                             reason="REASON_RECONCILIATION", with_uuid=False)
        if task.statuses and "data" in task.statuses[-1]:
            status["data"] = task.statuses[-1]["data"]
        self._update_event(fw.id, status)

    def _call_message(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("message")
        if not isinstance(section, dict):
            raise CallError(400, "Expecting 'message' to be present")
        agent_id = _id_value(section.get("agent_id"))
        exec_id = _id_value(section.get("executor_id"))
        if agent_id is None or exec_id is None or not isinstance(section.get("data"), str):
            raise CallError(400, "MESSAGE needs agent_id, executor_id and data")
        self.counters["master/valid_framework_to_executor_messages" if agent_id in self.agents
                      else "master/invalid_framework_to_executor_messages"] += 1
        if agent_id in self.agents:
            self._to_agent(agent_id, "/internal/message",
                           {"framework_id": fw.id, "executor_id": exec_id,
                            "data": section["data"]})

    def _call_shutdown(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("shutdown")
        if not isinstance(section, dict):
            raise CallError(400, "Expecting 'shutdown' to be present")
        agent_id = _id_value(section.get("agent_id"))
        exec_id = _id_value(section.get("executor_id"))
        if agent_id is None or exec_id is None:
            raise CallError(400, "SHUTDOWN needs agent_id and executor_id")
        self._to_agent(agent_id, "/internal/shutdown_executor",
                       {"framework_id": fw.id, "executor_id": exec_id})

    # -- agents ------------------------------------------------------------------------------
    def register_agent(self, msg: dict, now: float) -> dict:
        """An agent (re-)registers with its resources and what it still runs."""
        info = msg.get("agent_info") or {}
        agent_id = _id_value(info.get("id"))
        if agent_id is None or not isinstance(msg.get("url"), str):
            raise CallError(400, "registration needs agent_info.id and url")
        try:
            total = Resources.from_json(info.get("resources", []))
        except ResourceError as exc:
            raise CallError(400, f"agent resources: {exc}") from None
        if agent_id in self.agents:
            self._remove_agent_records(agent_id)
        self.removed_agents.pop(agent_id, None)
        agent = Agent(agent_id, info, msg["url"], total, last_seen=now, registered_at=now)
        self.agents[agent_id] = agent
        reregistering = bool(msg.get("tasks") or msg.get("executors"))
        self.counters["master/messages_reregister_slave" if reregistering
                      else "master/messages_register_slave"] += 1
        self.counters["master/slave_reregistrations" if reregistering
                      else "master/slave_registrations"] += 1
        kill_frameworks: set[str] = set()
        kill_tasks: list[dict] = []
        fw_infos = {_id_value(f.get("id")): f for f in msg.get("frameworks", [])
                    if isinstance(f, dict)}
        for fw_id, fw_info in fw_infos.items():
            if fw_id in self.removed_framework_ids:
                kill_frameworks.add(fw_id)
            elif fw_id and fw_id not in self.frameworks:
                # Learnt from the agent after a master failover: it has failover_timeout
                # seconds to re-subscribe before its tasks are killed.
                self.frameworks[fw_id] = Framework(fw_id, fw_info, disconnected_at=now,
                                                   registered_at=now)
        for exe in msg.get("executors", []):
            key = (agent_id, exe["framework_id"], exe["executor_id"])
            if exe["framework_id"] not in kill_frameworks:
                res = Resources.from_json(exe.get("resources", []))
                self.executors[key] = res
                agent.used = agent.used + res
        for item in msg.get("tasks", []):
            fw_id = item["framework_id"]
            key = (fw_id, item["info"]["task_id"]["value"])
            if fw_id in kill_frameworks:
                continue
            if key in self.lost_tasks and fw_id in self.frameworks \
                    and not self.frameworks[fw_id].partition_aware:
                kill_tasks.append({"framework_id": fw_id, "task_id": key[1]})
                continue
            self.lost_tasks.discard(key)
            self.unreachable_tasks.pop(key, None)
            task = Task(fw_id, agent_id, item["info"], Resources.from_json(
                item["info"].get("resources", [])), item.get("executor_id"),
                state=item["state"], statuses=item.get("statuses", []))
            self.tasks[key] = task
            if is_terminal(task.state):
                task.released = True
            else:
                agent.used = agent.used + task.resources
        self.wants_allocation = True
        return {"master_id": self.master_id, "ping_seconds": max(0.2, self.agent_timeout / 4),
                "kill_frameworks": sorted(kill_frameworks), "kill_tasks": kill_tasks}

    def _remove_agent_records(self, agent_id: str) -> None:
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._rescind(offer)
        for key in [k for k, t in self.tasks.items() if t.agent_id == agent_id]:
            del self.tasks[key]
        for key in [k for k in self.executors if k[0] == agent_id]:
            del self.executors[key]
        self.agents.pop(agent_id, None)

    def _rescind(self, offer: Offer) -> None:
        self._drop_offer(offer)
        self._event(offer.framework_id, {"type": "RESCIND",
                                         "rescind": {"offer_id": {"value": offer.id}}})

    def agent_ping(self, agent_id: str, now: float) -> bool:
        """An agent's heartbeat; False means "unknown here: register again"."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        agent.last_seen = now
        return True

    def agent_lost(self, agent_id: str, now: float) -> None:
        """The agent stopped answering: its tasks are lost / unreachable, its offers go."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._rescind(offer)
        for key, task in [(k, t) for k, t in self.tasks.items() if t.agent_id == agent_id]:
            del self.tasks[key]
            if is_terminal(task.state):
                continue
            fw = self.frameworks.get(task.framework_id)
            aware = fw is not None and fw.partition_aware
            state = "TASK_UNREACHABLE" if aware else "TASK_LOST"
            self.lost_tasks.add(key)
            task.state = state
            if aware:
                self.unreachable_tasks[key] = task  # may come back if the agent does
            else:
                self._count_terminal(state)
                self.completed_tasks.append(task.to_json())
            if fw is not None:
                # v1 names the reason REASON_AGENT_REMOVED (v0: REASON_SLAVE_REMOVED) for both
                # states, and the master stamps when it marked the agent unreachable.
                status = make_status(
                    task.id, state, agent_id=agent_id, executor_id=task.executor_id,
                    source="SOURCE_MASTER", reason="REASON_AGENT_REMOVED",
                    message="Agent stopped answering", with_uuid=False)
                status["unreachable_time"] = {"nanoseconds": int(status["timestamp"] * 1e9)}
                self._update_event(fw.id, status)
        for key in [k for k in self.executors if k[0] == agent_id]:
            del self.executors[key]
        del self.agents[agent_id]
        self.removed_agents[agent_id] = "unreachable"
        self.counters["master/slave_removals"] += 1
        self.counters["master/slave_removals/reason_unhealthy"] += 1
        for fw in self.frameworks.values():
            self._event(fw.id, {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})

    def agent_update(self, agent_id: str, framework_id: str, status: dict,
                     latest_state: str) -> bool:
        """A status update relayed by an agent; False when the agent must register again."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        tid = _id_value(status.get("task_id")) or ""
        task = self.tasks.get((framework_id, tid))
        self.counters["master/messages_status_update"] += 1
        self.counters["master/valid_status_updates"] += 1
        if task is not None:
            was_terminal = is_terminal(task.state)
            task.state = latest_state
            if not task.statuses or task.statuses[-1].get("uuid") != status.get("uuid"):
                task.statuses.append(status)
                del task.statuses[:-8]  # keep the recent history only
            if isinstance(status.get("uuid"), str):
                task.uuid_states[status["uuid"]] = status["state"]
            if is_terminal(latest_state) and not was_terminal:
                self._release_task(task)
                self._count_terminal(latest_state)
        self._update_event(framework_id, status)
        return True

    def _release_task(self, task: Task) -> None:
        if task.released:
            return
        task.released = True
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.used = agent.used - task.resources
        self.wants_allocation = True

    def _release_executor(self, key: tuple[str, str, str]) -> None:
        res = self.executors.pop(key, None)
        agent = self.agents.get(key[0])
        if res is not None and agent is not None:
            agent.used = agent.used - res
            self.wants_allocation = True

    def executor_exited(self, agent_id: str, framework_id: str, executor_id: str,
                        exit_status: int | None) -> None:
        """An executor process ended: free its resources and tell the framework."""
        key = (agent_id, framework_id, executor_id)
        self.counters["master/messages_exited_executor"] += 1
        if key not in self.executors:
            return
        self._release_executor(key)
        failure: dict = {"agent_id": {"value": agent_id},
                         "executor_id": {"value": executor_id}}
        if exit_status is not None:
            failure["status"] = exit_status
        self._event(framework_id, {"type": "FAILURE", "failure": failure})

    def executor_message(self, agent_id: str, framework_id: str, executor_id: str,
                         data: str) -> None:
        """An executor's MESSAGE call relayed by its agent."""
        self.counters["master/messages_executor_to_framework"] += 1
        self.counters["master/valid_executor_to_framework_messages"] += 1
        self._event(framework_id, {"type": "MESSAGE", "message": {
            "agent_id": {"value": agent_id}, "executor_id": {"value": executor_id},
            "data": data}})

    # -- time ----------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Expire agents and disconnected frameworks, then make offers."""
        for agent in list(self.agents.values()):
            if now - agent.last_seen > self.agent_timeout:
                self.agent_lost(agent.id, now)
        for fw in list(self.frameworks.values()):
            if (not fw.connected and fw.disconnected_at is not None
                    and now - fw.disconnected_at >= fw.failover_timeout):
                self.remove_framework(fw.id, now)
        self.allocate(now)

    def allocate(self, now: float) -> None:
        """Offer each agent's unoffered, unused resources to a framework that wants them."""
        self.wants_allocation = False
        wanting = [fw for fw in self.frameworks.values() if fw.connected and not fw.suppressed]
        if not wanting:
            return
        if len(wanting) > 1:
            # Fewest cpus in use first: a crude dominant-share order.
            used: Counter[str] = Counter()
            for task in self.tasks.values():
                if not task.released:
                    used[task.framework_id] += int(task.resources.get("cpus") * 1000)
            wanting.sort(key=lambda f: (used[f.id], f.registered_at))
        batches: dict[str, list[dict]] = {}
        for agent in sorted(self.agents.values(), key=lambda a: a.id):
            available = agent.available()
            if available.empty() or not available.scalars.get("cpus", 0) > 0.0005:
                continue
            for fw in wanting:
                refused = fw.filters.get(agent.id)
                if refused is not None:
                    if refused[1] > now and refused[0].contains(available):
                        continue
                    del fw.filters[agent.id]
                offer = Offer(self._next("O"), fw.id, agent.id, available)
                self.offers[offer.id] = offer
                agent.offered = agent.offered + available
                batches.setdefault(fw.id, []).append(self._offer_json(offer, agent))
                break
        for fw_id, offers in batches.items():
            self._event(fw_id, {"type": "OFFERS", "offers": {"offers": offers}})

    def _offer_json(self, offer: Offer, agent: Agent) -> dict:
        return {"id": {"value": offer.id}, "framework_id": {"value": offer.framework_id},
                "agent_id": {"value": agent.id}, "hostname": agent.info.get("hostname", ""),
                "url": {"scheme": "http", "address": {
                    "hostname": agent.info.get("hostname", ""), "ip": "127.0.0.1",
                    "port": agent.info.get("port", 0)}, "path": "/slave(1)"},
                "resources": offer.resources.to_json(),
                "attributes": agent.info.get("attributes", []),
                "allocation_info": {"role": "*"}}

    # -- reports -------------------------------------------------------------------------------
    def state_json(self, leader_info: dict | None) -> dict:
        """The /master/state document (a faithful subset of Mesos's fields)."""
        frameworks = []
        for fw in self.frameworks.values():
            tasks = [t.to_json() for t in self.tasks.values() if t.framework_id == fw.id]
            frameworks.append({
                "id": fw.id, "name": fw.info.get("name"), "user": fw.info.get("user"),
                "active": fw.connected, "connected": fw.connected,
                "failover_timeout": fw.failover_timeout,
                "capabilities": [c.get("type") for c in fw.info.get("capabilities", [])
                                 if isinstance(c, dict)],
                "tasks": tasks,
                "offers": [{"id": o.id, "agent_id": o.agent_id,
                            "resources": o.resources.summary()}
                           for o in self.offers.values() if o.framework_id == fw.id]})
        agents = [{"id": a.id, "hostname": a.info.get("hostname"),
                   "port": a.info.get("port"), "pid": f"slave(1)@{a.url[7:]}",
                   "active": True, "registered_time": a.registered_wall,
                   "resources": a.total.summary(), "used_resources": a.used.summary(),
                   "offered_resources": a.offered.summary(),
                   "unreserved_resources": a.total.summary(),
                   "attributes": {x["name"]: (x.get("text") or {}).get("value",
                                   (x.get("scalar") or {}).get("value"))
                                  for x in a.info.get("attributes", [])}}
                  for a in self.agents.values()]
        leader = None
        if leader_info:
            leader = leader_info.get("pid")
        return {"version": VERSION, "id": self.master_id, "pid": self.master_info.get("pid"),
                "hostname": self.master_info.get("hostname"), "leader": leader,
                "leader_info": leader_info, "elected_time": self.elected_wall,
                "start_time": self.started_wall,
                "activated_slaves": len(self.agents), "deactivated_slaves": 0,
                "unreachable_slaves": len(self.removed_agents),
                "frameworks": frameworks, "slaves": agents,
                "completed_frameworks": list(self.completed_frameworks),
                "completed_tasks": list(self.completed_tasks),
                "unreachable_tasks": [t.to_json() for t in self.unreachable_tasks.values()]}

    def metrics(self, now: float) -> dict[str, float]:
        """The /metrics/snapshot counters, named as Mesos names them."""
        # Mesos exports every counter from the start, at 0 until it moves.
        out: dict[str, float] = {name: 0.0 for name in ZERO_METRICS}
        out.update({k: float(v) for k, v in self.counters.items()})
        out["master/elected"] = 1.0 if self.is_elected() else 0.0
        out["master/uptime_secs"] = round(now - self.started, 3)
        conn = sum(1 for f in self.frameworks.values() if f.connected)
        out["master/frameworks_connected"] = float(conn)
        out["master/frameworks_disconnected"] = float(len(self.frameworks) - conn)
        # SUPPRESS only stops offers: Mesos still counts the framework active.
        out["master/frameworks_active"] = float(conn)
        out["master/frameworks_inactive"] = float(len(self.frameworks)) - out[
            "master/frameworks_active"]
        out["master/slaves_active"] = float(len(self.agents))
        out["master/slaves_connected"] = float(len(self.agents))
        out["master/slaves_disconnected"] = 0.0
        out["master/slaves_inactive"] = 0.0
        out["master/slaves_unreachable"] = float(len(self.removed_agents))
        out["master/outstanding_offers"] = float(len(self.offers))
        live: Counter[str] = Counter(t.state for t in self.tasks.values()
                                     if not is_terminal(t.state))
        for state in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING",
                      "TASK_UNREACHABLE"):
            out[f"master/tasks_{state[5:].lower()}"] = float(live[state])
        out["master/tasks_unreachable"] += float(len(self.unreachable_tasks))
        for state in TERMINAL_STATES:
            out.setdefault(f"master/tasks_{state[5:].lower()}", 0.0)
        for name in ("cpus", "mem", "disk", "gpus"):
            total = sum(a.total.get(name) for a in self.agents.values())
            used = sum(a.used.get(name) for a in self.agents.values())
            out[f"master/{name}_total"] = round(total, 3)
            out[f"master/{name}_used"] = round(used, 3)
            out[f"master/{name}_percent"] = round(used / total, 6) if total else 0.0
        return out
