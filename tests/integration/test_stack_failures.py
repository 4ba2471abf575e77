"""A real service that cannot start is one line naming it and its log (no stack needed)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from actors.stack import zookeeper
from actors.stack.context import StackContext
from actors.stack.errors import StackError


def test_a_port_taken_before_the_service_binds_it_is_reported_with_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not zookeeper.ZK_JAR.exists():
        pytest.skip("ZooKeeper is not installed here")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ctx = StackContext(workdir=tmp_path)
        monkeypatch.setattr(ctx, "port", lambda: taken)
        with pytest.raises(StackError) as caught:
            zookeeper.start(ctx)
    assert "zookeeper exited with code" in str(caught.value)
    assert caught.value.log == tmp_path / "logs" / "zookeeper.log"
    assert "Address already in use" in caught.value.log.read_text()
