"""Shared fixtures. Tests under tests/integration get the ``integration`` marker and use the
session-wide local stack: brought up once in a temporary folder and taken down at the end, or,
when CLUSTERJOBS_STACK names the folder of a running stack, that stack (fast iteration)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.stack import orchestrator
from actors.stack.context import STACK_ISOLATION, StackOptions

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (HERE / "integration") in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
    # Unit tests first: they fail in seconds, before the stack is brought up.
    items.sort(key=lambda item: item.get_closest_marker("integration") is not None)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The local stack's status (endpoints plus ``workdir``), started once per session."""
    reuse = os.environ.get("CLUSTERJOBS_STACK")
    if reuse:
        info = orchestrator.status(Path(reuse))
        assert info["healthy"], f"stack in {reuse} is not healthy: {info['down']}"
        yield info
        return
    workdir = tmp_path_factory.mktemp("stack")
    options = StackOptions(masters=int(os.environ.get("CLUSTERJOBS_TEST_MASTERS", "3")),
                           agents=int(os.environ.get("CLUSTERJOBS_TEST_AGENTS", "3")),
                           # The agents' isolators (issue 10); `none` to compare without.
                           isolation=os.environ.get("CLUSTERJOBS_TEST_ISOLATION",
                                                    STACK_ISOLATION))
    orchestrator.up(workdir, options)
    try:
        yield orchestrator.status(workdir)
    finally:
        orchestrator.down(workdir)


@pytest.fixture(scope="session")
def stack_dir(stack: dict) -> Path:
    """The folder of the running stack (for helpers such as Prometheus targets)."""
    return Path(stack["workdir"])
