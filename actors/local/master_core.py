"""The master's bookkeeping, without I/O: frameworks, agents, offers, tasks, and the calls.

Every method takes ``now`` (seconds, monotonic) and appends what must happen outside to
``self.outbox`` as :class:`Effect` values: an event for a framework's stream, a message for an
agent, or the closing of a stream. The HTTP edge (actors/local/master.py) calls these under one
lock and carries out the effects after releasing it.

The parts: :mod:`~actors.local.master_model` (records, effects, errors),
:mod:`~actors.local.master_state` (the tables and shared steps),
:mod:`~actors.local.master_scheduler` (scheduler calls), :mod:`~actors.local.master_agents`
(agent messages), :mod:`~actors.local.master_views` (/master/state, metrics) and
:mod:`~actors.local.validation` (request checks). This module adds framework subscription
and the allocator, and assembles :class:`MasterCore`.
"""

from __future__ import annotations

from collections import Counter

from actors.local import master_views
from actors.local.master_agents import AgentMessages
from actors.local.master_model import CallError, Effect, Framework, Offer, SubscribeRefused
from actors.local.master_scheduler import SchedulerCalls
from actors.local.resources import Resources
from actors.local.validation import MIN_CPUS, MIN_MEM, id_value


def allocatable(resources: Resources) -> bool:
    """The allocator's default --min_allocatable_resources, ``cpus:0.01|mem:32``: worth
    offering if either is reached (so memory-only offers exist)."""
    return (resources.scalars.get("cpus", 0.0) >= MIN_CPUS
            or resources.scalars.get("mem", 0.0) >= MIN_MEM)


class MasterCore(SchedulerCalls, AgentMessages):
    """All master state; not thread-safe (the edge holds a lock around every call)."""

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
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise CallError(400, "FrameworkInfo.failover_timeout must be a number")
        call_id = id_value(call.get("framework_id"))
        info_id = id_value(info.get("id"))
        if call_id != info_id:  # both present and equal, or both absent (validation.cpp)
            raise CallError(400, "'framework_id' differs from 'subscribe.framework_info.id'")
        fw_id = call_id
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
            # sendFrameworkUpdates(): agents learn the new info and resend pending updates.
            self._framework_updated(fw)
        else:
            fw_id = fw_id or self._next("F")
            fw = Framework(fw_id, {**info, "id": {"value": fw_id}}, registered_at=now)
            self.frameworks[fw_id] = fw
            self.counters["master/messages_register_framework"] += 1
        fw.stream_id = stream_id
        fw.connected = True
        fw.disconnected_at = None
        fw.suppressed = self._suppression(fw, sub.get("suppressed_roles"))
        self._event(fw_id, {"type": "SUBSCRIBED", "subscribed": {
            "framework_id": {"value": fw_id},
            "heartbeat_interval_seconds": self.heartbeat_seconds,
            "master_info": self.master_info}})
        # The heartbeater starts with a HEARTBEAT right after SUBSCRIBED (no delay).
        self._event(fw_id, {"type": "HEARTBEAT"})
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
        fw.filters.clear()  # the allocator's deactivateFramework() drops its filters
        self._recover_offers(framework_id)

    # -- time ----------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Expire agents, recovered agents and disconnected frameworks, then make offers."""
        self._expire_recovered(now)
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
            if not allocatable(available):
                continue
            for fw in wanting:
                if self._filtered(fw, agent.id, available, now):
                    continue
                offer = Offer(self._next("O"), fw.id, agent.id, available)
                self.offers[offer.id] = offer
                agent.offered = agent.offered + available
                executors = sorted(e for (a, f, e) in self.executors
                                   if a == agent.id and f == fw.id)
                batches.setdefault(fw.id, []).append(master_views.offer_json(
                    offer, agent, executors, fw.multi_role))
                break
        for fw_id, offers in batches.items():
            self._event(fw_id, {"type": "OFFERS", "offers": {"offers": offers}})

    @staticmethod
    def _filtered(fw: Framework, agent_id: str, resources: Resources, now: float) -> bool:
        """The allocator's isFiltered(): some unexpired filter of ``fw`` for the agent refused
        a superset of ``resources``. Expired filters go; the others stay until they expire."""
        filters = [f for f in fw.filters.get(agent_id, []) if f[1] > now]
        if filters:
            fw.filters[agent_id] = filters
        else:
            fw.filters.pop(agent_id, None)
        return any(refused.contains(resources) for refused, _until in filters)

    # -- reports -------------------------------------------------------------------------------
    def state_json(self, leader_info: dict | None) -> dict:
        """The /master/state document (a faithful subset of Mesos's fields)."""
        return master_views.state_json(self, leader_info)

    def metrics(self, now: float) -> dict[str, float]:
        """The /metrics/snapshot counters, named as Mesos names them."""
        return master_views.metrics(self, now)
