"""The containerizer of an agent process: launches, resizes, watches and destroys containers.

One :class:`Containerizer` serves every agent of a process (container ids are UUIDs). A
container is an executor (the command executor's task or a custom executor) or a nested
container launched through the operator API; each gets, per the agent's ``--isolation``,
its own cgroups under ``--cgroups_root``, its own pid and mount namespaces, and an image's
rootfs. A monitor thread turns an OOM kill or a sandbox over its disk quota into a
limitation and destroys the container, as Mesos's isolators do.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from actors.local.containerizer import isolation as iso
from actors.local.containerizer.cgroups import USER_HZ, CgroupError, Cgroups
from actors.local.containerizer.images import ImageError, ImageStore

log = logging.getLogger("clusterjobs.mesos.containerizer")

LAUNCHER = Path(__file__).with_name("launch.py")


class ContainerError(RuntimeError):
    """A container that cannot be launched (the message says why, for the task status)."""


def start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot), to tell it from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class AdoptedProcess:
    """A container's launcher left running by an earlier run of this agent: not our child,
    so it is watched through a pidfd, and its status read from the file it leaves behind.
    Offers what the agent uses of ``subprocess.Popen`` (pid, poll, wait, returncode)."""

    def __init__(self, pid: int, status_file: Path, alive: bool) -> None:
        self.pid = pid
        self.status_file = status_file
        self.returncode: int | None = None
        self._fd: int | None = None
        if alive:
            with contextlib.suppress(OSError):  # gone meanwhile: ended
                self._fd = os.pidfd_open(pid)
        if self._fd is None:
            self._finish()  # never signal a pid that may have been reused

    def _ended(self, timeout: float | None) -> bool:
        if self._fd is None:
            return True
        readable, _w, _x = select.select([self._fd], [], [], timeout)
        return bool(readable)

    def _finish(self) -> int:
        if self.returncode is None:
            try:
                status = int(self.status_file.read_text())
                self.returncode = os.waitstatus_to_exitcode(status)
            except (OSError, ValueError):
                self.returncode = -9  # killed before it could say (destroyed)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        return self.returncode

    def poll(self) -> int | None:
        return self._finish() if self.returncode is not None or self._ended(0) else None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._ended(timeout):
            raise subprocess.TimeoutExpired("container", timeout or 0)
        return self._finish()


@dataclass(frozen=True)
class ContainerConfig:
    """The agent flags the containerizer follows."""

    isolation: frozenset[str] = frozenset()
    cgroups_root: str = "mesos"
    enable_cfs: bool = False
    image_providers: frozenset[str] = frozenset()
    docker_registry: Path | None = None
    sandbox_directory: str = iso.DEFAULT_SANDBOX_DIRECTORY
    disk_watch_seconds: float = 15.0
    enforce_disk_quota: bool = False


@dataclass
class Termination:
    """How a container ended: its raw wait status and the limitation that ended it, if any."""

    returncode: int  # Popen style: negative = killed by that signal
    reason: str | None = None
    message: str | None = None

    @property
    def wait_status(self) -> int:
        """The raw wait status Mesos reports (exit code << 8, or the signal number)."""
        return -self.returncode if self.returncode < 0 else self.returncode << 8


@dataclass
class Container:
    """One container of an agent."""

    agent_id: str
    container_id: str
    parent: str | None
    sandbox: Path
    framework_id: str | None = None
    executor_id: str | None = None
    executor_name: str | None = None
    group: str | None = None  # cgroup name under the root, None without cgroups
    runtime: Path | None = None  # its own folder (rootfs copy)
    proc: subprocess.Popen | None = None
    limits: iso.Limits | None = None
    cpus: float = 0.0
    disk_mb: float = 0.0
    mem_hard_bytes: int = 0
    limitation: tuple[str, str] | None = None  # (reason, message)
    termination: Termination | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        """What a restarted agent needs to adopt the container (its runtime folder's
        container.json)."""
        assert self.proc is not None
        return {"agent_id": self.agent_id, "container_id": self.container_id,
                "parent": self.parent, "sandbox": str(self.sandbox),
                "framework_id": self.framework_id, "executor_id": self.executor_id,
                "executor_name": self.executor_name, "group": self.group,
                "pid": self.proc.pid, "start_time": start_time(self.proc.pid),
                "cpus": self.cpus, "disk_mb": self.disk_mb,
                "mem_hard_bytes": self.mem_hard_bytes}


def _check_program(program: str, path: str) -> None:
    """Raise FileNotFoundError when ``program`` cannot be executed (checked before the
    container starts, so a bad command is a launch failure, not an exited container)."""
    if "/" in program:
        if not os.access(program, os.X_OK) or os.path.isdir(program):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    elif shutil.which(program, path=path) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _volume_mounts(container_info: dict, sandbox: Path, parent: Container | None,
                   rootfs: bool, sandbox_directory: str) -> list[tuple[str, str]]:
    """(host source, target) bind mounts for ContainerInfo.volumes (SANDBOX_PATH, host_path).

    With an image, targets are paths inside the rootfs; without one, host paths (a relative
    ``container_path`` is under the container's sandbox in both cases)."""
    mounts = []
    for volume in container_info.get("volumes") or []:
        target = volume.get("container_path")
        if not isinstance(target, str) or not target:
            raise ContainerError("a volume needs a container_path")
        source_info = volume.get("source") or {}
        if source_info.get("type") == "SANDBOX_PATH":
            spec = source_info.get("sandbox_path") or {}
            base = sandbox
            if spec.get("type") == "PARENT":
                if parent is None:
                    raise ContainerError("a PARENT sandbox_path volume needs a nested "
                                         "container")
                base = parent.sandbox
            rel = spec.get("path") or ""
            if rel.startswith("/") or ".." in Path(rel).parts:
                raise ContainerError(f"sandbox_path {rel!r} must stay inside the sandbox")
            source = base / rel
            source.mkdir(parents=True, exist_ok=True)
        elif volume.get("host_path"):
            source = Path(volume["host_path"])
        else:
            raise ContainerError("only SANDBOX_PATH and host_path volumes are supported")
        if target.startswith("/"):
            if not rootfs:
                raise ContainerError(f"absolute container_path {target!r} needs an image")
            mounts.append((str(source), target))
        elif ".." in Path(target).parts:
            raise ContainerError(f"container_path {target!r} must stay inside the sandbox")
        else:
            mounts.append((str(source), f"{sandbox_directory}/{target}" if rootfs
                           else str(sandbox / target)))
    return mounts


class Containerizer:
    """Containers of every agent in this process."""

    def __init__(self, config: ContainerConfig, work_dir: Path) -> None:
        self.config = config
        self.work_dir = work_dir
        self.lock = threading.RLock()
        self.containers: dict[str, Container] = {}
        self.cgroups: Cgroups | None = None
        controllers: list[str] = []
        if iso.CGROUPS_CPU in config.isolation:
            controllers += ["cpu", "cpuacct"]
        if iso.CGROUPS_MEM in config.isolation:
            controllers.append("memory")
        if controllers:
            self.cgroups = Cgroups.discover(config.cgroups_root, controllers)
        self.images = ImageStore(config.docker_registry, work_dir / "provisioner" / "images")
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- capability checks -----------------------------------------------------------------
    @staticmethod
    def check_host(config: ContainerConfig) -> None:
        """Raise ContainerError (one line) when an asked-for isolator cannot work here."""
        kinds = []
        if iso.NAMESPACES_PID in config.isolation:
            kinds.append("pid")
        if iso.FILESYSTEM_LINUX in config.isolation:
            kinds.append("mount")
        if kinds:
            probe = subprocess.run([sys.executable, "-I", str(LAUNCHER), "--probe",
                                    ",".join(kinds)], capture_output=True, text=True)
            if probe.returncode != 0:
                name = iso.NAMESPACES_PID if "pid" in kinds else iso.FILESYSTEM_LINUX
                raise ContainerError(f"isolator {name} is not available on this machine: "
                                     f"{probe.stdout.strip() or probe.stderr.strip()}")

    @property
    def namespaces(self) -> bool:
        return bool({iso.NAMESPACES_PID, iso.FILESYSTEM_LINUX} & self.config.isolation)

    # -- launch ----------------------------------------------------------------------------
    def launch(self, *, agent_id: str, container_id: str, sandbox: Path, argv: list[str],
               env: dict[str, str], resources: list[list[dict] | None],
               command_executor: bool, command: dict | None = None,
               container_info: dict | None = None, parent: str | None = None,
               framework_id: str | None = None, executor_id: str | None = None,
               executor_name: str | None = None, recoverable: bool = False) -> Container:
        """Start a container running ``argv``; raises ContainerError with Mesos's words.

        A ``recoverable`` container (of a checkpointing framework) outlives the agent: its
        launcher records its status and its runtime folder what is needed to adopt it."""
        container_info = container_info or {}
        with self.lock:
            parent_c = self.containers.get(parent) if parent else None
            if parent and (parent_c is None or parent_c.ended.is_set()):
                raise ContainerError(f"Parent container {parent} is not running")
            if container_id in self.containers:
                raise ContainerError(f"Container {container_id} already exists")
            c = Container(agent_id, container_id, parent, sandbox, framework_id, executor_id,
                          executor_name)
            self.containers[container_id] = c
        try:
            self._start(c, parent_c, argv, env, resources, command_executor, command or {},
                        container_info, recoverable)
        except FileNotFoundError:
            # A missing program fails as it did without a container: the caller's OSError.
            self._cleanup(c)
            with self.lock:
                self.containers.pop(container_id, None)
            raise
        except (ContainerError, ImageError, CgroupError, OSError) as exc:
            self._cleanup(c)
            with self.lock:
                self.containers.pop(container_id, None)
            text = str(exc) if not isinstance(exc, OSError) or isinstance(
                exc, CgroupError) else (exc.strerror or str(exc))
            raise ContainerError(f"Failed to launch container: {text}") from None
        self._ensure_monitor()
        return c

    def _start(self, c: Container, parent: Container | None, argv: list[str],
               env: dict[str, str], resources: list[list[dict] | None],
               command_executor: bool, command: dict, info: dict, recoverable: bool) -> None:
        image = ((info.get("mesos") or {}).get("image") or {}) if info else {}
        if info and info.get("type", "MESOS") != "MESOS":
            raise ContainerError(f"ContainerInfo type {info.get('type')} is not supported "
                                 "(only MESOS)")
        rootfs: Path | None = None
        cwd = str(c.sandbox)
        env = dict(env)
        # Its runtime folder marks the container as this agent's (see remove_orphans).
        c.runtime = self.work_dir / "containers" / c.container_id
        c.runtime.mkdir(parents=True, exist_ok=True)
        if image:
            if image.get("type") != "DOCKER" or not (image.get("docker") or {}).get("name"):
                raise ContainerError("only DOCKER images with a name are supported")
            if "docker" not in self.config.image_providers:
                raise ContainerError("the agent runs without --image_providers=docker")
            cached, config, _hit = self.images.get(image["docker"]["name"])
            rootfs = c.runtime / "rootfs"
            ImageStore.copy_rootfs(cached, rootfs)
            argv, cwd = self._image_command(argv, command, config, env)
        if rootfs is None:
            _check_program(argv[0], env.get("PATH", os.defpath))
        c.sandbox.mkdir(parents=True, exist_ok=True)
        mounts = _volume_mounts(info, c.sandbox, parent, rootfs is not None,
                                self.config.sandbox_directory)
        if rootfs is not None:
            mounts.insert(0, (str(c.sandbox), self.config.sandbox_directory))
        procs: list[str] = []
        if self.cgroups is not None:
            c.group = (f"{parent.group}/mesos/{c.container_id}"
                       if parent is not None and parent.group else c.container_id)
            procs = self.cgroups.create(c.group)
            self.resize(c, resources, command_executor=command_executor)
        use_ns = self.namespaces or rootfs is not None
        if mounts and not use_ns:
            # Without a mount namespace Mesos's sandbox_path volumes are symlinks.
            for source, target in mounts:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                Path(target).symlink_to(source)
            mounts = []
        spec = {"procs": procs, "pid_ns": iso.NAMESPACES_PID in self.config.isolation,
                "mount_ns": use_ns, "rootfs": str(rootfs) if rootfs else None,
                "mounts": mounts, "cwd": cwd, "argv": argv}
        if recoverable:
            spec["status_file"] = str(c.runtime / "status")
        if not procs and not use_ns and not recoverable:
            launch_argv = argv
        else:
            import json

            launch_argv = [sys.executable, "-I", str(LAUNCHER), json.dumps(spec)]
        with open(c.sandbox / "stdout", "ab") as out, open(c.sandbox / "stderr", "ab") as err:
            c.proc = subprocess.Popen(launch_argv, cwd=c.sandbox, env=env,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                      start_new_session=True)
        if recoverable:
            (c.runtime / "container.json").write_text(json.dumps(c.to_json()))

    def adopt(self, container_id: str) -> Container | None:
        """Take back a container an earlier run of this agent launched (agent recovery);
        None when it is not known or its launcher is no longer the process it was."""
        runtime = self.work_dir / "containers" / container_id
        try:
            doc = json.loads((runtime / "container.json").read_text())
        except (OSError, ValueError):
            return None
        status_file = runtime / "status"
        if start_time(doc["pid"]) != doc["start_time"] and not status_file.exists():
            return None
        c = Container(doc["agent_id"], container_id, doc["parent"], Path(doc["sandbox"]),
                      doc["framework_id"], doc["executor_id"], doc["executor_name"],
                      doc["group"], runtime, cpus=doc["cpus"], disk_mb=doc["disk_mb"],
                      mem_hard_bytes=doc["mem_hard_bytes"])
        alive = start_time(doc["pid"]) == doc["start_time"]
        c.proc = AdoptedProcess(doc["pid"], status_file, alive)  # type: ignore[assignment]
        with self.lock:
            self.containers[container_id] = c
        self._ensure_monitor()
        log.info("container recovered", extra={"container": container_id, "alive": alive})
        return c

    def _image_command(self, argv: list[str], command: dict, config, env: dict[str, str]
                       ) -> tuple[list[str], str]:
        """Apply an image's Env, WorkingDir, Entrypoint and Cmd as docker/runtime does."""
        for item in config.env:
            name, sep, value = item.partition("=")
            if sep:
                env[name] = value
        for var in (command.get("environment") or {}).get("variables") or []:
            if isinstance(var, dict) and isinstance(var.get("name"), str):
                env[var["name"]] = str(var.get("value", ""))  # the task's own win
        env["MESOS_SANDBOX"] = self.config.sandbox_directory
        shell = command.get("shell", True) if command else True
        args = [str(a) for a in command.get("arguments") or []] if command else []
        built, error = iso.image_command(args, bool(shell), bool(command.get("value")),
                                         list(config.entrypoint), list(config.cmd))
        if error:
            raise ContainerError(error)
        cwd = config.working_dir or self.config.sandbox_directory
        return (built or argv), cwd

    # -- resources and limits --------------------------------------------------------------
    def resize(self, c: Container, resources: list[list[dict] | None], *,
               command_executor: bool) -> None:
        """Set the container's cgroup limits from its (executor + tasks) resources.

        As Mesos's mem isolator, the hard memory limit is only ever raised (lowering it could
        OOM-kill a busy container); the soft limit follows the resources both ways."""
        if self.cgroups is None or c.group is None:
            return
        cpus, mem, disk = iso.container_size(resources, command_executor=command_executor)
        c.cpus, c.disk_mb = cpus, disk
        if cpus <= 0 and mem <= 0:
            return  # a nested container without resources shares its parent's limits
        limits = iso.Limits.of(cpus, mem, enable_cfs=self.config.enable_cfs)
        c.limits = limits
        cg = self.cgroups
        if "cpu" in cg.roots and cpus > 0:
            cg.write("cpu", c.group, "cpu.shares", limits.cpu_shares)
            cg.write("cpu", c.group, "cpu.cfs_period_us", iso.CPU_CFS_PERIOD_US)
            cg.write("cpu", c.group, "cpu.cfs_quota_us", limits.cfs_quota_us)
        if "memory" in cg.roots and mem > 0:
            cg.write("memory", c.group, "memory.soft_limit_in_bytes", limits.mem_limit_bytes)
            if limits.mem_limit_bytes > c.mem_hard_bytes:
                cg.write("memory", c.group, "memory.limit_in_bytes", limits.mem_limit_bytes)
                c.mem_hard_bytes = limits.mem_limit_bytes

    def update(self, container_id: str, resources: list[list[dict] | None], *,
               command_executor: bool) -> None:
        """Resize a running container (tasks started or ended); errors are logged."""
        c = self.containers.get(container_id)
        if c is None or c.ended.is_set():
            return
        try:
            self.resize(c, resources, command_executor=command_executor)
        except CgroupError as exc:
            log.warning("cannot resize container", extra={"container": container_id,
                                                           "error": str(exc)})

    # -- ending ----------------------------------------------------------------------------
    def wait(self, container_id: str) -> Termination:
        """Block until the container's process exits, then destroy what is left of it
        (its other processes, cgroups, rootfs copy) and return how it ended."""
        c = self.containers[container_id]
        assert c.proc is not None
        code = c.proc.wait()
        with self.lock:
            if c.termination is not None:
                return c.termination
            self._check_oom(c)
        self._destroy_nested(c)
        self._cleanup(c)
        with self.lock:
            reason, message = c.limitation or (None, None)
            c.termination = Termination(code, reason, message)
            c.ended.set()
        log.info("container ended", extra={"container": container_id, "code": code,
                                           "reason": reason})
        return c.termination

    def _destroy_nested(self, c: Container) -> None:
        for child in [x for x in self.containers.values() if x.parent == c.container_id]:
            self.kill(child.container_id, 9)

    def _cleanup(self, c: Container) -> None:
        if self.cgroups is not None and c.group is not None:
            self.cgroups.kill_all(c.group)
            self.cgroups.remove(c.group)
        if c.runtime is not None:
            shutil.rmtree(c.runtime, ignore_errors=True)

    def kill(self, container_id: str, sig: int = 9) -> bool:
        """Signal a container's processes (SIGKILL destroys it); False when unknown."""
        c = self.containers.get(container_id)
        if c is None:
            return False
        if c.ended.is_set() or c.proc is None or c.proc.poll() is not None:
            return True
        if sig == 9 and self.cgroups is not None and c.group is not None:
            self.cgroups.kill_all(c.group)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.proc.pid, sig)
        return True

    def destroy_for(self, c: Container, reason: str, message: str) -> None:
        """End a container because of a limitation (reported with its termination)."""
        with self.lock:
            if c.limitation is None:
                c.limitation = (reason, message)
        log.warning("container limitation", extra={"container": c.container_id,
                                                    "reason": reason, "detail": message})
        self.kill(c.container_id, 9)

    def remove(self, container_id: str) -> bool:
        """Forget an ended nested container and remove its sandbox (REMOVE_CONTAINER)."""
        with self.lock:
            c = self.containers.get(container_id)
            if c is None or not c.ended.is_set():
                return False
            del self.containers[container_id]
        shutil.rmtree(c.sandbox, ignore_errors=True)
        return True

    def forget(self, container_id: str) -> None:
        """Drop an ended executor container from the table (its sandbox stays, as in Mesos)."""
        with self.lock:
            c = self.containers.get(container_id)
            if c is not None and c.ended.is_set():
                del self.containers[container_id]
                for child in [k for k, x in self.containers.items()
                              if x.parent == container_id and x.ended.is_set()]:
                    del self.containers[child]

    # -- limitation monitor ----------------------------------------------------------------
    def _ensure_monitor(self) -> None:
        with self.lock:
            if self._monitor is None and (
                    (self.cgroups is not None and "memory" in self.cgroups.roots)
                    or (iso.DISK_DU in self.config.isolation and self.config.enforce_disk_quota)):
                self._monitor = threading.Thread(target=self._watch, daemon=True,
                                                 name="container-monitor")
                self._monitor.start()

    def _check_oom(self, c: Container) -> None:
        if (c.limitation is None and self.cgroups is not None and c.group is not None
                and "memory" in self.cgroups.roots and c.mem_hard_bytes):
            oom = self.cgroups.read_keys("memory", c.group, "memory.oom_control")
            if oom.get("oom_kill", 0) > 0 or oom.get("under_oom", 0) > 0:
                limit = self.cgroups.read_int("memory", c.group, "memory.limit_in_bytes")
                peak = self.cgroups.read_int("memory", c.group, "memory.max_usage_in_bytes")
                c.limitation = ("REASON_CONTAINER_LIMITATION_MEMORY",
                                iso.memory_limitation_message(limit or c.mem_hard_bytes, peak))

    def _watch(self) -> None:
        next_disk = 0.0
        while not self._stop.wait(0.5):
            try:
                next_disk = self._watch_once(next_disk)
            except Exception:  # the monitor must outlive any one container's oddity
                log.exception("container monitor error")

    def _watch_once(self, next_disk: float) -> float:
        """One round: OOM checks every time, disk/du checks when due."""
        with self.lock:
            live = [c for c in self.containers.values() if not c.ended.is_set()]
        for c in live:
            with self.lock:
                self._check_oom(c)
                hit = c.limitation
            if hit is not None:
                self.destroy_for(c, *hit)
        now = time.monotonic()
        if (iso.DISK_DU in self.config.isolation and self.config.enforce_disk_quota
                and now >= next_disk):
            next_disk = now + self.config.disk_watch_seconds
            for c in live:
                if c.parent is None and c.disk_mb > 0:
                    used = disk_usage(c.sandbox)
                    quota = int(c.disk_mb * 1024 * 1024)
                    if used > quota:
                        self.destroy_for(c, "REASON_CONTAINER_LIMITATION_DISK",
                                         iso.disk_limitation_message(quota, used))
        return next_disk

    # -- statistics ------------------------------------------------------------------------
    def statistics(self, c: Container) -> dict:
        """ResourceStatistics (v1 JSON) of a container, from its cgroups."""
        stats: dict = {"timestamp": time.time()}
        if c.cpus:
            stats["cpus_limit"] = round(c.cpus, 3)
        cg = self.cgroups
        if cg is not None and c.group is not None and not c.ended.is_set():
            acct = cg.read_keys("cpuacct", c.group, "cpuacct.stat")
            if acct:
                stats["cpus_user_time_secs"] = acct.get("user", 0) / USER_HZ
                stats["cpus_system_time_secs"] = acct.get("system", 0) / USER_HZ
            throttle = cg.read_keys("cpu", c.group, "cpu.stat")
            if throttle:
                stats["cpus_nr_periods"] = throttle.get("nr_periods", 0)
                stats["cpus_nr_throttled"] = throttle.get("nr_throttled", 0)
                stats["cpus_throttled_time_secs"] = throttle.get("throttled_time", 0) / 1e9
            mem = cg.read_keys("memory", c.group, "memory.stat")
            if mem:
                stats["mem_rss_bytes"] = mem.get("total_rss", mem.get("rss", 0))
                stats["mem_cache_bytes"] = mem.get("total_cache", mem.get("cache", 0))
                stats["mem_total_bytes"] = cg.read_int("memory", c.group,
                                                       "memory.usage_in_bytes") or 0
                stats["mem_limit_bytes"] = cg.read_int("memory", c.group,
                                                       "memory.limit_in_bytes") or 0
                stats["mem_soft_limit_bytes"] = cg.read_int(
                    "memory", c.group, "memory.soft_limit_in_bytes") or 0
            stats["processes"] = len(cg.pids(c.group))
        if c.disk_mb:
            stats["disk_limit_bytes"] = int(c.disk_mb * 1024 * 1024)
        if iso.DISK_DU in self.config.isolation:
            stats["disk_used_bytes"] = disk_usage(c.sandbox)
        return stats

    def of_agent(self, agent_id: str) -> list[Container]:
        """The agent's live containers, executors first."""
        with self.lock:
            found = [c for c in self.containers.values()
                     if c.agent_id == agent_id and not c.ended.is_set()]
        return sorted(found, key=lambda c: (c.parent is not None, c.started))

    # -- process lifetime ------------------------------------------------------------------
    def remove_orphans(self) -> list[str]:
        """Destroy containers an earlier run of this agent left (known by their runtime
        folder under this agent's work dir); groups of other agents sharing the root stay."""
        runtime = self.work_dir / "containers"
        mine = {p.name for p in runtime.iterdir()} if runtime.is_dir() else set()
        orphans = sorted(mine - set(self.containers))
        if orphans:
            log.warning("destroying orphan containers", extra={"count": len(orphans)})
        for name in orphans:
            if self.cgroups is not None:
                self.cgroups.kill_all(name)
                self.cgroups.remove(name)
            shutil.rmtree(runtime / name, ignore_errors=True)
        return orphans

    def shutdown(self) -> None:
        """Destroy every container and remove the agent's cgroups (agent exit)."""
        self._stop.set()
        with self.lock:
            every = list(self.containers.values())
        for c in every:
            self.kill(c.container_id, 9)
        for c in every:
            if c.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=2)
            self._cleanup(c)
        if self.cgroups is not None:
            self.remove_orphans()
            self.cgroups.remove_root()


def disk_usage(folder: Path) -> int:
    """Bytes used by the files under ``folder`` (what ``du`` counts: allocated blocks)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total
