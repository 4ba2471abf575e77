"""One task on the executor: stage in, run, time, stage out, report. Runs on its own thread.

The command runs in ``<executor sandbox>/tasks/<task id>/`` in a process group of its own, so a
kill reaches every process it started (SIGTERM, then SIGKILL after the grace period) and none
is left behind when it ends. Its time is measured with a monotonic clock, its CPU time from
``os.wait4``'s resource usage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from executor import core
from executor.hdfs import Hdfs, HdfsError
from executor.nested import AgentOperator, NestedContainerError
from executor.workunit import WorkUnit, WorkUnitError, parse_workunit

log = logging.getLogger("clusterjobs.executor")

STAGE_IN_THREADS = 4

#: (state, message or None, data bytes or None): how a run reports an update.
Report = Callable[[str, str | None, bytes | None], None]


def _us(seconds: float) -> int:
    return round(seconds * 1e6)


class TaskRun:
    """The life of one task; :meth:`run` on a worker thread, :meth:`kill` from any thread."""

    def __init__(self, task: dict, data: bytes, sandbox: Path, webhdfs: str, report: Report,
                 *, agent: AgentOperator | None = None, container_id: str | None = None,
                 executor_sandbox: Path | None = None,
                 hdfs_for: Callable[[str], Hdfs] | None = None) -> None:
        self.task = task
        self.task_id = str(task["task_id"]["value"])
        self.data = data
        self.workdir = sandbox / "tasks" / core.task_dir_name(self.task_id)
        self.webhdfs = webhdfs
        self.report = report
        self.agent = agent
        self.container_id = container_id  # the executor's own (parent of nested ones)
        self.executor_sandbox = executor_sandbox or sandbox
        # The executor passes its long-lived clients (kept-alive connections); alone, a run
        # makes its own.
        self.hdfs_for = hdfs_for or (lambda user: Hdfs(webhdfs, user))
        self.measures = core.Measures()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._stop_reason: str | None = None  # "killed" or "timed out after N s"
        self._pgid: int | None = None
        self._nested: dict | None = None
        self.grace = core.kill_grace(task)

    # --- control from other threads ------------------------------------------------------

    def kill(self, reason: str = "killed", grace: float | None = None) -> bool:
        """Stop the task (SIGTERM, SIGKILL after the grace period); False if already asked."""
        grace = self.grace if grace is None else grace
        with self._lock:
            if self._stop_reason is not None or self.done.is_set():
                return False
            self._stop_reason = reason
            pgid, nested = self._pgid, self._nested
        if pgid is not None:
            self._signal_group(signal.SIGTERM)
            timer = threading.Timer(grace, self._signal_group, args=(signal.SIGKILL,))
            timer.daemon = True
            timer.start()
        elif nested is not None:
            self._kill_nested(nested, grace)
        return True

    def _signal_group(self, sig: int) -> None:
        with self._lock:
            if self._pgid is None:
                return
            pgid = self._pgid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)  # fails only when the whole group is gone already

    def _kill_nested(self, nested: dict, grace: float) -> None:
        def escalate() -> None:
            try:
                assert self.agent is not None
                self.agent.kill(nested, signal.SIGTERM)
                if not self.done.wait(grace):
                    self.agent.kill(nested, signal.SIGKILL)
            except NestedContainerError as exc:
                log.warning("nested kill failed", extra={"task": self.task_id, "error": str(exc)})
        threading.Thread(target=escalate, daemon=True).start()

    def _stopped(self) -> str | None:
        with self._lock:
            return self._stop_reason

    # --- the run -------------------------------------------------------------------------

    def run(self) -> None:
        """Report STARTING, stage in, RUNNING, run, stage out, then the terminal update."""
        try:
            state, message = self._run()
        except Exception as exc:  # a bug must still end the task, never hang it
            log.exception("task crashed", extra={"task": self.task_id})
            state, message = "TASK_FAILED", core.one_line(f"executor error: {exc!r}")
        finally:
            with self._lock:
                self.done.set()
        self._cleanup(state == "TASK_FINISHED")
        self.report(state, message, self.measures.to_bytes())
        log.info("task ended", extra={"task": self.task_id, "state": state,
                                      "run_us": self.measures.run_us,
                                      "stage_in_us": self.measures.stage_in_us,
                                      "stage_out_us": self.measures.stage_out_us,
                                      "bytes_in": self.measures.bytes_in})

    def _run(self) -> tuple[str, str | None]:
        self.report("TASK_STARTING", None, None)
        try:
            unit = parse_workunit(self.data)
        except WorkUnitError as exc:
            return "TASK_FAILED", core.one_line(str(exc))
        fs = self.hdfs_for(unit.hdfs_user)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._stage_in(fs, unit)
        except HdfsError as exc:
            if (reason := self._stopped()) is not None:
                return self._stopped_state(reason)
            return "TASK_FAILED", core.one_line(f"stage-in failed: {exc}")
        if (reason := self._stopped()) is not None:
            return self._stopped_state(reason)
        self.report("TASK_RUNNING", None, _started())
        if unit.image is not None:
            code, problem = self._run_nested(unit)
            if problem is not None:
                return "TASK_FAILED", core.one_line(problem)
        else:
            code = self._run_process(unit)
        self.measures.exit_code = code
        if (reason := self._stopped()) is not None:
            return self._stopped_state(reason)
        if code != 0:
            return "TASK_FAILED", core.failed_command_message(code, self._stderr_tail())
        try:
            self._stage_out(fs, unit)
        except (HdfsError, OutputError) as exc:
            return "TASK_FAILED", core.one_line(f"stage-out failed: {exc}")
        return "TASK_FINISHED", None

    def _stopped_state(self, reason: str) -> tuple[str, str]:
        if reason == "killed":
            return "TASK_KILLED", "killed by the scheduler"
        return "TASK_FAILED", reason

    def _stage_in(self, fs: Hdfs, unit: WorkUnit) -> None:
        began = time.monotonic()
        targets = [(item.hdfs, self.workdir / item.as_name) for item in unit.inputs]
        for _, local in targets:
            local.parent.mkdir(parents=True, exist_ok=True)
        if targets:
            with ThreadPoolExecutor(min(STAGE_IN_THREADS, len(targets))) as pool:
                sizes = list(pool.map(lambda t: fs.download(
                    t[0], t[1], cancelled=lambda: self._stopped() is not None), targets))
            self.measures.bytes_in = sum(sizes)
        self.measures.stage_in_us = _us(time.monotonic() - began)

    def _run_process(self, unit: WorkUnit) -> int:
        argv = list(unit.command) if isinstance(unit.command, tuple) else [
            "/bin/sh", "-c", unit.command]
        env = {**os.environ, **unit.task_env(), "MESOS_SANDBOX": str(self.workdir)}
        with open(self.workdir / "stdout", "wb") as out, open(self.workdir / "stderr", "wb") as err:
            began = time.monotonic()
            try:
                pid = _spawn(argv, self.workdir, env, out.fileno(), err.fileno())
            except OSError as exc:
                err.write(f"cannot start {argv[0]}: {exc.strerror}\n".encode())
                return 127
        with self._lock:
            self._pgid = pid
            stop_now = self._stop_reason is not None
        if stop_now:  # a kill came while it was being started
            self._signal_group(signal.SIGTERM)
            timer = threading.Timer(self.grace, self._signal_group, args=(signal.SIGKILL,))
            timer.daemon = True
            timer.start()
        timer = None
        if unit.timeout_seconds is not None:
            limit = unit.timeout_seconds
            timer = threading.Timer(limit, self.kill, args=(f"timed out after {limit:g} s",))
            timer.daemon = True
            timer.start()
        _, status, usage = os.wait4(pid, 0)
        self.measures.run_us = _us(time.monotonic() - began)
        self.measures.cpu_us = _us(usage.ru_utime + usage.ru_stime)
        if timer is not None:
            timer.cancel()
        # Whatever the command left running in its group goes with it. Then the group is
        # forgotten, so a pending escalation timer cannot signal a reused process group id.
        self._signal_group(signal.SIGKILL)
        with self._lock:
            self._pgid = None
        return core.exit_code(os.waitstatus_to_exitcode(status))

    def _run_nested(self, unit: WorkUnit) -> tuple[int, str | None]:
        if self.agent is None or self.container_id is None:
            return 0, "the executor has no agent endpoint or container id for nested containers"
        parent_path = str(self.workdir.relative_to(self.executor_sandbox))
        began = time.monotonic()
        try:
            nested = self.agent.launch(self.container_id, unit.image or "", unit.command,
                                       unit.task_env(), parent_path)
        except NestedContainerError as exc:
            if exc.unsupported:
                return 0, (f"the agent does not support nested containers, so image "
                           f"{unit.image} cannot run ({exc})")
            return 0, f"nested container of image {unit.image} not launched: {exc}"
        with self._lock:
            self._nested = nested
            stop_now = self._stop_reason is not None
        if stop_now:
            self._kill_nested(nested, self.grace)
        try:
            status = self.agent.wait(nested)
        except NestedContainerError as exc:
            return 0, f"nested container of {unit.image} lost: {exc}"
        self.measures.run_us = _us(time.monotonic() - began)
        return core.exit_code(os.waitstatus_to_exitcode(status)), None

    def _stderr_tail(self) -> str:
        path = self.workdir / "stderr"
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, path.stat().st_size - 8192))
                return core.stderr_tail(handle.read())
        except OSError:
            return ""

    def _stage_out(self, fs: Hdfs, unit: WorkUnit) -> None:
        began = time.monotonic()
        files = output_files(self.workdir, unit.outputs)
        self.measures.outputs = fs.upload_tree(unit.output_dir, files)
        self.measures.bytes_out = sum(local.stat().st_size for local, _ in files)
        self.measures.stage_out_us = _us(time.monotonic() - began)

    def _cleanup(self, finished: bool) -> None:
        """Free the sandbox: everything after a success, the staged inputs after a failure
        (stdout and stderr stay for whoever looks at the agent's sandbox)."""
        try:
            if finished:
                shutil.rmtree(self.workdir, ignore_errors=True)
                return
            if not self.workdir.exists():
                return
            for entry in self.workdir.iterdir():
                if entry.name in ("stdout", "stderr"):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("sandbox clean-up failed", extra={"task": self.task_id,
                                                          "error": str(exc)})


class OutputError(Exception):
    """A declared output is missing or points outside the sandbox."""


def output_files(workdir: Path, outputs: tuple[str, ...]) -> list[tuple[Path, str]]:
    """(local file, name under the output folder) for every declared output (folders are
    walked), then ``stdout`` and ``stderr``; a missing output or a link leaving the task's
    folder is an :class:`OutputError`."""
    root = workdir.resolve()
    files: list[tuple[Path, str]] = []
    for name in outputs:
        path = workdir / name
        if not path.exists():
            raise OutputError(f"output {name!r} was not produced")
        if root not in path.resolve().parents and path.resolve() != root:
            raise OutputError(f"output {name!r} points outside the sandbox")
        if path.is_dir():
            for folder, _, names in os.walk(path):
                for file_name in sorted(names):
                    local = Path(folder) / file_name
                    if root not in local.resolve().parents:
                        raise OutputError(f"output {name!r} has a link leaving the sandbox")
                    files.append((local, str(local.relative_to(workdir))))
        else:
            files.append((path, name))
    files += [(workdir / "stdout", "stdout"), (workdir / "stderr", "stderr")]
    return files


def _spawn(argv: list[str], cwd: Path, env: dict[str, str], out: int, err: int) -> int:
    """Start ``argv`` in a new session (its own process group); returns its pid.

    The caller reaps the child with os.wait4 (for its CPU time), so Popen must never reap it:
    a Popen whose returncode is set never waits (neither in poll nor when collected)."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=err, start_new_session=True, close_fds=True)
    proc.returncode = 0
    return proc.pid


def _started() -> bytes:
    return json.dumps({"started_us": time.time_ns() // 1000}).encode()
