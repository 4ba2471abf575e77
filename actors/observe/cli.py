"""Verbs of the observability role: `clusterjobs mesos-exporter` and `clusterjobs report`."""

from __future__ import annotations

from actors.observe import mesos_exporter, report

OPERATOR_ERRORS: tuple[type[BaseException], ...] = (mesos_exporter.ExporterError,
                                                    report.ReportError)


def add_parser(commands) -> None:
    mesos_exporter.add_parser(commands)
    report.add_parser(commands)
