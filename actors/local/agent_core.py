"""Pure pieces of the agent: attributes, sandbox layout, the executor environment, commands."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

DEFAULT_RESOURCES = "cpus:4;mem:4096;disk:10240;ports:[31000-32000]"


class AgentConfigError(ValueError):
    """A flag value the agent cannot use."""


def parse_attributes(text: str) -> list[dict]:
    """``rack:r1;eos_account:alice;weight:3`` -> v1 Attribute list (TEXT or SCALAR)."""
    out: list[dict] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = part.partition(":")
        if not sep or not name.strip():
            raise AgentConfigError(f"attribute {part!r} is not name:value")
        name, value = name.strip(), value.strip()
        try:
            out.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
        except ValueError:
            out.append({"name": name, "type": "TEXT", "text": {"value": value}})
    return out


def has_capability(framework_info: dict | None, capability: str) -> bool:
    """True when a v1 FrameworkInfo lists ``capability`` (e.g. "TASK_KILLING_STATE")."""
    caps = (framework_info or {}).get("capabilities") or []
    return any(isinstance(c, dict) and c.get("type") == capability for c in caps)


def sandbox_dir(work_dir: Path, agent_id: str, framework_id: str, executor_id: str,
                container_id: str) -> Path:
    """The Mesos sandbox layout under the agent's work dir."""
    return (work_dir / "slaves" / agent_id / "frameworks" / framework_id / "executors"
            / executor_id / "runs" / container_id)


def executor_env(*, agent_id: str, agent_address: str, framework_id: str, executor_id: str,
                 sandbox: Path, checkpoint: bool, shutdown_grace: float,
                 extra: list | None = None) -> dict[str, str]:
    """The MESOS_* environment an agent gives an executor, plus CommandInfo.environment."""
    env = {
        "MESOS_FRAMEWORK_ID": framework_id,
        "MESOS_EXECUTOR_ID": executor_id,
        "MESOS_AGENT_ENDPOINT": agent_address,
        "MESOS_SLAVE_ID": agent_id,
        "MESOS_SLAVE_PID": f"slave(1)@{agent_address}",
        "MESOS_DIRECTORY": str(sandbox),
        "MESOS_SANDBOX": str(sandbox),
        "MESOS_CHECKPOINT": "1" if checkpoint else "0",
        "MESOS_HTTP_COMMAND_EXECUTOR": "0",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": f"{shutdown_grace:g}secs",
    }
    if checkpoint:
        # A Mesos agent gives these two only to executors of checkpointing frameworks
        # (agent recovery_timeout flag, and EXECUTOR_REREGISTER_TIMEOUT = 2 s).
        env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
        env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "2secs"
    for var in extra or []:
        if isinstance(var, dict) and isinstance(var.get("name"), str):
            env[var["name"]] = str(var.get("value", ""))
    return env


def shutdown_grace_seconds(executor_info: dict | None, default: float) -> float:
    """ExecutorInfo.shutdown_grace_period (a DurationInfo) overrides the agent's flag."""
    period = (executor_info or {}).get("shutdown_grace_period")
    nanos = period.get("nanoseconds") if isinstance(period, dict) else None
    if isinstance(nanos, int | float | str) and not isinstance(nanos, bool):
        try:
            value = int(nanos)  # int64 may come as a JSON string
        except ValueError:
            return default
        if value >= 0:
            return value / 1e9
    return default


def command_argv(command: dict) -> tuple[list[str], str | None]:
    """(argv, error) for a CommandInfo: ``/bin/sh -c value`` unless ``shell`` is false."""
    value = command.get("value")
    if command.get("shell", True):
        if not isinstance(value, str) or not value:
            return [], "CommandInfo.value is empty"
        return ["/bin/sh", "-c", value], None
    args = command.get("arguments") or []
    if not isinstance(value, str) or not value or not isinstance(args, list):
        return [], "CommandInfo without shell needs value (the program) and arguments"
    return [value, *[str(a) for a in args[1:]]], None


def exit_state(returncode: int, killed: bool) -> tuple[str, str]:
    """(terminal state, message) for a finished command, as the Mesos command executor
    reports it: a zero exit is TASK_FINISHED even after a kill, and the message is
    "Command " + the wait status in words (negative codes are signals)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
            words = signal.strsignal(-returncode) or name
        except ValueError:
            words = str(-returncode)
        message = f"Command terminated with signal {words}"
    else:
        message = f"Command exited with status {returncode}"
    if returncode == 0:
        return "TASK_FINISHED", message
    return ("TASK_KILLED" if killed else "TASK_FAILED"), message


def default_executor_argv() -> list[str]:
    """How an agent starts Mesos's DEFAULT executor (mesos-default-executor's stand-in)."""
    return [sys.executable, "-m", "actors.local.default_executor"]


def mesos_duration(seconds: float) -> str:
    """A duration as Mesos's stringify(Duration) writes it: the largest unit the value
    reaches, e.g. 60 -> "1mins", 2 -> "2secs", 0.5 -> "500ms"."""
    units = (("weeks", 604800.0), ("days", 86400.0), ("hrs", 3600.0), ("mins", 60.0),
             ("secs", 1.0), ("ms", 1e-3), ("us", 1e-6))
    for name, size in units:
        if seconds >= size:
            return f"{seconds / size:g}{name}"
    return f"{seconds * 1e9:g}ns"


def wait_status(returncode: int) -> int:
    """Popen's returncode as the raw wait status Mesos reports (``Event.Failure.status``):
    the exit code shifted left by 8, or the number of the signal that ended the process."""
    return -returncode if returncode < 0 else returncode << 8
