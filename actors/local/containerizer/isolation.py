"""Pure containerizer logic: the isolation flags, cgroup limits from resources, Mesos's
limitation messages, and how an image's config turns into a command (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Isolators this emulator implements for real, in Mesos's names.
CGROUPS_CPU = "cgroups/cpu"
CGROUPS_MEM = "cgroups/mem"
NAMESPACES_PID = "namespaces/pid"
FILESYSTEM_LINUX = "filesystem/linux"
DISK_DU = "disk/du"
DOCKER_RUNTIME = "docker/runtime"
# Mesos's defaults, which isolate nothing (resource accounting by polling in Mesos).
NO_OP = frozenset({"posix/cpu", "posix/mem", "filesystem/posix", "posix/disk"})
KNOWN = frozenset({CGROUPS_CPU, CGROUPS_MEM, NAMESPACES_PID, FILESYSTEM_LINUX, DISK_DU,
                   DOCKER_RUNTIME}) | NO_OP
#: What `clusterjobs stack up` asks for unless told otherwise.
STACK_DEFAULT = "cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux,docker/runtime,disk/du"

# Mesos's constants (src/slave/constants.hpp, isolators/cgroups/constants.hpp).
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
CPU_CFS_PERIOD_US = 100_000
MIN_CPU_CFS_QUOTA_US = 1_000
MIN_MEMORY_MB = 32
COMMAND_EXECUTOR_CPUS = 0.1  # the allowance Mesos adds for its command executor
COMMAND_EXECUTOR_MEM_MB = 32
DEFAULT_SANDBOX_DIRECTORY = "/mnt/mesos/sandbox"


class IsolationError(ValueError):
    """An isolation flag the agent cannot honour (one line, names what is wrong)."""


def parse_isolation(text: str) -> frozenset[str]:
    """``cgroups/cpu,cgroups/mem`` -> the set of real isolators asked for.

    ``none`` (this emulator's word for plain processes) and Mesos's no-op posix isolators
    give the empty set; unknown names and impossible combinations are refused."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return frozenset()
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise IsolationError(f"--isolation: unknown isolator {unknown[0]!r} (known: "
                             f"{', '.join(sorted(KNOWN))}, or none)")
    chosen = frozenset(n for n in names if n not in NO_OP)
    if DOCKER_RUNTIME in chosen and FILESYSTEM_LINUX not in chosen:
        # Mesos: "The 'docker/runtime' isolator requires the 'filesystem/linux' isolator".
        raise IsolationError("--isolation: docker/runtime needs filesystem/linux")
    return chosen


def parse_image_providers(text: str, isolation: frozenset[str]) -> frozenset[str]:
    """``--image_providers``: only ``docker`` exists here, and it needs filesystem/linux."""
    names = frozenset(n.strip().lower() for n in text.split(",") if n.strip())
    unknown = sorted(names - {"docker"})
    if unknown:
        raise IsolationError(f"--image_providers: unsupported provider {unknown[0]!r} "
                             "(only docker)")
    if names and FILESYSTEM_LINUX not in isolation:
        raise IsolationError("--image_providers needs the filesystem/linux isolator")
    return names


@dataclass(frozen=True)
class Limits:
    """A container's cgroup settings, from its cpus and mem."""

    cpu_shares: int
    cfs_quota_us: int  # -1: no quota
    mem_limit_bytes: int

    @classmethod
    def of(cls, cpus: float, mem_mb: float, *, enable_cfs: bool) -> Limits:
        """Mesos's cgroups cpu and mem isolators' arithmetic."""
        shares = max(int(CPU_SHARES_PER_CPU * cpus), MIN_CPU_SHARES)
        quota = max(int(CPU_CFS_PERIOD_US * cpus), MIN_CPU_CFS_QUOTA_US) if enable_cfs else -1
        mem = max(int(mem_mb), MIN_MEMORY_MB) * 1024 * 1024
        return cls(shares, quota, mem)


def scalar(resources: Iterable[dict] | None, name: str) -> float:
    """The sum of a scalar resource in a v1 Resource list (0 when absent)."""
    total = 0.0
    for res in resources or []:
        if isinstance(res, dict) and res.get("name") == name:
            value = (res.get("scalar") or {}).get("value")
            if isinstance(value, int | float) and not isinstance(value, bool):
                total += float(value)
    return total


def container_size(resource_lists: Iterable[Iterable[dict] | None], *,
                   command_executor: bool) -> tuple[float, float, float]:
    """(cpus, mem MB, disk MB) of a container holding the given executor and task resources.

    A Mesos container's resources are its executor's plus its live tasks'; for the command
    executor Mesos adds a small allowance (0.1 cpus, 32 MB) of its own."""
    lists = list(resource_lists)
    cpus = sum(scalar(r, "cpus") for r in lists)
    mem = sum(scalar(r, "mem") for r in lists)
    disk = sum(scalar(r, "disk") for r in lists)
    if command_executor:
        cpus += COMMAND_EXECUTOR_CPUS
        mem += COMMAND_EXECUTOR_MEM_MB
    return cpus, mem, disk


def mesos_bytes(value: int) -> str:
    """Bytes as Mesos's stout prints them: the largest unit that divides exactly."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}B"


def memory_limitation_message(limit: int, max_usage: int | None) -> str:
    """The message of Mesos's memory limitation (cgroups mem isolator, oomWaited)."""
    text = f"Memory limit exceeded: Requested: {mesos_bytes(limit)} "
    if max_usage is not None:
        text += f"Maximum Used: {mesos_bytes(max_usage)}"
    return text.strip()


def disk_limitation_message(quota_bytes: int, used_bytes: int) -> str:
    """The message of Mesos's disk/du limitation."""
    return (f"Disk usage ({mesos_bytes(used_bytes)}) exceeds quota "
            f"({mesos_bytes(quota_bytes)})")


def image_command(argv: list[str] | None, shell: bool, has_value: bool,
                  entrypoint: list[str], cmd: list[str]) -> tuple[list[str] | None, str | None]:
    """(argv, error) as Mesos's docker/runtime isolator builds the command for an image.

    A shell command or a command with a value runs as given (``argv``, None returned); a
    command without a value runs the image's Entrypoint (then its Cmd when no arguments were
    given), else its Cmd, with the task's arguments appended."""
    if shell or has_value:
        return None, None
    extra = list(argv or [])
    if entrypoint:
        out = [*entrypoint, *extra]
        if not extra:
            out += cmd
        return out, None
    if cmd:
        out = [cmd[0], *extra]
        if not extra:
            out += cmd[1:]
        return out, None
    return None, "No executable is found"
