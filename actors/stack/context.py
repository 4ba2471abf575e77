"""What a service's start function is given: ports, process spawning, waiting, endpoints."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from actors.local.containerizer.isolation import STACK_DEFAULT as STACK_ISOLATION
from actors.stack.errors import StackError
from actors.stack.process import ProcessRecord, spawn

#: Seconds each service may take to answer during `stack up` (the CLI's --timeout default).
DEFAULT_START_TIMEOUT = 180.0


@dataclass(frozen=True)
class StackOptions:
    """Choices made on the `stack up` command line."""

    masters: int = 1
    agents: int = 3
    agent_accounts: tuple[str, ...] = ()  # eos_account attribute per agent; default worker1..N
    start_timeout: float = DEFAULT_START_TIMEOUT
    sample: bool = True  # set up the sample protocol (actors/stack/sample.py)
    #: The agents' --isolation (Mesos names, or "none" for plain processes).
    isolation: str = STACK_ISOLATION


@dataclass
class StackContext:
    """Shared by the services of one `stack up`; thread-safe where services run in parallel."""

    workdir: Path
    options: StackOptions = field(default_factory=StackOptions)
    endpoints: dict[str, object] = field(default_factory=dict)
    records: list[ProcessRecord] = field(default_factory=list)
    #: Called (under the lock) with every record so far after each spawn, so the orchestrator
    #: can persist them at once: a `stack up` killed mid-start leaves nothing unrecorded.
    on_spawn: Callable[[list[ProcessRecord]], None] | None = None
    #: Set when the start is abandoned (Ctrl-C, another service failed): no new process
    #: starts and every wait gives up at its next poll.
    cancelled: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def service_dir(self, name: str) -> Path:
        """A folder of the service's own under the workdir (data, config)."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def port(self) -> int:
        """A TCP port free on 127.0.0.1 right now."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen:
        """Start a long-running process of the stack; `down` will stop it."""
        with self._lock:
            if self.cancelled.is_set():
                raise StackError(f"{name}: not started, the stack start was abandoned")
            proc, record = spawn(name, argv, self.log_path(name), env=env, cwd=cwd)
            self.records.append(record)
            if self.on_spawn is not None:
                self.on_spawn(list(self.records))
        return proc

    def wait_until(
        self,
        name: str,
        ready: Callable[[], bool],
        proc: subprocess.Popen | None = None,
        timeout: float | None = None,
        what: str = "to answer",
    ) -> float:
        """Poll ``ready`` until it is true; fail fast if ``proc`` dies. Returns seconds waited."""
        limit = self.options.start_timeout if timeout is None else timeout
        start = time.monotonic()
        while True:
            if self.cancelled.is_set():
                raise StackError(f"{name}: start abandoned")
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"{name} exited with code {proc.returncode} while starting",
                    self.log_path(name),
                )
            try:
                if ready():
                    return time.monotonic() - start
            except Exception:
                pass
            if time.monotonic() - start > limit:
                raise StackError(
                    f"{name} did not come up {what} within {limit:.0f} s", self.log_path(name)
                )
            time.sleep(0.2)

    def wait_http(
        self,
        name: str,
        url: str,
        proc: subprocess.Popen | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> float:
        """Wait until ``url`` answers 2xx (POSTing ``data`` when given)."""

        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, data=data, timeout=2) as resp:
                    return 200 <= resp.status < 300
            except urllib.error.URLError:
                return False

        return self.wait_until(name, ready, proc, timeout, what=f"at {url}")

    def wait_tcp(
        self,
        name: str,
        port: int,
        proc: subprocess.Popen | None = None,
        timeout: float | None = None,
    ) -> float:
        """Wait until 127.0.0.1:``port`` accepts connections."""

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        return self.wait_until(name, ready, proc, timeout, what=f"on port {port}")
