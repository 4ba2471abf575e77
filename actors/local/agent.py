"""A Mesos agent: runs executors as real subprocesses and serves the v1 executor API.

Run: ``python -m actors.local.agent_main --zk zk://127.0.0.1:2181/mesos --port 5051
--attributes eos_account:alice``. Several agents can share one process (``--port 5051,5052``,
one ``--account`` each): each keeps its own id, port, resources and sandboxes, while the process
shares one ZooKeeper session and one maintenance thread, which keeps 100 agents cheap.

The agent talks to the leading master over the master's ``/internal/agent/*`` endpoints
(register, ping, update, executor_exited, message); the master calls the agent's
``/internal/*`` endpoints (launch, kill, ack, message, shutdown_executor, shutdown_framework).

This module is one agent (:class:`Agent`: tasks, executors, status updates). Its records are
in :mod:`~actors.local.agent_model`, its HTTP endpoints in :mod:`~actors.local.agent_http`,
its /state and registration documents in :mod:`~actors.local.agent_views`, and the process
that hosts agents (ZooKeeper, the loop towards the master, the flags) in
:mod:`~actors.local.agent_main`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from actors.local import agent_recovery, recordio
from actors.local.agent_core import (
    command_argv,
    default_executor_argv,
    executor_env,
    exit_state,
    has_capability,
    mesos_duration,
    sandbox_dir,
    shutdown_grace_seconds,
    wait_status,
)
from actors.local.agent_http import AgentHandler
from actors.local.agent_model import Executor, TaskRecord
from actors.local.containerizer.containers import ContainerError
from actors.local.resources import Resources
from actors.local.tasks import UpdateLedger, is_terminal, make_status
from actors.local.validation import update_call_error as update_call_error  # re-exported
from actors.local.web import Server

if TYPE_CHECKING:
    from actors.local.agent_main import AgentProcess

log = logging.getLogger("clusterjobs.mesos.agent")


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is not None:
        return  # ended (and reaped): its pid may already be another process's
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _event_tasks(event: dict) -> list[dict]:
    """The TaskInfos a LAUNCH or LAUNCH_GROUP executor event carries."""
    if event.get("type") == "LAUNCH":
        return [(event.get("launch") or {}).get("task") or {}]
    if event.get("type") == "LAUNCH_GROUP":
        return list(((event.get("launch_group") or {}).get("task_group") or {}).get("tasks")
                    or [])
    return []


class Agent:
    """One agent: its state, its HTTP server, its executors."""

    def __init__(self, host: AgentProcess, index: int, port: int, attributes: list[dict],
                 resources: Resources, work_dir: Path) -> None:
        self.host = host
        self.index = index
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"
        # A restarted agent keeps its id and state (issue 10: agent recovery).
        self.saved_state = (agent_recovery.load(work_dir)
                            if getattr(host.args, "recover", "reconnect") == "reconnect"
                            else None)
        self.agent_id = (self.saved_state["agent_id"] if self.saved_state
                         else f"{uuid.uuid4()}-S{index}")
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
                    if exe is not None and tid in exe.tasks:
                        exe.tasks.discard(tid)
                        self._resize(exe)
            if self.ledger.add(framework_id, status, time.monotonic()):
                self.host.wakeup.set()
            agent_recovery.checkpoint(self, framework_id)

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
                if isinstance(exe, str):  # issue 12: a launch failure fails its tasks
                    self._launch_failed(fw_id, exec_id, msg["tasks"], exe)
                    return
            for task in msg["tasks"]:
                tid = task["task_id"]["value"]
                self.tasks[(fw_id, tid)] = TaskRecord(fw_id, task, exec_id)
                exe.tasks.add(tid)
            self._resize(exe)
            agent_recovery.checkpoint(self, fw_id)
            if msg.get("group"):
                self._to_executor(exe, {"type": "LAUNCH_GROUP", "launch_group": {
                    "task_group": {"tasks": msg["tasks"]}}})
            else:
                for task in msg["tasks"]:
                    self._to_executor(exe, {"type": "LAUNCH", "launch": {"task": task}})

    def _launch_failed(self, fw_id: str, exec_id: str, tasks: list[dict], error: str) -> None:
        """Slave::executorLaunched() on failure: each task TASK_FAILED with
        REASON_CONTAINER_LAUNCH_FAILED, and the master hears the executor ended."""
        for task in tasks:
            tid = task["task_id"]["value"]
            self.tasks[(fw_id, tid)] = TaskRecord(fw_id, task, exec_id)
            self._status(fw_id, tid, "TASK_FAILED", exec_id, source="SOURCE_AGENT",
                         reason="REASON_CONTAINER_LAUNCH_FAILED",
                         message=f"Failed to launch container: {error}")
        self.host.send(self, "/internal/agent/executor_exited", {
            "agent_id": self.agent_id, "framework_id": fw_id, "executor_id": exec_id,
            "status": None})

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

    def _spawn(self, exe: Executor, argv: list[str], env: dict[str, str], command: dict,
               container: dict | None) -> subprocess.Popen:
        """Start the executor's container (see actors.local.containerizer)."""
        c = self.host.containers.launch(
            agent_id=self.agent_id, container_id=exe.container_id, sandbox=exe.sandbox,
            argv=argv, env=env, resources=self._container_resources(exe),
            command_executor=exe.info is None, command=command, container_info=container,
            framework_id=exe.framework_id, executor_id=exe.executor_id,
            executor_name=(exe.info or {}).get("name"),
            recoverable=agent_recovery.checkpointing(self, exe.framework_id))
        assert c.proc is not None
        return c.proc

    def _container_resources(self, exe: Executor) -> list[list[dict] | None]:
        """A container holds its executor's resources plus its live tasks' (as in Mesos)."""
        tasks = [self.tasks[(exe.framework_id, t)].info.get("resources")
                 for t in sorted(exe.tasks) if (exe.framework_id, t) in self.tasks]
        return [(exe.info or {}).get("resources"), *tasks]

    def _resize(self, exe: Executor) -> None:
        self.host.containers.update(exe.container_id, self._container_resources(exe),
                                    command_executor=exe.info is None)

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
                exe.proc = self._spawn(exe, argv, self._env(fw_id, tid, sandbox,
                                                            task["command"]),
                                       task["command"], task.get("container"))
            except OSError as exc:
                error = f"Failed to launch the command: {exc.strerror}"
            except ContainerError as exc:
                # Mesos: the executor's container failed to launch (e.g. a missing image).
                self._status(fw_id, tid, "TASK_FAILED", tid, source="SOURCE_AGENT",
                             reason="REASON_CONTAINER_LAUNCH_FAILED", message=str(exc))
                del self.executors[(fw_id, tid)]
                return
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
        ended = self.host.containers.wait(exe.container_id)
        code = ended.returncode
        tid = exe.executor_id
        with self.lock:
            self.host.containers.forget(exe.container_id)
            self.executors.pop((exe.framework_id, tid), None)
            state, message = exit_state(code, tid in exe.killed)
            if exe.shutting_down:
                return  # the framework was removed: no one to report to
            if ended.reason is not None:
                # A limitation destroyed the container: the agent reports it (slave.cpp).
                self._status(exe.framework_id, tid, "TASK_FAILED", tid, source="SOURCE_AGENT",
                             reason=ended.reason, message=ended.message)
                return
            # The Mesos command executor sets no reason on the terminal update.
            self._status(exe.framework_id, tid, state, tid, message=message)

    def _start_executor(self, fw_id: str, info: dict) -> Executor | str:
        """The started executor, or why it could not start."""
        exec_id = info["executor_id"]["value"]
        container_id, sandbox = self._new_sandbox(fw_id, exec_id)
        info = {**info, "framework_id": {"value": fw_id}}
        exe = Executor(fw_id, exec_id, info, container_id, sandbox)
        command = info.get("command") or {}
        if info.get("type") == "DEFAULT":  # issue 12: Mesos's default executor
            argv, error = default_executor_argv(), None
        else:
            argv, error = command_argv(command)
        if error is None:
            try:
                exe.proc = self._spawn(exe, argv, self._env(fw_id, exec_id, sandbox,
                                                            command, info),
                                       command, info.get("container"))
            except OSError as exc:
                error = f"Failed to launch the executor: {exc.strerror}"
            except ContainerError as exc:  # _launch_failed() adds Mesos's prefix
                error = str(exc).removeprefix("Failed to launch container: ")
        if error is not None:
            log.warning("executor failed to start", extra={"executor": exec_id,
                                                            "error": error})
            return error
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
        exe.termination = ("REASON_EXECUTOR_REGISTRATION_TIMEOUT", "Executor did not register "
                           f"within {mesos_duration(self.host.args.executor_registration_timeout)}")
        _kill_group(exe.proc, signal.SIGKILL)

    def _wait_executor(self, exe: Executor) -> None:
        assert exe.proc is not None
        ended = self.host.containers.wait(exe.container_id)
        code = ended.returncode
        with self.lock:
            self.host.containers.forget(exe.container_id)
            if self.executors.get((exe.framework_id, exe.executor_id)) is exe:
                del self.executors[(exe.framework_id, exe.executor_id)]
            if exe.stream is not None:
                exe.stream.put(None)
            # Slave::sendExecutorTerminatedStatusUpdate(): tasks without a terminal update of
            # their own fail, killed or not (issue 12).
            reason, message = exe.termination or ("REASON_EXECUTOR_TERMINATED",
                                                  "Executor terminated")
            if ended.reason is not None:  # a limitation destroyed the container (issue 10)
                reason, message = ended.reason, ended.message or ""
            for tid in sorted(exe.tasks):
                self._status(exe.framework_id, tid, "TASK_FAILED", exe.executor_id,
                             source="SOURCE_AGENT", reason=reason, message=message)
            exe.tasks.clear()
            agent_recovery.checkpoint(self, exe.framework_id)
        log.info("executor exited", extra={"executor": exe.executor_id, "code": code})
        self.host.send(self, "/internal/agent/executor_exited", {
            "agent_id": self.agent_id, "framework_id": exe.framework_id,
            "executor_id": exe.executor_id, "status": wait_status(code)})

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
            if exe.info is None:
                self._kill_command(exe, fw_id, tid)
                return
            exe.killed.add(tid)
            queued = next((e for e in exe.queued if any(
                (t.get("task_id") or {}).get("value") == tid for t in _event_tasks(e))), None)
            if exe.stream is None and queued is not None:
                # Slave::killTask() (issue 12): killed before delivery, with every other task
                # of its task group.
                exe.queued.remove(queued)
                for task in _event_tasks(queued):
                    self._status(fw_id, task["task_id"]["value"], "TASK_KILLED",
                                 exe.executor_id, source="SOURCE_AGENT",
                                 reason="REASON_TASK_KILLED_DURING_LAUNCH",
                                 message="Killed before delivery to the executor")
            else:
                self._to_executor(exe, {"type": "KILL", "kill": {"task_id": {"value": tid}}})

    def _kill_command(self, exe: Executor, fw_id: str, tid: str) -> None:
        """The command executor's kill (src/launcher/executor.cpp): on the first KILL only,
        TASK_KILLING (from the executor, no reason) if the framework has TASK_KILLING_STATE,
        then SIGTERM and escalation; a repeated KILL changes nothing."""
        if tid in exe.killed or exe.proc is None:
            return
        exe.killed.add(tid)
        if has_capability(self.frameworks.get(fw_id), "TASK_KILLING_STATE"):
            self._status(fw_id, tid, "TASK_KILLING", tid)
        _kill_group(exe.proc, signal.SIGTERM)
        self._escalate(exe.proc)

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
            agent_recovery.checkpoint(self, fw_id)
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

    def executor_subscribing(self, exe: Executor, subscribe: dict) -> None:
        """Slave::subscribe() for an HTTP executor (issue 12): the updates it has not seen
        acknowledged are taken (duplicates ignored), then a task still STAGING that was sent
        to it but is not among its unacknowledged tasks never reached it: TASK_DROPPED, or
        TASK_LOST if the framework is not partition-aware."""
        fw_id, exec_id = exe.framework_id, exe.executor_id
        with self.lock:
            for item in subscribe.get("unacknowledged_updates") or []:
                if not isinstance(item, dict) or update_call_error(
                        {"update": item}, exec_id, fw_id):
                    continue
                status = dict(item["status"])
                tid = status["task_id"]["value"]
                if (fw_id, tid) not in self.tasks or self.ledger.seen(tid, status["uuid"]):
                    continue
                status["executor_id"] = {"value": exec_id}
                status["agent_id"] = {"value": self.agent_id}
                self.update(fw_id, status)
            listed = {(t.get("task_id") or {}).get("value")
                      for t in subscribe.get("unacknowledged_tasks") or []
                      if isinstance(t, dict)}
            queued = {t["task_id"]["value"] for event in exe.queued
                      for t in _event_tasks(event)}
            aware = has_capability(self.frameworks.get(fw_id), "PARTITION_AWARE")
            for tid in sorted(exe.tasks):
                record = self.tasks.get((fw_id, tid))
                if record is None or record.state != "TASK_STAGING" or tid in listed \
                        or tid in queued:
                    continue
                self._status(fw_id, tid, "TASK_DROPPED" if aware else "TASK_LOST", exec_id,
                             source="SOURCE_AGENT", reason="REASON_AGENT_RESTARTED",
                             message="Task launched during agent restart")

    def update_framework(self, fw_id: str, framework_info: dict) -> None:
        """Slave::updateFramework(): keep the new FrameworkInfo of a framework we run things
        for, and resend every pending status update at once (issue 12)."""
        with self.lock:
            if fw_id in self.frameworks:
                self.frameworks[fw_id] = framework_info
            self.ledger.resend_all(time.monotonic())
        self.host.wakeup.set()

    # -- registration --------------------------------------------------------------------------
    def registered(self, leader: str, answer: dict) -> None:
        """Apply the master's answer to (re-)registration."""
        for fw_id in answer.get("kill_frameworks", []):
            self.shutdown_framework(fw_id)
        with self.lock:
            self.registered_with = leader
            self.ping_seconds = float(answer.get("ping_seconds", 5.0))
            self.next_ping = time.monotonic() + self.ping_seconds
            self.ledger.resend_all(time.monotonic())

    def stop_all(self) -> None:
        """Kill every executor and command (the agent is going away)."""
        with self.lock:
            for exe in self.executors.values():
                exe.shutting_down = True
                if exe.proc is not None:
                    _kill_group(exe.proc, signal.SIGKILL)

