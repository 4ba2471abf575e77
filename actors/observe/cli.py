"""Verbs of the observability role: `clusterjobs mesos-exporter`."""

from __future__ import annotations

from actors.observe import mesos_exporter

OPERATOR_ERRORS: tuple[type[BaseException], ...] = (mesos_exporter.ExporterError,)


def add_parser(commands) -> None:
    mesos_exporter.add_parser(commands)
