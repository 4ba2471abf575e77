"""ZooKeeper of the local stack, through kazoo."""

from __future__ import annotations

import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError


@pytest.fixture
def zk(stack: dict):
    client = KazooClient(hosts=stack["zookeeper"], timeout=10)
    client.start(timeout=15)
    yield client
    client.stop()
    client.close()


def test_create_read_update_delete(zk: KazooClient) -> None:
    zk.ensure_path("/clusterjobs-test")
    path = zk.create("/clusterjobs-test/node", b"one")
    assert zk.get(path)[0] == b"one"
    zk.set(path, b"two")
    data, stat = zk.get(path)
    assert data == b"two" and stat.version == 1
    with pytest.raises(NodeExistsError):
        zk.create(path, b"again")
    zk.delete(path)
    assert zk.exists(path) is None


def test_sequential_ephemeral_nodes_vanish_with_their_session(stack: dict, zk: KazooClient) -> None:
    zk.ensure_path("/clusterjobs-test/election")
    other = KazooClient(hosts=stack["zookeeper"], timeout=10)
    other.start(timeout=15)
    gone = threading.Event()
    created = other.create("/clusterjobs-test/election/json.info_", b"{}",
                           ephemeral=True, sequence=True)
    assert created.rsplit("_", 1)[1].isdigit() and len(created.rsplit("_", 1)[1]) == 10

    @zk.ChildrenWatch("/clusterjobs-test/election")
    def watch(children: list[str]) -> None:
        if not children:
            gone.set()

    other.stop()
    other.close()
    assert gone.wait(15), "the ephemeral node outlived its session"
