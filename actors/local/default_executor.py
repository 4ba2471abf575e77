"""The emulator's stand-in for Mesos's default executor (``mesos-default-executor``), which an
agent starts for a LAUNCH_GROUP whose ExecutorInfo has ``type: DEFAULT``.

As src/launcher/default_executor.cpp does, it runs every task of a task group in a container
of its own (here a process group in ``containers/<id>`` of the executor's sandbox, with the
``tasks/<task id>`` link and ``MESOS_SANDBOX`` pointing at it), reports TASK_STARTING and
TASK_RUNNING for each, then the end as "Command exited with status N" (TASK_FINISHED on 0,
TASK_FAILED otherwise, TASK_KILLED when it killed the task). A failed or killed task makes it
kill the rest of its group; KILL sends TASK_KILLING first to frameworks that can handle it; the
executor ends once no task is left, or on SHUTDOWN. It speaks the v1 executor API through
pymesos's executor driver. (Issue 10 turns the containers into the agent's nested containers.)

Run by an agent: ``python -m actors.local.default_executor`` with the MESOS_* environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pymesos import Executor, MesosExecutorDriver

from actors.local.agent_core import command_argv, exit_state

log = logging.getLogger("clusterjobs.mesos.default_executor")

DEFAULT_KILL_GRACE = 3.0  # seconds; KillPolicy's default grace period in the default executor


@dataclass
class _Container:
    task: dict
    group: list[str]  # the task ids of its task group
    proc: subprocess.Popen | None = None
    killing: bool = False
    killing_group: bool = False
    launch_error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)  # its process ended
    reported: threading.Event = field(default_factory=threading.Event)  # its end was sent


class DefaultExecutor(Executor):
    """pymesos callbacks; each task's process is watched by a thread of its own."""

    def __init__(self, sandbox: Path) -> None:
        self.sandbox = sandbox
        self.lock = threading.Lock()
        self.containers: dict[str, _Container] = {}
        self.killing_state = False
        self.shutting_down = False
        self.driver: MesosExecutorDriver | None = None

    # -- driver callbacks ----------------------------------------------------------------------
    def registered(self, driver, executor_info, framework_info, agent_info) -> None:
        self.driver = driver
        caps = (framework_info or {}).get("capabilities") or []
        self.killing_state = any(c.get("type") == "TASK_KILLING_STATE" for c in caps)

    def launchTask(self, driver, task) -> None:
        # The master never sends LAUNCH to a DEFAULT executor (validation refuses it).
        log.error("LAUNCH is not supported by the default executor")

    def launchTaskGroup(self, driver, task_group) -> None:
        # Work happens off the driver's IO thread: an exception there would stop the driver.
        tasks = [dict(t) for t in task_group]
        threading.Thread(target=self._launch_group, args=(tasks,), daemon=True).start()

    def _launch_group(self, tasks: list[dict]) -> None:
        group = [t["task_id"]["value"] for t in tasks]
        with self.lock:
            if self.shutting_down:
                return
            started = []
            for task in tasks:
                container = _Container(task, group)
                self.containers[task["task_id"]["value"]] = container
                self._update(task, "TASK_STARTING")
                self._start(container)
                started.append(container)
            for container in started:
                if container.launch_error is None:
                    self._update(container.task, "TASK_RUNNING")
        for container in started:
            threading.Thread(target=self._wait, args=(container,), daemon=True).start()

    def killTask(self, driver, task_id) -> None:
        threading.Thread(target=self._kill_task, args=(dict(task_id),), daemon=True).start()

    def _kill_task(self, task_id: dict) -> None:
        with self.lock:
            container = self.containers.get(task_id["value"])
            if container is None or container.killing:
                return
            if self.killing_state:
                self._update(container.task, "TASK_KILLING")
            self._kill(container)

    def shutdown(self, driver) -> None:
        """Kill every task and wait for them (each within its kill grace, then SIGKILL):
        the driver exits when this returns, and the tasks run in process groups of their
        own, which the agent's kill of the executor's group would not reach."""
        with self.lock:
            self.shutting_down = True
            containers = list(self.containers.values())
            for container in containers:
                if not container.killing:
                    self._kill(container)
        for container in containers:
            # Until its terminal update went out: the process exits once this returns.
            container.reported.wait(_grace(container.task) + 2.0)

    # -- containers ----------------------------------------------------------------------------
    def _start(self, container: _Container) -> None:
        task = container.task
        tid = task["task_id"]["value"]
        directory = self.sandbox / "containers" / str(uuid.uuid4())
        directory.mkdir(parents=True)
        link = self.sandbox / "tasks" / tid
        link.parent.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            link.symlink_to(directory)
        command = task.get("command") or {}
        argv, error = command_argv(command)
        env = dict(os.environ)
        env["MESOS_SANDBOX"] = str(directory)
        for var in (command.get("environment") or {}).get("variables") or []:
            if isinstance(var, dict) and isinstance(var.get("name"), str):
                env[var["name"]] = str(var.get("value", ""))
        if error is None:
            try:
                with open(directory / "stdout", "ab") as out, \
                        open(directory / "stderr", "ab") as err:
                    container.proc = subprocess.Popen(
                        argv, cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=out,
                        stderr=err, start_new_session=True)
            except OSError as exc:
                error = f"Failed to launch the command: {exc.strerror}"
        container.launch_error = error

    def _kill(self, container: _Container) -> None:
        """SIGTERM the task's process group, SIGKILL after its kill policy's grace."""
        container.killing = True
        proc = container.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        grace = _grace(container.task)

        def escalate() -> None:
            if not container.done.wait(grace):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

        threading.Thread(target=escalate, daemon=True).start()

    def _wait(self, container: _Container) -> None:
        if container.proc is not None:
            code = container.proc.wait()
            container.done.set()
            _state, message = exit_state(code, False)
            state = ("TASK_KILLED" if container.killing
                     else "TASK_FINISHED" if code == 0 else "TASK_FAILED")
        else:
            state, message = "TASK_FAILED", container.launch_error or "Launch failed"
        with self.lock:
            self._update(container.task, state, message)
            container.reported.set()
            tid = container.task["task_id"]["value"]
            # The default restart policy: a failed or killed task ends its whole group.
            if not self.shutting_down and not container.killing_group \
                    and state in ("TASK_FAILED", "TASK_KILLED"):
                for other in container.group:
                    peer = self.containers.get(other)
                    if other != tid and peer is not None:
                        peer.killing_group = True
                        if not peer.killing:
                            self._kill(peer)
            self.containers.pop(tid, None)
            last = not self.containers
        if last and self.driver is not None:
            self.driver.stop()

    def _update(self, task: dict, state: str, message: str | None = None) -> None:
        status: dict = {"task_id": task["task_id"], "state": state}
        if message:
            status["message"] = message
        if self.driver is not None:
            try:
                self.driver.sendStatusUpdate(status)
            except (RuntimeError, OSError) as exc:  # the agent is gone: nobody to tell
                log.warning("status update not sent", extra={"state": state,
                                                             "error": str(exc)})


def _grace(task: dict) -> float:
    period = ((task.get("kill_policy") or {}).get("grace_period") or {}).get("nanoseconds")
    try:
        return max(0.0, int(period) / 1e9) if period is not None else DEFAULT_KILL_GRACE
    except (TypeError, ValueError):
        return DEFAULT_KILL_GRACE


def main() -> int:
    """Entry point (the agent sets the MESOS_* environment)."""
    from actors import logfmt

    logfmt.configure("info")
    sandbox = Path(os.environ.get("MESOS_SANDBOX", "."))
    executor = DefaultExecutor(sandbox)
    driver = MesosExecutorDriver(executor, use_addict=False)
    executor.driver = driver
    driver.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
