"""Placeholder: the mesos service of the local stack (being written)."""

from __future__ import annotations

from actors.stack.context import StackContext


def start(ctx: StackContext) -> dict[str, object]:
    """Not written yet: adds no endpoint."""
    return {}
