"""The registry of stack services and the order they start in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.stack.context import StackContext

#: A service's start function: starts its processes through ``ctx.spawn``, waits until they
#: answer, and returns the endpoints it adds to `stack status --json`.
StartFn = Callable[[StackContext], dict[str, object]]


@dataclass(frozen=True)
class Service:
    """One part of the local stack."""

    name: str
    start: StartFn
    after: tuple[str, ...] = ()  # services whose endpoints this one needs


def all_services() -> list[Service]:
    """Every service, in a valid start order (imports are lazy so one broken edge is local)."""
    from actors.stack import hdfs, mesos, nodeos, prometheus, sample, zookeeper

    return [
        Service("zookeeper", zookeeper.start),
        Service("hdfs", hdfs.start),
        Service("nodeos", nodeos.start),
        Service("prometheus", prometheus.start),
        Service("mesos", mesos.start, after=("zookeeper",)),
        Service("sample", sample.start, after=("nodeos", "hdfs", "mesos")),
    ]
