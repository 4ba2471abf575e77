"""What agents tell the master: (re-)registration, pings, status updates, executor exits and
executor messages, and the removal of an agent that stopped answering.

:class:`AgentMessages` keeps the master's tables in step with its agents. No I/O here.
"""

from __future__ import annotations

import time

from actors.local.master_model import Agent, CallError, Framework, Task
from actors.local.master_state import MasterState
from actors.local.resources import ResourceError, Resources
from actors.local.tasks import is_terminal, make_status
from actors.local.validation import id_value


class AgentMessages(MasterState):
    """The master's side of the agent protocol (part of MasterCore)."""

    # -- agents ------------------------------------------------------------------------------
    def register_agent(self, msg: dict, now: float) -> dict:
        """An agent (re-)registers with its resources and what it still runs."""
        info = msg.get("agent_info") or {}
        agent_id = id_value(info.get("id"))
        if agent_id is None or not isinstance(msg.get("url"), str):
            raise CallError(400, "registration needs agent_info.id and url")
        try:
            total = Resources.from_json(info.get("resources", []))
        except ResourceError as exc:
            raise CallError(400, f"agent resources: {exc}") from None
        known = agent_id in self.agents
        recovered = self.recovered.pop(agent_id, None) is not None
        was_unreachable = self.unreachable_agents.pop(agent_id, None) is not None
        if known:
            self._remove_agent_records(agent_id)
        agent = Agent(agent_id, info, msg["url"], total, last_seen=now, registered_at=now)
        self.agents[agent_id] = agent
        reregistering = bool(msg.get("tasks") or msg.get("executors"))
        self.counters["master/messages_reregister_slave" if reregistering
                      else "master/messages_register_slave"] += 1
        self.counters["master/slave_reregistrations" if reregistering
                      else "master/slave_registrations"] += 1
        kill_frameworks: set[str] = set()
        fw_infos = {id_value(f.get("id")): f for f in msg.get("frameworks", [])
                    if isinstance(f, dict)}
        for fw_id, fw_info in fw_infos.items():
            if fw_id in self.removed_framework_ids:
                kill_frameworks.add(fw_id)
            elif fw_id and fw_id not in self.frameworks:
                # Learnt from the agent after a master failover (Master::recoverFramework):
                # no failover timer runs until it subscribes and then disconnects.
                self.frameworks[fw_id] = Framework(fw_id, fw_info, registered_at=now)
        for exe in msg.get("executors", []):
            key = (agent_id, exe["framework_id"], exe["executor_id"])
            if exe["framework_id"] not in kill_frameworks:
                res = Resources.from_json(exe.get("resources", []))
                self.executors[key] = res
                if isinstance(exe.get("info"), dict):
                    self.executor_infos[key] = exe["info"]
                agent.used = agent.used + res
        # An agent that was neither registered nor recovered from the registry (unreachable,
        # or unknown) gets all its tasks back, each announced to its framework with its
        # latest state (Master::__reregisterSlave, MESOS-6406/7215/8337); nothing is killed.
        announce = not known and not recovered
        message = ("Unreachable agent re-reregistered" if was_unreachable
                   else "Unknown agent reregistered")
        for item in msg.get("tasks", []):
            fw_id = item["framework_id"]
            key = (fw_id, item["info"]["task_id"]["value"])
            if fw_id in kill_frameworks:
                continue
            self.unreachable_tasks.pop(key, None)
            task = Task(fw_id, agent_id, item["info"], Resources.from_json(
                item["info"].get("resources", [])), item.get("executor_id"),
                state=item["state"], statuses=item.get("statuses", []))
            self.tasks[key] = task
            if is_terminal(task.state):
                task.released = True
            else:
                agent.used = agent.used + task.resources
            if announce:
                self._forget_completed(key)
                self._update_event(fw_id, make_status(
                    key[1], task.state, agent_id=agent_id, executor_id=task.executor_id,
                    source="SOURCE_MASTER", reason="REASON_AGENT_REREGISTERED",
                    message=message, with_uuid=False))
        # KILLs the agent may have missed go again (reconcileKnownSlave).
        killed = self.killed_tasks.pop(agent_id, set())
        for key in sorted(killed):
            task = self.tasks.get(key)
            if task is not None and task.agent_id == agent_id and not is_terminal(task.state):
                self.killed_tasks.setdefault(agent_id, set()).add(key)
                self._to_agent(agent_id, "/internal/kill",
                               {"framework_id": key[0], "task_id": key[1], "kill": {}})
        if not known:
            self._store_registry()
        self.wants_allocation = True
        return {"master_id": self.master_id, "ping_seconds": max(0.2, self.agent_timeout / 4),
                "kill_frameworks": sorted(kill_frameworks)}

    def _forget_completed(self, key: tuple[str, str]) -> None:
        """A task reported lost came back: it is no longer a completed one (MESOS-9940)."""
        kept = [t for t in self.completed_tasks
                if (t.get("framework_id"), t.get("id")) != key]
        if len(kept) != len(self.completed_tasks):
            self.completed_tasks.clear()
            self.completed_tasks.extend(kept)

    def _remove_agent_records(self, agent_id: str) -> None:
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._rescind(offer)
        for key in [k for k, t in self.tasks.items() if t.agent_id == agent_id]:
            del self.tasks[key]
        for key in [k for k in self.executors if k[0] == agent_id]:
            del self.executors[key]
            self.executor_infos.pop(key, None)
        self.agents.pop(agent_id, None)

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
        unreachable_ns = time.time_ns()
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._rescind(offer)
        for key, task in [(k, t) for k, t in self.tasks.items() if t.agent_id == agent_id]:
            del self.tasks[key]
            if is_terminal(task.state):
                continue
            fw = self.frameworks.get(task.framework_id)
            aware = fw is not None and fw.partition_aware
            state = "TASK_UNREACHABLE" if aware else "TASK_LOST"
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
                status["unreachable_time"] = {"nanoseconds": unreachable_ns}
                self._update_event(fw.id, status)
        for key in [k for k in self.executors if k[0] == agent_id]:
            del self.executors[key]
            self.executor_infos.pop(key, None)
        del self.agents[agent_id]
        self.unreachable_agents[agent_id] = unreachable_ns
        self._store_registry()
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
        tid = id_value(status.get("task_id")) or ""
        task = self.tasks.get((framework_id, tid))
        self.counters["master/messages_status_update"] += 1
        self.counters["master/valid_status_updates"] += 1
        if task is not None:
            was_terminal = is_terminal(task.state)
            task.state = latest_state
            if not task.statuses or task.statuses[-1].get("uuid") != status.get("uuid"):
                task.statuses.append(status)
                del task.statuses[:-8]  # keep the recent history only
            task.status_update_state = status.get("state")
            if isinstance(status.get("uuid"), str):
                task.uuid_states[status["uuid"]] = status["state"]
            if is_terminal(latest_state) and not was_terminal:
                self._release_task(task)
                self._count_terminal(latest_state)
        self._update_event(framework_id, status)
        return True

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
