"""The agent's v1 operator API calls for containers (``POST /api/v1`` on the agent):
LAUNCH_CONTAINER / LAUNCH_NESTED_CONTAINER, WAIT_CONTAINER / WAIT_NESTED_CONTAINER,
KILL_CONTAINER / KILL_NESTED_CONTAINER, REMOVE_CONTAINER / REMOVE_NESTED_CONTAINER and
GET_CONTAINERS, plus the ``/monitor/statistics`` document.

Answers follow Mesos's ``src/slave/http.cpp``: a launch is 200 (202 when the container
already exists), an unknown container 404, a bad call 400; WAIT blocks until the container
ends and answers its raw wait status and, if a limitation ended it, the reason.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

from actors.local.agent_core import command_argv, executor_env
from actors.local.containerizer.containers import Container, ContainerError

if TYPE_CHECKING:
    from actors.local.agent import Agent

Answer = tuple[int, object]  # (HTTP status, JSON document or error text)

OLD_NAMES = {"LAUNCH_NESTED_CONTAINER": "LAUNCH_CONTAINER",
             "WAIT_NESTED_CONTAINER": "WAIT_CONTAINER",
             "KILL_NESTED_CONTAINER": "KILL_CONTAINER",
             "REMOVE_NESTED_CONTAINER": "REMOVE_CONTAINER"}
CALLS = frozenset({"LAUNCH_CONTAINER", "WAIT_CONTAINER", "KILL_CONTAINER", "REMOVE_CONTAINER",
                   "GET_CONTAINERS", "GET_VERSION", "GET_HEALTH", *OLD_NAMES})
VERSION = "1.11.0"


def container_id_json(c: Container) -> dict:
    """A v1 ContainerID, with its parent chain."""
    doc: dict = {"value": c.container_id}
    if c.parent:
        doc["parent"] = {"value": c.parent}
    return doc


def _field(call: dict, kind: str) -> dict:
    """The call's body: ``launch_container`` for LAUNCH_CONTAINER, and so on."""
    body = call.get(kind.lower())
    return body if isinstance(body, dict) else {}


def handle(agent: Agent, call: dict) -> Answer:
    """One operator call for containers."""
    kind = call.get("type")
    if kind not in CALLS:
        return 400, f"Failed to validate agent::Call: unsupported call type {kind!r}"
    body = _field(call, kind)
    kind = OLD_NAMES.get(kind, kind)
    if kind == "GET_VERSION":
        return 200, {"type": "GET_VERSION", "get_version": {"version_info": {
            "version": VERSION}}}
    if kind == "GET_HEALTH":
        return 200, {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    if kind == "GET_CONTAINERS":
        return 200, get_containers(agent, bool(body.get("show_nested")))
    cid = body.get("container_id")
    if not isinstance(cid, dict) or not isinstance(cid.get("value"), str) or not cid["value"]:
        return 400, "Failed to validate agent::Call: Expecting 'container_id' to be present"
    if kind == "LAUNCH_CONTAINER":
        return launch(agent, body, cid)
    containers = agent.host.containers
    c = containers.containers.get(cid["value"])
    if c is None or c.agent_id != agent.agent_id:
        return 404, f"Container {cid['value']} cannot be found"
    if kind == "WAIT_CONTAINER":
        return wait(agent, c)
    if kind == "KILL_CONTAINER":
        sig = body.get("signal", signal.SIGKILL)
        if not isinstance(sig, int) or not 0 < sig < signal.NSIG:
            return 400, f"Invalid signal {sig!r}"
        containers.kill(c.container_id, sig)
        return 200, None
    if c.parent is None:
        return 400, "Only nested containers can be removed"
    if not c.ended.is_set():
        return 400, f"Container {c.container_id} is still running"
    containers.remove(c.container_id)
    return 200, None


def launch(agent: Agent, body: dict, cid: dict) -> Answer:
    """LAUNCH_CONTAINER of a nested container (its parent: an executor's container)."""
    parent_id = (cid.get("parent") or {}).get("value")
    if not isinstance(parent_id, str):
        return 400, "Only nested containers (with a parent ContainerID) can be launched here"
    containers = agent.host.containers
    existing = containers.containers.get(cid["value"])
    if existing is not None:
        return 202, None
    parent = containers.containers.get(parent_id)
    if parent is None or parent.agent_id != agent.agent_id:
        return 400, f"Parent container {parent_id} cannot be found"
    command = body.get("command") or {}
    argv, error = command_argv(command) if command.get("value") or command.get(
        "arguments") else ([], None)
    info = body.get("container") or {}
    if error is None and not argv and not ((info.get("mesos") or {}).get("image")):
        error = "Expecting 'command' (or an image with an entrypoint) to be present"
    if error is not None:
        return 400, error
    sandbox = parent.sandbox / "containers" / cid["value"]
    sandbox.mkdir(parents=True, exist_ok=True)
    with agent.lock:
        framework = agent.frameworks.get(parent.framework_id or "", {})
    env = dict(os.environ)
    env.update(executor_env(
        agent_id=agent.agent_id, agent_address=agent.address,
        framework_id=parent.framework_id or "", executor_id=parent.executor_id or "",
        sandbox=sandbox, checkpoint=bool(framework.get("checkpoint")), shutdown_grace=0,
        extra=(command.get("environment") or {}).get("variables")))
    for name in ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "MESOS_SLAVE_PID",
                 "MESOS_HTTP_COMMAND_EXECUTOR", "MESOS_RECOVERY_TIMEOUT",
                 "MESOS_SUBSCRIPTION_BACKOFF_MAX", "MESOS_CHECKPOINT"):
        env.pop(name, None)  # executor-only variables
    try:
        containers.launch(
            agent_id=agent.agent_id, container_id=cid["value"], sandbox=sandbox,
            argv=argv or ["/bin/sh"], env=env, resources=[body.get("resources")],
            command_executor=False, command=command, container_info=info, parent=parent_id,
            framework_id=parent.framework_id, executor_id=parent.executor_id,
            executor_name=parent.executor_name)
    except ContainerError as exc:
        return 400, str(exc)
    threading.Thread(target=containers.wait, args=(cid["value"],), daemon=True,
                     name=f"nested-{cid['value']}").start()
    return 200, None


def wait(agent: Agent, c: Container) -> Answer:
    """WAIT_CONTAINER: block until it ends (the HTTP thread waits; Mesos's is a future)."""
    c.ended.wait()
    term = c.termination
    assert term is not None
    doc: dict = {"exit_status": term.wait_status}
    if term.reason is not None:
        doc.update({"state": "TASK_FAILED", "reason": term.reason, "message": term.message})
    return 200, {"type": "WAIT_CONTAINER", "wait_container": doc}


def get_containers(agent: Agent, show_nested: bool) -> dict:
    """GET_CONTAINERS: the agent's live containers with their statistics."""
    containers = agent.host.containers
    out = []
    for c in containers.of_agent(agent.agent_id):
        if c.parent is not None and not show_nested:
            continue
        item: dict = {"container_id": container_id_json(c),
                      "container_status": {"container_id": container_id_json(c)},
                      "resource_statistics": containers.statistics(c)}
        if c.proc is not None:
            item["container_status"]["executor_pid"] = c.proc.pid
        if c.parent is None:
            item.update({"framework_id": {"value": c.framework_id},
                         "executor_id": {"value": c.executor_id}})
            if c.executor_name:
                item["executor_name"] = c.executor_name
        out.append(item)
    return {"type": "GET_CONTAINERS", "get_containers": {"containers": out}}


def monitor_statistics(agent: Agent) -> list[dict]:
    """The agent's ``/monitor/statistics``: one entry per executor container."""
    containers = agent.host.containers
    return [{"framework_id": c.framework_id, "executor_id": c.executor_id,
             "executor_name": c.executor_name or "", "source": c.executor_id,
             "container_id": c.container_id, "statistics": containers.statistics(c)}
            for c in containers.of_agent(agent.agent_id) if c.parent is None]
