"""cgroup v1 groups under an agent's ``--cgroups_root`` (the I/O edge of the containerizer).

Each hierarchy's root for the agent is ``<mount>/<this process's group>/<cgroups_root>``: this
process's own group (from /proc/self/cgroup) is where it may create groups (the memory
hierarchy puts it in a nested group on this machine kind). Nothing outside that root is ever
written, killed or removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

# cgroups/cpu covers the cpu and cpuacct controllers (mounted apart here), as in Mesos.
SUBSYSTEMS = {"cpu": ("cpu", "cpuacct"), "mem": ("memory",)}
USER_HZ = os.sysconf("SC_CLK_TCK")


class CgroupError(OSError):
    """A cgroup operation that failed (message names the file)."""


def _mounts(mountinfo: str) -> dict[str, Path]:
    """Controller -> mount point of each cgroup v1 hierarchy in /proc/self/mountinfo."""
    found: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        left, _sep, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if len(extra) < 3 or extra[0] != "cgroup":
            continue
        for option in extra[2].split(","):
            found.setdefault(option, Path(fields[4]))
    return found


def _own_groups(proc_cgroup: str) -> dict[str, str]:
    """Controller -> this process's group path, from /proc/self/cgroup."""
    found: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                if controller:
                    found[controller] = parts[2]
    return found


@dataclass
class Cgroups:
    """The agent's groups in each hierarchy it uses."""

    roots: dict[str, Path]  # controller -> <mount>/<own group>/<cgroups_root>
    created_root: set[str]

    @classmethod
    def discover(cls, cgroups_root: str, controllers: list[str]) -> Cgroups:
        """Find each controller's root for ``cgroups_root``; raises CgroupError naming what
        is missing or not writable."""
        if not cgroups_root or cgroups_root.startswith("/") or ".." in cgroups_root.split("/"):
            raise CgroupError(f"--cgroups_root must be a relative path, not {cgroups_root!r}")
        mounts = _mounts(Path("/proc/self/mountinfo").read_text())
        own = _own_groups(Path("/proc/self/cgroup").read_text())
        roots: dict[str, Path] = {}
        created: set[str] = set()
        for controller in controllers:
            mount = mounts.get(controller)
            if mount is None:
                raise CgroupError(f"no cgroup v1 hierarchy with the {controller!r} controller "
                                  "is mounted")
            root = mount / own.get(controller, "/").lstrip("/") / cgroups_root
            try:
                if not root.exists():
                    root.mkdir(parents=True)
                    created.add(controller)
                probe = root / f".probe-{os.getpid()}"
                probe.mkdir()
                probe.rmdir()
            except OSError as exc:
                raise CgroupError(f"cannot create groups under {root}: "
                                  f"{exc.strerror or exc}") from None
            roots[controller] = root
        return cls(roots, created)

    def path(self, controller: str, name: str) -> Path:
        """The folder of group ``name`` (relative, may be nested a/mesos/b)."""
        return self.roots[controller] / name

    def create(self, name: str) -> list[str]:
        """Create group ``name`` in every hierarchy; its cgroup.procs files (to join it)."""
        procs = []
        for controller in self.roots:
            group = self.path(controller, name)
            group.mkdir(parents=True, exist_ok=True)
            procs.append(str(group / "cgroup.procs"))
        return procs

    def write(self, controller: str, name: str, knob: str, value: object) -> None:
        """Write a control file of a group (e.g. memory.limit_in_bytes)."""
        target = self.path(controller, name) / knob
        try:
            target.write_text(str(value))
        except OSError as exc:
            raise CgroupError(f"cannot write {value} to {target}: {exc.strerror}") from None

    def read(self, controller: str, name: str, knob: str) -> str | None:
        """A control file's text, None when the group or file is gone."""
        if controller not in self.roots:
            return None
        try:
            return (self.path(controller, name) / knob).read_text()
        except OSError:
            return None

    def read_int(self, controller: str, name: str, knob: str) -> int | None:
        text = self.read(controller, name, knob)
        try:
            return int(text.split()[0]) if text else None
        except ValueError:
            return None

    def read_keys(self, controller: str, name: str, knob: str) -> dict[str, int]:
        """A ``key value`` per line file (memory.stat, cpuacct.stat, memory.oom_control)."""
        out: dict[str, int] = {}
        for line in (self.read(controller, name, knob) or "").splitlines():
            key, _sep, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out

    def pids(self, name: str) -> set[int]:
        """Every process in the group or its sub-groups, in any hierarchy."""
        found: set[int] = set()
        for controller in self.roots:
            top = self.path(controller, name)
            for folder, _dirs, files in os.walk(top):
                if "cgroup.procs" in files:
                    with contextlib.suppress(OSError):
                        found.update(int(p) for p in
                                     Path(folder, "cgroup.procs").read_text().split())
        return found

    def kill_all(self, name: str) -> None:
        """SIGKILL every process of the group and its sub-groups (Mesos's destroy)."""
        for _round in range(3):
            pids = self.pids(name)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self, name: str, timeout: float = 2.0) -> bool:
        """Remove the group and its sub-groups (deepest first), in every hierarchy.

        A group is busy until its last process is reaped, so EBUSY is retried briefly."""
        deadline = time.monotonic() + timeout
        ok = True
        for controller in self.roots:
            top = self.path(controller, name)
            if not top.exists():
                continue
            folders = sorted((Path(f) for f, _d, _f in os.walk(top)),
                             key=lambda p: len(p.parts), reverse=True)
            for folder in folders:
                while True:
                    try:
                        folder.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError as exc:
                        if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                            ok = False
                            break
                        self.kill_all(name)
                        time.sleep(0.05)
        return ok

    def children(self) -> list[str]:
        """Names of the groups directly under the agent's root (its containers)."""
        names: set[str] = set()
        for root in self.roots.values():
            with contextlib.suppress(OSError):
                names.update(p.name for p in root.iterdir() if p.is_dir())
        return sorted(names)

    def remove_root(self) -> None:
        """Remove the agent's root folders when empty (another agent may share the root:
        then it is busy and stays)."""
        for root in self.roots.values():
            with contextlib.suppress(OSError):
                root.rmdir()
