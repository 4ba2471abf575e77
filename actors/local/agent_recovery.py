"""Agent checkpointing and recovery, as Mesos's agent does with ``--recover=reconnect``.

What the agent knows about checkpointing frameworks (``FrameworkInfo.checkpoint``) is written
to ``<agent work dir>/meta/state.json`` whenever it changes (before an update or an
acknowledgement is passed on), and each of their containers leaves a ``container.json`` and,
when it ends, its wait status (see :mod:`actors.local.containerizer`). An agent restarted with
the same work folder keeps its id, takes back the still-running containers, re-registers with
the master with their tasks and unacknowledged updates, and lets their executors re-subscribe
(``MESOS_RECOVERY_TIMEOUT``); the ledger's memory of acknowledged updates is checkpointed
too, so an update a re-subscribing executor sends again is recognised as a duplicate.
Containers of frameworks without checkpoint are destroyed, as in Mesos.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from actors.local.agent_model import Executor, TaskRecord
from actors.local.tasks import is_terminal

if TYPE_CHECKING:
    from actors.local.agent import Agent

log = logging.getLogger("clusterjobs.mesos.agent")


def state_path(work_dir: Path) -> Path:
    return work_dir / "meta" / "state.json"


def load(work_dir: Path) -> dict | None:
    """The checkpointed state of the agent that used ``work_dir`` (None: start afresh)."""
    try:
        state = json.loads(state_path(work_dir).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("agent_id"), str) else None


def checkpointing(agent: Agent, framework_id: str) -> bool:
    return bool((agent.frameworks.get(framework_id) or {}).get("checkpoint"))


def snapshot(agent: Agent) -> dict:
    """The checkpointing frameworks' part of the agent's state (caller holds agent.lock)."""
    keep = {f for f in agent.frameworks if checkpointing(agent, f)}
    return {
        "agent_id": agent.agent_id,
        "frameworks": {f: agent.frameworks[f] for f in sorted(keep)},
        "tasks": [{"framework_id": f, "info": r.info, "executor_id": r.executor_id,
                   "state": r.state} for (f, _t), r in agent.tasks.items() if f in keep],
        "executors": [{"framework_id": e.framework_id, "executor_id": e.executor_id,
                       "info": e.info, "container_id": e.container_id,
                       "sandbox": str(e.sandbox), "tasks": sorted(e.tasks),
                       "killed": sorted(e.killed)}
                      for e in agent.executors.values() if e.framework_id in keep],
        "updates": agent.ledger.export(
            keep, {t for (f, t) in agent.tasks if f in keep}),
    }


def checkpoint(agent: Agent, framework_id: str | None = None) -> None:
    """Write the state when it concerns a checkpointing framework (or any, when None)."""
    if framework_id is not None and not checkpointing(agent, framework_id):
        return
    path = state_path(agent.work_dir)
    with agent.lock:  # written under the lock: an older snapshot never replaces a newer one
        doc = snapshot(agent)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(doc))
        os.replace(partial, path)


def recover(agent: Agent, state: dict | None) -> None:
    """Rebuild the agent from ``state`` and take back its containers (before serving)."""
    if not state:
        return
    with agent.lock:
        agent.frameworks.update(state.get("frameworks") or {})
        for item in state.get("tasks") or []:
            record = TaskRecord(item["framework_id"], item["info"], item["executor_id"],
                                item["state"])
            agent.tasks[(item["framework_id"], item["info"]["task_id"]["value"])] = record
        agent.ledger.restore(state.get("updates") or {})
        for item in state.get("executors") or []:
            _recover_executor(agent, item)
    log.info("agent recovered", extra={"agent_id": agent.agent_id,
                                       "executors": len(agent.executors),
                                       "tasks": len(agent.tasks)})
    checkpoint(agent)


def _recover_executor(agent: Agent, item: dict) -> None:
    fw_id, exec_id = item["framework_id"], item["executor_id"]
    container = agent.host.containers.adopt(item["container_id"])
    live = {t for t in item["tasks"]
            if (fw_id, t) in agent.tasks and not is_terminal(agent.tasks[(fw_id, t)].state)}
    if container is None:
        # Nothing left of it: its tasks end as after an executor exit.
        for tid in sorted(live):
            agent._status(fw_id, tid, "TASK_FAILED", exec_id, source="SOURCE_AGENT",
                          reason="REASON_EXECUTOR_TERMINATED", message="Executor terminated")
        return
    exe = Executor(fw_id, exec_id, item["info"], item["container_id"], Path(item["sandbox"]),
                   proc=container.proc, tasks=live, killed=set(item["killed"]))
    agent.executors[(fw_id, exec_id)] = exe
    if exe.info is None:
        # The agent is this task's command executor: it is running if its process is.
        tid = exec_id
        if (container.proc is not None and container.proc.poll() is None
                and agent.ledger.latest_state(tid) in (None, "TASK_STAGING", "TASK_STARTING")
                and (fw_id, tid) in agent.tasks
                and agent.tasks[(fw_id, tid)].state in ("TASK_STAGING", "TASK_STARTING")):
            agent._status(fw_id, tid, "TASK_RUNNING", tid)
        target = agent._wait_command
    else:
        target = agent._wait_executor
    threading.Thread(target=target, args=(exe,), daemon=True,
                     name=f"recovered-{exec_id}").start()
