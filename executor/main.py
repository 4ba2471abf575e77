"""`clusterjobs-executor`: the custom executor the scheduler names in its ExecutorInfo.

One per agent and framework; it runs many tasks at once, each described by a work unit in
``TaskInfo.data`` (executor/workunit.py) and run by :class:`~executor.runner.TaskRun` on a
thread of its own. pymesos's callbacks run on its single IO thread, where an exception would
stop the driver, so they only hand work over.

Configuration comes from the environment, as Mesos gives it: ``MESOS_AGENT_ENDPOINT``,
``MESOS_FRAMEWORK_ID``, ``MESOS_EXECUTOR_ID``, ``MESOS_SANDBOX``,
``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`` (read by pymesos), plus ``CLUSTERJOBS_WEBHDFS`` (the
WebHDFS URL, set by the scheduler in ``ExecutorInfo.command.environment``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

from actors import logfmt
from executor.hdfs import Hdfs
from executor.nested import AgentOperator
from executor.runner import TaskRun

log = logging.getLogger("clusterjobs.executor")

SEND_ATTEMPTS = 5


class ClusterjobsExecutor(Executor):
    """Hands each task to a :class:`TaskRun` thread; KILL and SHUTDOWN reach those runs."""

    def __init__(self, webhdfs: str, sandbox: Path, agent_endpoint: str | None) -> None:
        self.webhdfs = webhdfs
        self.sandbox = sandbox
        self.agent = AgentOperator(agent_endpoint) if agent_endpoint else None
        self.container_id: str | None = None
        self.killing_state = False
        self.runs: dict[str, TaskRun] = {}
        self.lock = threading.Lock()
        self.clients: dict[str, Hdfs] = {}  # per HDFS user, kept for the executor's life

    def hdfs_for(self, user: str) -> Hdfs:
        """The executor's WebHDFS client for ``user``: one per user, so every task reuses the
        same kept-alive connections to the NameNode and DataNodes."""
        with self.lock:
            found = self.clients.get(user)
            if found is None:
                found = self.clients[user] = Hdfs(self.webhdfs, user)
            return found

    # --- pymesos callbacks (IO thread: quick, never raising) -----------------------------

    def registered(self, driver, executor_info, framework_info, agent_info) -> None:
        self.killing_state = any(c.get("type") == "TASK_KILLING_STATE"
                                 for c in framework_info.get("capabilities") or [])
        log.info("executor registered", extra={"agent": agent_info.get("hostname", "")})

    def launchTask(self, driver, task) -> None:
        task_id = task["task_id"]
        try:
            data = decode_data(task["data"]) if task.get("data") else b""
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            self._send(driver, task_id, "TASK_FAILED", f"task data is not base64: {exc}", None)
            return
        run = TaskRun(dict(task), data, self.sandbox, self.webhdfs,
                      lambda state, message, payload: self._send(driver, task_id, state,
                                                                 message, payload),
                      agent=self.agent, container_id=self.container_id,
                      hdfs_for=self.hdfs_for)
        with self.lock:
            if run.task_id in self.runs:
                return  # a duplicate launch: Mesos never sends one, so ignore it
            self.runs[run.task_id] = run
        threading.Thread(target=self._work, args=(run,), name=f"task-{run.task_id}",
                         daemon=True).start()

    def launchTaskGroup(self, driver, task_group) -> None:
        for task in task_group:
            self.launchTask(driver, task)

    def killTask(self, driver, task_id) -> None:
        with self.lock:
            run = self.runs.get(task_id["value"])
        if run is None:
            return  # finished already: its terminal update says how
        if run.kill() and self.killing_state:
            self._send(driver, task_id, "TASK_KILLING", None, None)

    def shutdown(self, driver) -> None:
        """SHUTDOWN (or the agent went away): kill every task, then give their threads until
        shortly before pymesos kills this process (the agent's shutdown grace period)."""
        with self.lock:
            runs = list(self.runs.values())
        budget = max(0.5, float(getattr(driver, "grace_shutdown_period", 5.0) or 5.0) - 0.5)
        for run in runs:
            run.kill("killed", grace=min(run.grace, budget * 0.6))
        deadline = time.monotonic() + budget
        for run in runs:
            run.done.wait(max(0.0, deadline - time.monotonic()))
        log.info("executor shut down", extra={"tasks": len(runs)})

    def frameworkMessage(self, driver, message) -> None:
        log.info("framework message ignored", extra={"bytes": len(message or "")})

    def error(self, driver, message) -> None:
        log.error("executor error from the agent", extra={"error": message})

    # --- helpers ---------------------------------------------------------------------------

    def _work(self, run: TaskRun) -> None:
        try:
            run.run()
        finally:
            with self.lock:
                self.runs.pop(run.task_id, None)

    def _send(self, driver, task_id: dict, state: str, message: str | None,
              payload: bytes | None) -> None:
        """One status update, retried while the agent cannot take it (e.g. reconnecting)."""
        # A fractional timestamp (TaskStatus.timestamp is a double); pymesos would stamp
        # whole seconds, too coarse for the scheduler's cross-check of run times.
        status: dict = {"task_id": dict(task_id), "state": state, "timestamp": time.time()}
        if message:
            status["message"] = message
        if payload is not None:
            status["data"] = encode_data(payload)
        for attempt in range(SEND_ATTEMPTS):
            try:
                driver.sendStatusUpdate(dict(status))
                return
            except Exception as exc:  # pymesos raises bare RuntimeError / socket errors
                log.warning("status update not sent", extra={
                    "task": task_id.get("value"), "state": state, "error": str(exc),
                    "attempt": attempt + 1})
                time.sleep(0.2 * (attempt + 1))


class _Driver(MesosExecutorDriver):
    """pymesos's driver, also keeping the executor's ContainerID from SUBSCRIBED (the parent
    of nested containers); pymesos does not pass it on."""

    def on_subscribed(self, info):
        container = (info.get("container_id") or {}).get("value")
        if container and isinstance(self.executor, ClusterjobsExecutor):
            self.executor.container_id = container
        return super().on_subscribed(info)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script (no arguments: Mesos passes everything in env)."""
    logfmt.configure(os.environ.get("CLUSTERJOBS_LOG_LEVEL", "info"))
    webhdfs = os.environ.get("CLUSTERJOBS_WEBHDFS")
    missing = [name for name in ("CLUSTERJOBS_WEBHDFS", "MESOS_AGENT_ENDPOINT",
                                 "MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID")
               if not os.environ.get(name)]
    if missing:
        print(f"clusterjobs-executor: error: missing environment variable(s) "
              f"{', '.join(missing)} (run by a Mesos agent)", file=sys.stderr)
        return 2
    sandbox = Path(os.environ.get("MESOS_SANDBOX") or os.getcwd())
    executor = ClusterjobsExecutor(str(webhdfs), sandbox, os.environ["MESOS_AGENT_ENDPOINT"])
    driver = _Driver(executor)
    log.info("executor starting", extra={"webhdfs": webhdfs, "sandbox": str(sandbox)})
    driver.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
