"""Probes that ask each running service a real question (not just "is the pid alive").

Each answer says what is true now: a service that remembers a peer which has since died
(the NameNode counting a killed DataNode as live until its ~30 s recheck, a Mesos master that
still leads after ZooKeeper died) is checked against that peer itself.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

Probe = Callable[[object], str]

#: A DataNode heartbeats every second here (hdfs.py); past this many seconds without one
#: it is not counted, although the NameNode keeps calling it live for ~30 s.
DATANODE_SILENCE_SECONDS = 10


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


def live_datanodes(live_nodes: dict, silence: float = DATANODE_SILENCE_SECONDS
                   ) -> tuple[list[str], list[str]]:
    """(recent, silent) DataNode HTTP addresses from the NameNode's ``LiveNodes``: silent ones
    have not heartbeaten for more than ``silence`` seconds."""
    recent, silent = [], []
    for node in live_nodes.values():
        (recent if node.get("lastContact", 0) <= silence else silent).append(node["infoAddr"])
    return recent, silent


def webhdfs(endpoint: object) -> str:
    info = _get_json(f"{endpoint}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo")
    live_nodes = json.loads(info["beans"][0]["LiveNodes"] or "{}")  # type: ignore[index]
    recent, _silent = live_datanodes(live_nodes)
    answering = [addr for addr in recent if _datanode_answers(addr)]
    root = _get_json(f"{endpoint}/webhdfs/v1/?op=GETFILESTATUS")["FileStatus"]  # type: ignore[index]
    if not answering:
        told = f"; the NameNode still counts {len(live_nodes)} as live" if live_nodes else ""
        raise RuntimeError(f"no DataNode answers{told}")
    missing = len(live_nodes) - len(answering)
    extra = f" ({missing} more the NameNode counts do not answer)" if missing else ""
    return f"{len(answering)} live DataNode(s){extra}, / is a {root['type'].lower()}"


def _datanode_answers(address: str) -> bool:
    try:
        _get_json(f"http://{address}/jmx?qry=Hadoop:service=DataNode,name=DataNodeInfo", 3)
    except OSError:
        return False
    return True


def _zk_leader(zk_url: str) -> str:
    """host:port of the master ZooKeeper names as leader now (as frameworks find it)."""
    from kazoo.client import KazooClient
    from kazoo.handlers.threading import KazooTimeoutError

    from actors.local.zk import lowest, parse_zk_url

    hosts, path = parse_zk_url(zk_url)
    quiet = logging.getLogger("clusterjobs.health.kazoo")
    quiet.setLevel(logging.CRITICAL)  # its reconnect warnings would bury the answer
    client = KazooClient(hosts=hosts, timeout=3, logger=quiet)
    try:
        client.start(timeout=3)
    except KazooTimeoutError:
        raise RuntimeError(f"ZooKeeper at {hosts} does not answer: no leader can be "
                           f"found") from None
    try:
        children = client.get_children(path) if client.exists(path) else []
        leader = lowest(children)
        if leader is None:
            raise RuntimeError(f"no master is in the election at {zk_url}")
        data, _stat = client.get(f"{path}/{leader}")
    finally:
        client.stop()
        client.close()
    address = json.loads(data)["address"]
    return f"{address['ip']}:{address['port']}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=3) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


def mesos(endpoint: object, agents: Sequence[str] = ()) -> str:
    # The leader as a framework finds it (ZooKeeper), then that master's own word, then
    # every agent asked directly: a master keeps an agent registered for 75 s after it dies.
    leader = f"http://{_zk_leader(str(endpoint))}"
    metrics = _get_json(f"{leader}/metrics/snapshot")
    if metrics.get("master/elected") != 1:  # type: ignore[union-attr]
        raise RuntimeError(f"ZooKeeper names {leader} as leader but it does not say it leads")
    registered = int(metrics.get("master/slaves_active", 0))  # type: ignore[union-attr]
    if not agents:
        return f"leader {leader}, {registered} agent(s) registered"
    with ThreadPoolExecutor(max_workers=8) as pool:
        answering = sum(pool.map(_answers, agents))
    if answering < len(agents):
        raise RuntimeError(f"leader {leader}, {registered} agent(s) registered, but only "
                           f"{answering} of the stack's {len(agents)} agents answer")
    return f"leader {leader}, {registered} agent(s) registered, {answering} answering"


def check_all(endpoints: dict) -> dict[str, str]:
    """One line per service: its answer, or ``FAILED: why``."""
    probes: dict[str, Callable[[], str]] = {
        "zookeeper": lambda: zookeeper(endpoints["zookeeper"]),
        "webhdfs": lambda: webhdfs(endpoints["webhdfs"]),
        "nodeos": lambda: nodeos(endpoints["nodeos"]),
        "prometheus": lambda: prometheus(endpoints["prometheus"]),
        "mesos": lambda: mesos(endpoints["mesos"], endpoints.get("mesos_agents") or ()),
    }
    results = {}
    for name, probe in probes.items():
        if name not in endpoints:
            results[name] = "FAILED: not started by this stack"
            continue
        try:
            results[name] = probe()
        except Exception as exc:
            results[name] = f"FAILED: {' '.join(str(exc).split()) or type(exc).__name__}"
    return results


def nodeos(endpoint: object) -> str:
    info = _get_json(f"{endpoint}/v1/chain/get_info")
    return f"head block {info['head_block_num']}, chain {info['chain_id'][:12]}..."  # type: ignore[index]


def prometheus(endpoint: object) -> str:
    with urllib.request.urlopen(f"{endpoint}/-/ready", timeout=5) as resp:
        resp.read()
    targets = _get_json(f"{endpoint}/api/v1/targets")["data"]["activeTargets"]  # type: ignore[index]
    return f"ready, {len(targets)} scrape target(s)"
