"""A missing program is one line that says what to install, and nothing is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.stack import prometheus, zookeeper
from actors.stack.context import StackContext
from actors.stack.errors import StackError


def test_zookeeper_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zookeeper, "ZK_JAR", tmp_path / "no-such" / "zookeeper.jar")
    ctx = StackContext(workdir=tmp_path)
    with pytest.raises(StackError) as caught:
        zookeeper.start(ctx)
    assert str(caught.value) == (
        f"ZooKeeper is not installed ({tmp_path}/no-such/zookeeper.jar missing; "
        "run deploy/local/install.sh or apt-get install zookeeper)")
    assert ctx.records == []


def test_prometheus_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus binary on this PATH
    ctx = StackContext(workdir=tmp_path)
    with pytest.raises(StackError) as caught:
        prometheus.start(ctx)
    assert str(caught.value) == ("Prometheus is not installed (run deploy/local/install.sh "
                                 "or apt-get install prometheus)")
    assert ctx.records == []

