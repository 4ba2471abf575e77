"""The tables the master keeps, and the bookkeeping steps its calls share.

:class:`MasterState` holds frameworks, agents, offers, tasks and executors, plus the outbox
of :class:`~actors.local.master_model.Effect` values; the scheduler calls
(:mod:`actors.local.master_scheduler`), agent messages (:mod:`actors.local.master_agents`)
and allocation (:mod:`actors.local.master_core`) build on it. No I/O here.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque

from actors.local.master_model import (
    COMPLETED_KEEP,
    Agent,
    CallError,
    Effect,
    Framework,
    Offer,
    Task,
)
from actors.local.resources import Resources
from actors.local.tasks import is_terminal

REGISTRY_MAX_UNREACHABLE = 5000  # unreachable agents the registry remembers


class MasterState:
    """Every table of the master and the helpers that keep them consistent."""

    def __init__(self, master_id: str, master_info: dict, *, heartbeat_seconds: float = 15.0,
                 agent_timeout: float = 75.0, agent_reregister_timeout: float = 600.0,
                 allocation_interval: float = 1.0, now: float = 0.0) -> None:
        self.master_id = master_id
        self.master_info = master_info
        self.heartbeat_seconds = heartbeat_seconds
        self.agent_timeout = agent_timeout
        # How long agents recovered from the registry have to re-register after an election
        # before they are marked unreachable (Mesos --agent_reregister_timeout, 10 min).
        self.agent_reregister_timeout = agent_reregister_timeout
        self.allocation_interval = allocation_interval  # floor of a filter's lifetime
        self.elected_at: float | None = None
        self.elected_wall: float | None = None
        self.started_wall = time.time()
        self.started = now
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[dict] = deque(maxlen=COMPLETED_KEEP)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        # The registry (Mesos keeps it in its replicated log; the edge stores it in
        # ZooKeeper): admitted agents, and unreachable ones with when they became so.
        self.recovered: dict[str, dict] = {}  # from the registry, not re-registered yet
        self.unreachable_agents: dict[str, int] = {}  # agent id -> Unix time, nanoseconds
        self.offers: dict[str, Offer] = {}
        self.tasks: dict[tuple[str, str], Task] = {}  # (framework id, task id)
        self.unreachable_tasks: dict[tuple[str, str], Task] = {}  # partition-aware ones
        self.completed_tasks: deque[dict] = deque(maxlen=COMPLETED_KEEP)
        self.executors: dict[tuple[str, str, str], Resources] = {}  # (agent, fw, exec)
        self.executor_infos: dict[tuple[str, str, str], dict] = {}  # same keys: ExecutorInfo
        # (agent id) -> {(framework id, task id)} KILLed there: resent if the agent comes back
        # still running them (Slave::killedTasks in the Mesos master).
        self.killed_tasks: dict[str, set[tuple[str, str]]] = {}
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

    def elect(self, now: float, registry: dict | None = None) -> None:
        """This master became the leader. ``registry`` is the last one stored (see
        :meth:`registry_json`): its agents are recovered, awaiting re-registration for
        ``agent_reregister_timeout`` seconds, as Mesos's Master::_recover() does."""
        self.elected_at = now
        self.elected_wall = time.time()  # /master/state gives Unix seconds, as Mesos does
        registry = registry or {}
        for info in registry.get("agents") or []:
            agent_id = (info.get("id") or {}).get("value") if isinstance(info, dict) else None
            if isinstance(agent_id, str) and agent_id not in self.agents:
                self.recovered[agent_id] = info
        for agent_id, when in (registry.get("unreachable") or {}).items():
            if isinstance(when, int) and agent_id not in self.agents:
                self.unreachable_agents[agent_id] = when

    # -- the registry --------------------------------------------------------------------------
    def registry_json(self) -> dict:
        """What survives a failover: admitted agents (registered or still recovered) and
        unreachable agents with the time they were marked so."""
        agents = [a.info for a in self.agents.values()] + list(self.recovered.values())
        return {"agents": agents, "unreachable": dict(self.unreachable_agents)}

    def _store_registry(self) -> None:
        # Registry GC by count, as Mesos's --registry_max_agent_count does (oldest first);
        # the cap keeps the document well inside a ZooKeeper znode's 1 MB.
        excess = len(self.unreachable_agents) - REGISTRY_MAX_UNREACHABLE
        if excess > 0:
            for agent_id in sorted(self.unreachable_agents,
                                   key=self.unreachable_agents.__getitem__)[:excess]:
                del self.unreachable_agents[agent_id]
        self.outbox.append(Effect("registry", "", self.registry_json()))

    def _expire_recovered(self, now: float) -> None:
        """Recovered agents that did not re-register in time become unreachable (Mesos's
        recoveredSlavesTimeout() marks them unreachable)."""
        if not self.recovered or self.elected_at is None \
                or now - self.elected_at < self.agent_reregister_timeout:
            return
        stamp = time.time_ns()
        for agent_id in self.recovered:
            self.unreachable_agents[agent_id] = stamp
            self.counters["master/slave_removals"] += 1
        self.recovered.clear()
        self._store_registry()

    def _framework_updated(self, fw: Framework) -> None:
        """Master::sendFrameworkUpdates(): every agent gets the framework's current info (and
        resends its pending status updates at once)."""
        for agent_id in self.agents:
            self._to_agent(agent_id, "/internal/update_framework",
                           {"framework_id": fw.id, "framework_info": fw.info})

    @staticmethod
    def _suppression(fw: Framework, suppressed_roles: object) -> bool:
        """Whether ``suppressed_roles`` (SUBSCRIBE / UPDATE_FRAMEWORK) suppress every role of
        the framework; 400 for roles it does not have (validateSuppressedRoles)."""
        if suppressed_roles is None:
            return False
        if not isinstance(suppressed_roles, list) or not all(
                isinstance(r, str) for r in suppressed_roles):
            raise CallError(400, "'suppressed_roles' must be a list of strings")
        roles = fw.roles
        stray = sorted(set(suppressed_roles) - set(roles))
        if stray:
            raise CallError(400, f"Suppressed roles {{ {', '.join(stray)} }} are not "
                                 "contained in the set of roles")
        return bool(roles) and set(roles) <= set(suppressed_roles)

    # -- offers and releases -------------------------------------------------------------------
    def _recover_offers(self, framework_id: str) -> None:
        for offer in [o for o in self.offers.values() if o.framework_id == framework_id]:
            self._drop_offer(offer)

    def _drop_offer(self, offer: Offer) -> None:
        self.offers.pop(offer.id, None)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offered = agent.offered - offer.resources
        self.wants_allocation = True

    def _rescind(self, offer: Offer) -> None:
        self._drop_offer(offer)
        self._event(offer.framework_id, {"type": "RESCIND",
                                         "rescind": {"offer_id": {"value": offer.id}}})

    def _release_task(self, task: Task) -> None:
        if task.released:
            return
        task.released = True
        self.killed_tasks.get(task.agent_id, set()).discard((task.framework_id, task.id))
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.used = agent.used - task.resources
        self.wants_allocation = True

    def _release_executor(self, key: tuple[str, str, str]) -> None:
        self.executor_infos.pop(key, None)
        res = self.executors.pop(key, None)
        agent = self.agents.get(key[0])
        if res is not None and agent is not None:
            agent.used = agent.used - res
            self.wants_allocation = True

    # -- frameworks ----------------------------------------------------------------------------
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
