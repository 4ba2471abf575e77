"""The Mesos service of the local stack: the emulator's masters and agents (actors/local/).

Starts N masters (each ``python -m actors.local.master``), then M agents (``python -m
actors.local.agent_main``, one agent per process, or groups of them beyond 8 agents), waits
until a leader is elected through ZooKeeper and every agent is registered with
it, and returns the ``mesos`` (zk://…/mesos), ``mesos_masters`` and ``mesos_agents`` endpoints.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from actors.local.containerizer import busybox
from actors.local.containerizer.isolation import FILESYSTEM_LINUX, IsolationError, parse_isolation
from actors.names import numbered_account
from actors.stack.context import StackContext
from actors.stack.errors import StackError

ZK_PATH = "/mesos"
SEPARATE_AGENTS_MAX = 8
AGENTS_PER_PROCESS = 25  # beyond SEPARATE_AGENTS_MAX agents, grouped so 100 fit on 2 cores


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read().decode("utf-8"))


def leader_state(masters: Sequence[str]) -> dict | None:
    """/master/state of the elected master among ``masters`` (None when none leads).

    Each master's own /metrics/snapshot says whether it leads (master/elected); /master/state
    itself redirects to the leader, as Mesos does, so it cannot tell them apart."""
    for url in masters:
        try:
            if _get_json(f"{url}/metrics/snapshot").get("master/elected") != 1:
                continue
            return _get_json(f"{url}/master/state")
        except OSError:
            continue
    return None


def container_flags(isolation: str, home: Path, name: str) -> list[str]:
    """The containerizer flags of one agent process: the stack's isolation, a cgroups root
    of its own (unique per stack folder and process, so no agent ever touches another's
    groups), and the stack's image registry (with a busybox image) when images can run."""
    try:
        chosen = parse_isolation(isolation)
    except IsolationError as exc:
        raise StackError(str(exc)) from None
    if not chosen:
        return ["--isolation", "none"]
    tag = hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:8]
    flags = ["--isolation", isolation, "--cgroups_root", f"clusterjobs-{tag}-{name}",
             "--cgroups_enable_cfs", "--enforce_container_disk_quota",
             "--container_disk_watch_interval", "2"]
    if FILESYSTEM_LINUX in chosen:
        registry = home / "images"
        if not (registry / "busybox:latest.tar").exists():
            try:
                busybox.build(registry)
            except busybox.BusyboxMissing as exc:
                raise StackError(str(exc)) from None
        flags += ["--image_providers", "docker", "--docker_registry", str(registry)]
    return flags


def start(ctx: StackContext, *, zk_path: str = ZK_PATH, prefix: str = "mesos",
          master_flags: Sequence[str] = (), agent_flags: Sequence[str] = (),
          agents_per_process: int | None = None) -> dict[str, object]:
    """Start the masters and agents; ``prefix`` names their processes and folders.

    Tests pass a private ``zk_path``/``prefix`` (and short timeouts in ``*_flags``) to run a
    mini-cluster of their own on the session's ZooKeeper. Each agent gets its own process up
    to ``SEPARATE_AGENTS_MAX`` agents; beyond that they are grouped 25 to a process (each still
    with its own id, port, resources and sandboxes) so that 100 agents fit on 2 cores."""
    if agents_per_process is None:
        agents_per_process = (1 if ctx.options.agents <= SEPARATE_AGENTS_MAX
                              else AGENTS_PER_PROCESS)
    zk = ctx.endpoints.get("zookeeper")
    if not zk:
        raise StackError("mesos needs ZooKeeper, which is not up")
    zk_url = f"zk://{zk}{zk_path}"
    opts = ctx.options
    accounts = list(opts.agent_accounts) or [numbered_account("worker", i + 1)
                                             for i in range(opts.agents)]
    if len(accounts) != opts.agents:
        raise StackError(f"{len(accounts)} agent accounts given for {opts.agents} agents")
    home = ctx.service_dir(prefix)
    py = sys.executable
    masters: list[str] = []
    procs = []
    taken: set[int] = set()

    def port() -> int:
        # ctx.port() may hand out a port twice when many are asked for before any is bound.
        while (found := ctx.port()) in taken:
            pass
        taken.add(found)
        return found

    for i in range(opts.masters):
        port_ = port()
        name = f"{prefix}-master-{i + 1}"
        procs.append((name, ctx.spawn(name, [py, "-m", "actors.local.master", "--zk", zk_url,
                                              "--port", str(port_), *master_flags])))
        masters.append(f"http://127.0.0.1:{port_}")
    for name, proc in procs:
        url = masters[procs.index((name, proc))]
        ctx.wait_http(name, f"{url}/health", proc)
    agents: list[str] = []
    groups = [list(range(i, min(i + agents_per_process, opts.agents)))
              for i in range(0, opts.agents, agents_per_process)]
    for group in groups:
        ports = [port() for _ in group]
        name = f"{prefix}-agent-{group[0] + 1}" + (
            f"-{group[-1] + 1}" if len(group) > 1 else "")
        argv = [py, "-m", "actors.local.agent_main", "--zk", zk_url,
                "--port", ",".join(map(str, ports)),
                "--account", ",".join(accounts[i] for i in group),
                "--index-base", str(group[0]),
                "--work-dir", str(home / "agents"),
                *container_flags(opts.isolation, home, name), *agent_flags]
        procs.append((name, ctx.spawn(name, argv)))
        agents.extend(f"http://127.0.0.1:{p}" for p in ports)

    dead: list[str] = []

    def ready() -> bool:
        dead.extend(name for name, proc in procs if proc.poll() is not None)
        if dead:
            return True  # stop waiting; reported below (wait_until swallows exceptions)
        state = leader_state(masters)
        return state is not None and len(state.get("slaves", [])) >= opts.agents

    ctx.wait_until(f"{prefix}-master-1", ready, what="with a leader and every agent registered")
    if dead:
        raise StackError(f"{dead[0]} exited while starting", ctx.log_path(dead[0]))
    return {"mesos": zk_url, "mesos_masters": masters, "mesos_agents": agents}
