"""Read-only renderings of an agent: the registration message the master rebuilds its view
from, and the agent's /state document. Functions over an :class:`~actors.local.agent.Agent`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.local.agent import Agent


def registration(agent: Agent) -> dict:
    """What the master needs to rebuild its view of this agent."""
    with agent.lock:
        tasks = []
        for (fw_id, tid), record in agent.tasks.items():
            state = agent.ledger.latest_state(tid) or record.state
            # Command tasks have no executor of their own in the master's view.
            exec_id = None if "command" in record.info else record.executor_id
            tasks.append({"framework_id": fw_id, "info": record.info, "state": state,
                          "executor_id": exec_id})
        executors = [{"framework_id": e.framework_id, "executor_id": e.executor_id,
                      "resources": (e.info or {}).get("resources", []), "info": e.info}
                     for e in agent.executors.values() if e.info is not None]
        frameworks = [agent.frameworks[f] for f in
                      {t["framework_id"] for t in tasks}
                      | {e["framework_id"] for e in executors}
                      if f in agent.frameworks]
        return {"agent_info": agent.info, "url": agent.url, "tasks": tasks,
                "executors": executors, "frameworks": frameworks}


def state_json(agent: Agent) -> dict:
    """The agent's /state document."""
    with agent.lock:
        frameworks: dict[str, dict] = {}
        for (fw_id, exec_id), exe in agent.executors.items():
            fw = frameworks.setdefault(fw_id, {
                "id": fw_id, "name": agent.frameworks.get(fw_id, {}).get("name"),
                "executors": []})
            fw["executors"].append({
                "id": exec_id, "container": exe.container_id,
                "directory": str(exe.sandbox),
                "tasks": [{"id": t, "state": agent.tasks[(fw_id, t)].state}
                          for t in sorted(exe.tasks) if (fw_id, t) in agent.tasks]})
        return {"id": agent.agent_id, "pid": f"slave(1)@{agent.address}",
                "hostname": agent.info["hostname"], "version": "1.11.0",
                "resources": agent.resources.summary(),
                "attributes": {a["name"]: (a.get("text") or a.get("scalar"))["value"]
                               for a in agent.info["attributes"]},
                "master_hostname": agent.registered_with,
                "frameworks": list(frameworks.values()),
                "unacknowledged_updates": len(agent.ledger)}
