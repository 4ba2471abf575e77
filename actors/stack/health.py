"""Probes that ask each running service a real question (not just "is the pid alive")."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable

Probe = Callable[[object], str]


def _get_json(url: str, timeout: float = 5) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def zookeeper(endpoint: object) -> str:
    host, port = str(endpoint).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        sock.sendall(b"srvr")
        reply = sock.recv(4096).decode(errors="replace")
    mode = next((ln.split(":", 1)[1].strip() for ln in reply.splitlines()
                 if ln.startswith("Mode:")), "?")
    return f"mode {mode}"


def webhdfs(endpoint: object) -> str:
    query = "qry=Hadoop:service=NameNode,name=FSNamesystemState"
    beans = _get_json(f"{endpoint}/jmx?{query}")["beans"]  # type: ignore[index]
    live = beans[0]["NumLiveDataNodes"]
    root = _get_json(f"{endpoint}/webhdfs/v1/?op=GETFILESTATUS")["FileStatus"]  # type: ignore[index]
    if live < 1:
        raise RuntimeError("no live DataNode")
    return f"{live} live DataNode(s), / is a {root['type'].lower()}"


def nodeos(endpoint: object) -> str:
    info = _get_json(f"{endpoint}/v1/chain/get_info")
    return f"head block {info['head_block_num']}, chain {info['chain_id'][:12]}..."  # type: ignore[index]


def prometheus(endpoint: object) -> str:
    with urllib.request.urlopen(f"{endpoint}/-/ready", timeout=5) as resp:
        resp.read()
    targets = _get_json(f"{endpoint}/api/v1/targets")["data"]["activeTargets"]  # type: ignore[index]
    return f"ready, {len(targets)} scrape target(s)"


def mesos(endpoint: object, masters: object = None) -> str:
    # Each master's own metrics say whether it leads (/master/state of a non-leader redirects
    # to the leader, as in Mesos, so it cannot tell which URL leads).
    for url in masters or []:  # type: ignore[attr-defined]
        try:
            metrics = _get_json(f"{url}/metrics/snapshot")
        except OSError:
            continue
        if metrics.get("master/elected") == 1:  # type: ignore[union-attr]
            agents = int(metrics.get("master/slaves_active", 0))  # type: ignore[union-attr]
            return f"leader {url}, {agents} agent(s) registered"
    raise RuntimeError("no master says it leads")


def check_all(endpoints: dict) -> dict[str, str]:
    """One line per service: its answer, or ``FAILED: why``."""
    probes: dict[str, Callable[[], str]] = {
        "zookeeper": lambda: zookeeper(endpoints["zookeeper"]),
        "webhdfs": lambda: webhdfs(endpoints["webhdfs"]),
        "nodeos": lambda: nodeos(endpoints["nodeos"]),
        "prometheus": lambda: prometheus(endpoints["prometheus"]),
        "mesos": lambda: mesos(endpoints["mesos"], endpoints.get("mesos_masters")),
    }
    results = {}
    for name, probe in probes.items():
        if name not in endpoints:
            results[name] = "FAILED: not started by this stack"
            continue
        try:
            results[name] = probe()
        except Exception as exc:
            results[name] = f"FAILED: {exc}"
    return results
