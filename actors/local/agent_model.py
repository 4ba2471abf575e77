"""The agent's records: an executor (its process, event stream and tasks) and a task it runs."""

from __future__ import annotations

import queue
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


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
    # (reason, message) for the tasks it leaves behind when the agent ended it for a cause
    # (Mesos's Executor::pendingTermination); None: "Executor terminated".
    termination: tuple[str, str] | None = None


@dataclass
class TaskRecord:
    framework_id: str
    info: dict
    executor_id: str
    state: str = "TASK_STAGING"
