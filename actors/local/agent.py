"""A Mesos agent: runs executors as real subprocesses and serves the v1 executor API.

Run: ``python -m actors.local.agent --zk zk://127.0.0.1:2181/mesos --port 5051
--attributes eos_account:alice``. Several agents can share one process (``--port 5051,5052``,
one ``--account`` each): each keeps its own id, port, resources and sandboxes, while the process
shares one ZooKeeper session and one maintenance thread, which keeps 100 agents cheap.

The agent talks to the leading master over the master's ``/internal/agent/*`` endpoints
(register, ping, update, executor_exited, message); the master calls the agent's
``/internal/*`` endpoints (launch, kill, ack, message, shutdown_executor, shutdown_framework).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from actors.local import recordio
from actors.local.agent_core import (
    DEFAULT_RESOURCES,
    command_argv,
    executor_env,
    exit_state,
    parse_attributes,
    sandbox_dir,
    shutdown_grace_seconds,
)
from actors.local.resources import Resources
from actors.local.tasks import UpdateLedger, is_terminal, is_uuid_bytes, make_status
from actors.local.web import Client, Handler, Server, pump_stream
from actors.local.zk import Detector, parse_zk_url

log = logging.getLogger("clusterjobs.mesos.agent")


@dataclass
class Executor:
    framework_id: str
    executor_id: str
    info: dict | None  # None for the built-in command executor
    container_id: str
    sandbox: Path
    proc: subprocess.Popen | None = None
    stream: queue.Queue | None = None
    queued: list[dict] = field(default_factory=list)  # events waiting for SUBSCRIBE
    tasks: set[str] = field(default_factory=set)  # non-terminal task ids
    killed: set[str] = field(default_factory=set)
    shutting_down: bool = False
    subscribed: bool = False  # it subscribed at least once


@dataclass
class TaskRecord:
    framework_id: str
    info: dict
    executor_id: str
    state: str = "TASK_STAGING"


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class Agent:
    """One agent: its state, its HTTP server, its executors."""

    def __init__(self, host: AgentProcess, index: int, port: int, attributes: list[dict],
                 resources: Resources, work_dir: Path) -> None:
        self.host = host
        self.index = index
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"
        self.agent_id = f"{uuid.uuid4()}-S{index}"
        self.work_dir = work_dir
        self.resources = resources
        self.info = {"id": {"value": self.agent_id}, "hostname": socket.gethostname(),
                     "port": port, "resources": resources.to_json(), "attributes": attributes}
        self.lock = threading.RLock()
        self.ledger = UpdateLedger(host.args.update_retry)
        self.frameworks: dict[str, dict] = {}
        self.executors: dict[tuple[str, str], Executor] = {}
        self.tasks: dict[tuple[str, str], TaskRecord] = {}
        self.registered_with: str | None = None
        self.next_ping = 0.0
        self.ping_seconds = 5.0
        self.server = Server(port, AgentHandler, self)

    # -- status updates ------------------------------------------------------------------------
    def update(self, framework_id: str, status: dict) -> None:
        """Record a status (with uuid) and queue it for reliable delivery."""
        with self.lock:
            if framework_id not in self.frameworks:
                return  # framework shut down: nobody to tell
            tid = status["task_id"]["value"]
            status.setdefault("agent_id", {"value": self.agent_id})
            record = self.tasks.get((framework_id, tid))
            if record is not None:
                record.state = status["state"]
                if is_terminal(status["state"]):
                    exe = self.executors.get((framework_id, record.executor_id))
                    if exe is not None:
                        exe.tasks.discard(tid)
            if self.ledger.add(framework_id, status, time.monotonic()):
                self.host.wakeup.set()

    def _status(self, framework_id: str, tid: str, state: str, executor_id: str,
                source: str = "SOURCE_EXECUTOR", reason: str | None = None,
                message: str | None = None) -> None:
        self.update(framework_id, make_status(tid, state, agent_id=self.agent_id,
                                              executor_id=executor_id, source=source,
                                              reason=reason, message=message))

    # -- launching -----------------------------------------------------------------------------
    def launch(self, msg: dict) -> None:
        """The master's LAUNCH / LAUNCH_GROUP for this agent."""
        fw_info = msg["framework_info"]
        fw_id = fw_info["id"]["value"]
        with self.lock:
            self.frameworks[fw_id] = fw_info
            executor_info = msg.get("executor")
            if executor_info is None:
                for task in msg["tasks"]:
                    self._launch_command(fw_id, task)
                return
            exec_id = executor_info["executor_id"]["value"]
            exe = self.executors.get((fw_id, exec_id))
            if exe is None or exe.shutting_down:
                exe = self._start_executor(fw_id, executor_info)
                if exe is None:
                    return
            for task in msg["tasks"]:
                tid = task["task_id"]["value"]
                self.tasks[(fw_id, tid)] = TaskRecord(fw_id, task, exec_id)
                exe.tasks.add(tid)
            if msg.get("group"):
                self._to_executor(exe, {"type": "LAUNCH_GROUP", "launch_group": {
                    "task_group": {"tasks": msg["tasks"]}}})
            else:
                for task in msg["tasks"]:
                    self._to_executor(exe, {"type": "LAUNCH", "launch": {"task": task}})

    def _new_sandbox(self, fw_id: str, exec_id: str) -> tuple[str, Path]:
        container_id = str(uuid.uuid4())
        sandbox = sandbox_dir(self.work_dir, self.agent_id, fw_id, exec_id, container_id)
        sandbox.mkdir(parents=True, exist_ok=True)
        return container_id, sandbox

    def _env(self, fw_id: str, exec_id: str, sandbox: Path, command: dict,
             executor_info: dict | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(executor_env(
            agent_id=self.agent_id, agent_address=self.address, framework_id=fw_id,
            executor_id=exec_id, sandbox=sandbox,
            checkpoint=bool(self.frameworks[fw_id].get("checkpoint")),
            shutdown_grace=shutdown_grace_seconds(executor_info,
                                                  self.host.args.executor_shutdown_grace),
            extra=(command.get("environment") or {}).get("variables")))
        return env

    def _spawn(self, argv: list[str], sandbox: Path, env: dict[str, str]) -> subprocess.Popen:
        with open(sandbox / "stdout", "ab") as out, open(sandbox / "stderr", "ab") as err:
            return subprocess.Popen(argv, cwd=sandbox, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)

    def _launch_command(self, fw_id: str, task: dict) -> None:
        """The built-in command executor: one subprocess per task, updates sent by us."""
        tid = task["task_id"]["value"]
        container_id, sandbox = self._new_sandbox(fw_id, tid)
        exe = Executor(fw_id, tid, None, container_id, sandbox, tasks={tid})
        self.executors[(fw_id, tid)] = exe
        self.tasks[(fw_id, tid)] = TaskRecord(fw_id, task, tid)
        self._status(fw_id, tid, "TASK_STARTING", tid)
        argv, error = command_argv(task["command"])
        if error is None:
            try:
                exe.proc = self._spawn(argv, sandbox, self._env(fw_id, tid, sandbox,
                                                                task["command"]))
            except OSError as exc:
                error = f"Failed to launch the command: {exc.strerror}"
        if error is not None:
            self._status(fw_id, tid, "TASK_FAILED", tid, message=error,
                         reason="REASON_COMMAND_EXECUTOR_FAILED")
            del self.executors[(fw_id, tid)]
            return
        self._status(fw_id, tid, "TASK_RUNNING", tid)
        threading.Thread(target=self._wait_command, args=(exe,), daemon=True,
                         name=f"task-{tid}").start()

    def _wait_command(self, exe: Executor) -> None:
        assert exe.proc is not None
        code = exe.proc.wait()
        tid = exe.executor_id
        with self.lock:
            self.executors.pop((exe.framework_id, tid), None)
            state, message = exit_state(code, tid in exe.killed)
            if exe.shutting_down:
                return  # the framework was removed: no one to report to
            # The Mesos command executor sets no reason on the terminal update.
            self._status(exe.framework_id, tid, state, tid, message=message)

    def _start_executor(self, fw_id: str, info: dict) -> Executor | None:
        exec_id = info["executor_id"]["value"]
        container_id, sandbox = self._new_sandbox(fw_id, exec_id)
        info = {**info, "framework_id": {"value": fw_id}}
        exe = Executor(fw_id, exec_id, info, container_id, sandbox)
        command = info.get("command") or {}
        argv, error = command_argv(command)
        if error is None:
            try:
                exe.proc = self._spawn(argv, sandbox, self._env(fw_id, exec_id, sandbox,
                                                                command, info))
            except OSError as exc:
                error = f"Failed to launch the executor: {exc.strerror}"
        if error is not None:
            log.warning("executor failed to start", extra={"executor": exec_id,
                                                            "error": error})
            return None
        self.executors[(fw_id, exec_id)] = exe
        threading.Thread(target=self._wait_executor, args=(exe,), daemon=True,
                         name=f"executor-{exec_id}").start()
        log.info("executor started", extra={"executor": exec_id, "pid": exe.proc.pid,
                                            "sandbox": str(sandbox)})
        timer = threading.Timer(self.host.args.executor_registration_timeout,
                                self._registration_expired, args=(exe,))
        timer.daemon = True
        timer.start()
        return exe

    def _registration_expired(self, exe: Executor) -> None:
        """An executor that never subscribed is killed; its tasks then fail (as in Mesos)."""
        with self.lock:
            if exe.subscribed or exe.proc is None or exe.proc.poll() is not None:
                return
        log.warning("executor did not subscribe in time; killing it",
                    extra={"executor": exe.executor_id})
        _kill_group(exe.proc, signal.SIGKILL)

    def _wait_executor(self, exe: Executor) -> None:
        assert exe.proc is not None
        code = exe.proc.wait()
        with self.lock:
            if self.executors.get((exe.framework_id, exe.executor_id)) is exe:
                del self.executors[(exe.framework_id, exe.executor_id)]
            if exe.stream is not None:
                exe.stream.put(None)
            for tid in sorted(exe.tasks):
                if tid in exe.killed:
                    self._status(exe.framework_id, tid, "TASK_KILLED", exe.executor_id,
                                 source="SOURCE_AGENT", reason="REASON_EXECUTOR_TERMINATED")
                else:
                    self._status(exe.framework_id, tid, "TASK_FAILED", exe.executor_id,
                                 source="SOURCE_AGENT", reason="REASON_EXECUTOR_TERMINATED",
                                 message=f"Executor exited with code {code}")
            exe.tasks.clear()
        log.info("executor exited", extra={"executor": exe.executor_id, "code": code})
        self.host.send(self, "/internal/agent/executor_exited", {
            "agent_id": self.agent_id, "framework_id": exe.framework_id,
            "executor_id": exe.executor_id, "status": code})

    def _to_executor(self, exe: Executor, event: dict) -> None:
        if exe.stream is not None:
            exe.stream.put(recordio.encode_json(event))
        else:
            exe.queued.append(event)

    # -- master requests -----------------------------------------------------------------------
    def kill(self, fw_id: str, tid: str) -> None:
        """KILL from the scheduler."""
        with self.lock:
            record = self.tasks.get((fw_id, tid))
            if record is None or is_terminal(record.state):
                return
            exe = self.executors.get((fw_id, record.executor_id))
            if exe is None:
                return
            exe.killed.add(tid)
            if exe.info is None:
                if exe.proc is not None:
                    _kill_group(exe.proc, signal.SIGTERM)
                    self._escalate(exe.proc)
            elif exe.stream is None and any(
                    (e.get("launch") or {}).get("task", {}).get("task_id", {}).get("value")
                    == tid for e in exe.queued):
                exe.queued = [e for e in exe.queued if (e.get("launch") or {}).get(
                    "task", {}).get("task_id", {}).get("value") != tid]
                self._status(fw_id, tid, "TASK_KILLED", exe.executor_id,
                              source="SOURCE_AGENT")
            else:
                self._to_executor(exe, {"type": "KILL", "kill": {"task_id": {"value": tid}}})

    def _escalate(self, proc: subprocess.Popen, executor_info: dict | None = None) -> None:
        grace = shutdown_grace_seconds(executor_info, self.host.args.executor_shutdown_grace)

        def later() -> None:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)

        threading.Thread(target=later, daemon=True).start()

    def acknowledge(self, fw_id: str, tid: str, status_uuid: str) -> None:
        """The scheduler acknowledged an update: release the next one."""
        with self.lock:
            acked, more = self.ledger.acknowledge(tid, status_uuid)
            if acked is None:
                return
            if more:
                self.host.wakeup.set()
            record = self.tasks.get((fw_id, tid))
            exe = self.executors.get((fw_id, record.executor_id)) if record else None
            if (exe is not None and exe.info is not None
                    and acked.get("source") == "SOURCE_EXECUTOR"):
                self._to_executor(exe, {"type": "ACKNOWLEDGED", "acknowledged": {
                    "task_id": {"value": tid}, "uuid": status_uuid}})
            if is_terminal(acked["state"]) and self.ledger.unacknowledged(tid) == 0:
                self.tasks.pop((fw_id, tid), None)

    def message(self, fw_id: str, exec_id: str, data: str) -> None:
        """A framework message for an executor."""
        with self.lock:
            exe = self.executors.get((fw_id, exec_id))
            if exe is not None and exe.info is not None:
                self._to_executor(exe, {"type": "MESSAGE", "message": {"data": data}})

    def shutdown_executor(self, fw_id: str, exec_id: str) -> None:
        """SHUTDOWN an executor: ask it, then kill it after the grace period."""
        with self.lock:
            exe = self.executors.get((fw_id, exec_id))
            if exe is None:
                return
            exe.shutting_down = True
            exe.killed |= exe.tasks
            if exe.info is not None:
                self._to_executor(exe, {"type": "SHUTDOWN"})
            if exe.proc is not None:
                if exe.info is None:
                    _kill_group(exe.proc, signal.SIGTERM)
                self._escalate(exe.proc, exe.info)

    def shutdown_framework(self, fw_id: str) -> None:
        """The framework was removed: stop its executors and forget its updates."""
        with self.lock:
            for (f, exec_id) in list(self.executors):
                if f == fw_id:
                    self.shutdown_executor(f, exec_id)
            self.ledger.drop_framework(fw_id)
            for key in [k for k in self.tasks if k[0] == fw_id]:
                del self.tasks[key]
            self.frameworks.pop(fw_id, None)

    def kill_lost_task(self, fw_id: str, tid: str) -> None:
        """A task the master already reported lost: stop it without telling anyone."""
        with self.lock:
            # Its queued updates may still go out; the master ignores tasks it reported lost.
            record = self.tasks.pop((fw_id, tid), None)
            if record is None:
                return
            exe = self.executors.get((fw_id, record.executor_id))
            if exe is not None and exe.info is None:
                exe.shutting_down = True
                if exe.proc is not None:
                    _kill_group(exe.proc, signal.SIGKILL)
            elif exe is not None:
                self._to_executor(exe, {"type": "KILL", "kill": {"task_id": {"value": tid}}})

    # -- registration --------------------------------------------------------------------------
    def registration(self) -> dict:
        """What the master needs to rebuild its view of this agent."""
        with self.lock:
            tasks = []
            for (fw_id, tid), record in self.tasks.items():
                state = self.ledger.latest_state(tid) or record.state
                # Command tasks have no executor of their own in the master's view.
                exec_id = None if "command" in record.info else record.executor_id
                tasks.append({"framework_id": fw_id, "info": record.info, "state": state,
                              "executor_id": exec_id})
            executors = [{"framework_id": e.framework_id, "executor_id": e.executor_id,
                          "resources": (e.info or {}).get("resources", [])}
                         for e in self.executors.values() if e.info is not None]
            frameworks = [self.frameworks[f] for f in
                          {t["framework_id"] for t in tasks}
                          | {e["framework_id"] for e in executors}
                          if f in self.frameworks]
            return {"agent_info": self.info, "url": self.url, "tasks": tasks,
                    "executors": executors, "frameworks": frameworks}

    def registered(self, leader: str, answer: dict) -> None:
        """Apply the master's answer to (re-)registration."""
        for fw_id in answer.get("kill_frameworks", []):
            self.shutdown_framework(fw_id)
        for item in answer.get("kill_tasks", []):
            self.kill_lost_task(item["framework_id"], item["task_id"])
        with self.lock:
            self.registered_with = leader
            self.ping_seconds = float(answer.get("ping_seconds", 5.0))
            self.next_ping = time.monotonic() + self.ping_seconds
            self.ledger.resend_all(time.monotonic())

    def state_json(self) -> dict:
        """The agent's /state document."""
        with self.lock:
            frameworks: dict[str, dict] = {}
            for (fw_id, exec_id), exe in self.executors.items():
                fw = frameworks.setdefault(fw_id, {
                    "id": fw_id, "name": self.frameworks.get(fw_id, {}).get("name"),
                    "executors": []})
                fw["executors"].append({
                    "id": exec_id, "container": exe.container_id,
                    "directory": str(exe.sandbox),
                    "tasks": [{"id": t, "state": self.tasks[(fw_id, t)].state}
                              for t in sorted(exe.tasks) if (fw_id, t) in self.tasks]})
            return {"id": self.agent_id, "pid": f"slave(1)@{self.address}",
                    "hostname": self.info["hostname"], "version": "1.11.0",
                    "resources": self.resources.summary(),
                    "attributes": {a["name"]: (a.get("text") or a.get("scalar"))["value"]
                                   for a in self.info["attributes"]},
                    "master_hostname": self.registered_with,
                    "frameworks": list(frameworks.values()),
                    "unacknowledged_updates": len(self.ledger)}

    def stop_all(self) -> None:
        """Kill every executor and command (the agent is going away)."""
        with self.lock:
            for exe in self.executors.values():
                exe.shutting_down = True
                if exe.proc is not None:
                    _kill_group(exe.proc, signal.SIGKILL)


class AgentHandler(Handler):
    """The agent's HTTP endpoints: executor API, /state, internal master calls."""

    @property
    def agent(self) -> Agent:
        return self.server.app  # type: ignore[return-value]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self.answer(200)
        elif path in ("/state", "/slave(1)/state", "/state.json"):
            self.answer_json(200, self.agent.state_json())
        elif path == "/version":
            self.answer_json(200, {"version": "1.11.0"})
        elif path == "/api/v1/executor":
            self.answer(405, b"", headers={"Allow": "POST"})
        else:
            self.answer_text(404, f"no such endpoint {path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        media_error = self.api_media_error() if path == "/api/v1/executor" else None
        if media_error is not None:
            self.read_body()
            self.answer_text(*media_error)
            return
        try:
            msg = self.read_json()
        except ValueError as exc:
            self.answer_text(400, str(exc))
            return
        if not isinstance(msg, dict):
            self.answer_text(400, "Expecting a JSON object")
            return
        agent = self.agent
        if path == "/api/v1/executor":
            self._executor_call(msg)
            return
        messages = msg.get("messages") if path == "/internal/batch" else [
            {"path": path, "payload": msg}]
        if not isinstance(messages, list):
            self.answer_text(400, "expecting 'messages' to be a list")
            return
        for item in messages:
            if not self._internal(agent, item.get("path"), item.get("payload") or {}):
                return
        self.answer(202)

    def _internal(self, agent: Agent, path: object, msg: dict) -> bool:
        """One master request; False when an error answer was already sent."""
        try:
            if path == "/internal/launch":
                agent.launch(msg)
            elif path == "/internal/kill":
                agent.kill(msg["framework_id"], msg["task_id"])
            elif path == "/internal/ack":
                agent.acknowledge(msg["framework_id"], msg["task_id"], msg["uuid"])
            elif path == "/internal/message":
                agent.message(msg["framework_id"], msg["executor_id"], msg["data"])
            elif path == "/internal/shutdown_executor":
                agent.shutdown_executor(msg["framework_id"], msg["executor_id"])
            elif path == "/internal/shutdown_framework":
                agent.shutdown_framework(msg["framework_id"])
            else:
                self.answer_text(404, f"no such endpoint {path}")
                return False
        except (KeyError, TypeError) as exc:
            self.answer_text(400, f"malformed request: missing {exc}")
            return False
        return True

    def _executor_call(self, call: dict) -> None:
        agent = self.agent
        kind = call.get("type")
        fw_id = (call.get("framework_id") or {}).get("value")
        exec_id = (call.get("executor_id") or {}).get("value")
        if not isinstance(fw_id, str) or not isinstance(exec_id, str):
            self.answer_text(400, "Expecting 'framework_id' and 'executor_id' to be present")
            return
        if kind == "HEARTBEAT":
            self.answer(202)  # Mesos 1.x accepts executor heartbeats before any lookup
            return
        if kind == "UPDATE":
            error = update_call_error(call, exec_id, fw_id)
            if error:
                self.answer_text(400, f"Failed to validate executor::Call: {error}")
                return
        if kind == "SUBSCRIBE" and not self.accepts_json():
            self.answer_text(406, "Expecting 'Accept' to allow 'application/x-protobuf' or "
                                  "'application/json'")
            return
        with agent.lock:
            exe = agent.executors.get((fw_id, exec_id))
        if exe is None or exe.info is None:
            self.answer_text(400, "Executor cannot be found")
            return
        if kind != "SUBSCRIBE" and not exe.subscribed:
            self.answer_text(403, "Executor is not subscribed")
            return
        if kind == "SUBSCRIBE":
            self._executor_subscribe(exe)
        elif kind == "UPDATE":
            status = call["update"]["status"]
            status["executor_id"] = {"value": exec_id}
            status["agent_id"] = {"value": agent.agent_id}
            agent.update(fw_id, status)
            self.answer(202)
        elif kind == "MESSAGE":
            data = (call.get("message") or {}).get("data")
            if not isinstance(data, str):
                self.answer_text(400, "MESSAGE needs message.data")
                return
            agent.host.send(agent, "/internal/agent/message", {
                "agent_id": agent.agent_id, "framework_id": fw_id, "executor_id": exec_id,
                "data": data})
            self.answer(202)
        else:
            self.answer_text(400, f"Failed to validate executor::Call: unknown type {kind!r}")

    def _executor_subscribe(self, exe: Executor) -> None:
        agent = self.agent
        events: queue.Queue = queue.Queue()
        with agent.lock:
            if exe.stream is not None:
                exe.stream.put(None)  # a re-subscription replaces the old stream
            exe.stream = events
            exe.subscribed = True
            events.put(recordio.encode_json({"type": "SUBSCRIBED", "subscribed": {
                "executor_info": exe.info,
                "framework_info": agent.frameworks.get(exe.framework_id, {}),
                "agent_info": agent.info,
                "container_id": {"value": exe.container_id}}}))
            for event in exe.queued:
                events.put(recordio.encode_json(event))
            exe.queued.clear()
        try:
            self.start_stream({})
            pump_stream(self, events, None, 30.0)
        except OSError:
            pass
        finally:
            self.close_connection = True
            with agent.lock:
                if exe.stream is events:
                    exe.stream = None


def update_call_error(call: dict, exec_id: str, fw_id: str) -> str:
    """Why an executor's UPDATE call is invalid ("" when valid), as the Mesos agent checks it."""
    status = (call.get("update") or {}).get("status") if isinstance(
        call.get("update"), dict) else None
    if not isinstance(status, dict):
        return "Expecting 'update' to be present"
    tid = (status.get("task_id") or {}).get("value") if isinstance(
        status.get("task_id"), dict) else None
    if not isinstance(tid, str) or status.get("state") not in _STATES:
        return "Expecting 'update.status' with a task_id and a known state"
    if "uuid" not in status:
        return "Expecting 'uuid' to be present"
    if not is_uuid_bytes(status["uuid"]):
        return "'uuid' is not a valid UUID"
    given = status.get("executor_id")
    if given is not None and (given or {}).get("value") != exec_id:
        return f"ExecutorID in Call: {exec_id} does not match ExecutorID in TaskStatus"
    # An absent source is SOURCE_MASTER (the enum's first value) to the agent.
    if status.get("source") != "SOURCE_EXECUTOR":
        return (f"Received Call from executor {exec_id} of framework {fw_id} with invalid "
                "source, expecting 'SOURCE_EXECUTOR'")
    if status["state"] == "TASK_STAGING":
        return (f"Received TASK_STAGING from executor {exec_id} of framework {fw_id} which "
                "is not allowed")
    return ""


_STATES = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED",
           "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
           "TASK_GONE", "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN")


class AgentProcess:
    """One OS process hosting one or more agents, one ZooKeeper detector, one sender loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wakeup = threading.Event()
        self.leader: str | None = None
        self.client: Client | None = None
        self.outbox: queue.Queue = queue.Queue()
        ports = [int(p) for p in str(args.port).split(",") if p.strip()]
        accounts = [a for a in args.account.split(",") if a] if args.account else []
        if accounts and len(accounts) != len(ports):
            raise SystemExit(f"--account names {len(accounts)} accounts for "
                             f"{len(ports)} ports")
        resources = Resources.parse_flag(args.resources)
        self.agents: list[Agent] = []
        for index, port in enumerate(ports):
            attrs = parse_attributes(args.attributes)
            if accounts:
                attrs = [a for a in attrs if a["name"] != "eos_account"]
                attrs.append({"name": "eos_account", "type": "TEXT",
                              "text": {"value": accounts[index]}})
            self.agents.append(Agent(self, args.index_base + index, port, attrs, resources,
                                     Path(args.work_dir) / f"agent-{port}"))
        hosts, path = parse_zk_url(args.zk)
        self.detector = Detector(hosts, path, self._on_leader)

    def _on_leader(self, info: dict | None) -> None:
        address = None
        if info:
            address = f"{info['address']['ip']}:{info['address']['port']}"
        log.info("leading master", extra={"master": address})
        self.leader = address
        self.wakeup.set()

    def send(self, agent: Agent, path: str, payload: dict) -> None:
        """Best-effort message to the master (executor exits, framework messages)."""
        self.outbox.put((path, payload))
        self.wakeup.set()

    def _post(self, path: str, payload: dict) -> tuple[int, bytes]:
        leader = self.leader
        if leader is None:
            return 503, b""
        if self.client is None or f"{self.client.host}:{self.client.port}" != leader:
            self.client = Client(leader, timeout=5.0)
        try:
            status, body, _h = self.client.post(path, payload)
        except OSError:
            return 599, b""
        return status, body

    def loop(self) -> None:
        """Register, ping, and (re)send due status updates for every agent."""
        while True:
            self.wakeup.wait(0.25)
            self.wakeup.clear()
            leader = self.leader
            if leader is None:
                continue
            now = time.monotonic()
            for agent in self.agents:
                self._maintain(agent, leader, now)
            while True:
                try:
                    path, payload = self.outbox.get_nowait()
                except queue.Empty:
                    break
                self._post(path, payload)

    def _maintain(self, agent: Agent, leader: str, now: float) -> None:
        if agent.registered_with != leader:
            status, body = self._post("/internal/agent/register", agent.registration())
            if status == 200:
                agent.registered(leader, json.loads(body))
                log.info("registered", extra={"agent_id": agent.agent_id, "master": leader})
            return
        if now >= agent.next_ping:
            agent.next_ping = now + agent.ping_seconds
            status, _b = self._post("/internal/agent/ping", {"agent_id": agent.agent_id})
            if status in (404, 307):
                agent.registered_with = None
                return
        with agent.lock:
            due = agent.ledger.due(now)
        if due:
            # One POST carries every due update of this agent (cheap under bursts).
            code, _b = self._post("/internal/agent/updates", {
                "agent_id": agent.agent_id,
                "updates": [{"framework_id": f, "status": st, "latest_state": latest}
                            for f, st, latest in due]})
            if code in (404, 307):
                agent.registered_with = None

    def serve(self) -> None:
        """Start servers, detector and loop; blocks until SIGTERM."""
        for agent in self.agents:
            threading.Thread(target=agent.server.serve_forever, kwargs={"poll_interval": 5.0},
                             daemon=True, name=f"agent-{agent.port}").start()
        self.detector.start()
        done = threading.Event()

        def stop(_sig: int, _frame: object) -> None:
            done.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        threading.Thread(target=self.loop, daemon=True, name="agent-loop").start()
        log.info("agents serving", extra={"ports": ",".join(str(a.port) for a in self.agents)})
        done.wait()
        for agent in self.agents:
            agent.stop_all()
        self.detector.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The agent's flags."""
    parser = argparse.ArgumentParser(prog="python -m actors.local.agent")
    parser.add_argument("--zk", required=True, help="zk://host:port/path")
    parser.add_argument("--port", required=True,
                        help="port, or comma-separated ports for several agents in one process")
    parser.add_argument("--resources", default=DEFAULT_RESOURCES)
    parser.add_argument("--attributes", default="", help="name:value;name:value")
    parser.add_argument("--account", default="",
                        help="eos_account attribute, one per port (comma-separated)")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--update-retry", type=float, default=10.0,
                        help="seconds before an unacknowledged status update is resent")
    parser.add_argument("--executor-shutdown-grace", type=float, default=5.0)
    parser.add_argument("--executor-registration-timeout", type=float, default=60.0,
                        help="seconds an executor has to SUBSCRIBE (Mesos: 1 min)")
    parser.add_argument("--index-base", type=int, default=0)
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from actors import logfmt

    args = parse_args(argv)
    logfmt.configure(args.log_level)
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    try:
        AgentProcess(args).serve()
    except (OSError, ValueError) as exc:
        print(f"mesos agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
