"""The clusterjobs Grafana dashboard, built as code with Grafana's own SDK
(`grafana-foundation-sdk`) from the panels of :mod:`actors.observe.panels`.

`deploy/grafana/generate.py` writes it to `deploy/grafana/clusterjobs.json` (import that file in
Grafana, choosing the Prometheus data source when asked).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.builders import stat as gstat
from grafana_foundation_sdk.builders import timeseries as gts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from actors.observe.panels import PANELS, Panel

UID = "clusterjobs"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _panel(panel: Panel):
    builder = gstat.Panel() if panel.kind == "stat" else gts.Panel()
    builder = (builder.title(panel.title).unit(panel.unit).datasource(DATASOURCE)
               .height(8).span(8 if panel.kind == "timeseries" else 4))
    if panel.description:
        builder = builder.description(panel.description)
    if panel.kind == "timeseries":
        builder = builder.fill_opacity(10).line_width(1)
    for index, query in enumerate(panel.queries):
        builder = builder.with_target(
            gprom.Dataquery().expr(query.expr).legend_format(query.legend)
            .ref_id(chr(ord("A") + index)).datasource(DATASOURCE))
    return builder


def build(panels: Sequence[Panel] = PANELS) -> dict:
    """The dashboard as the JSON object Grafana imports."""
    board = (gdash.Dashboard("clusterjobs").uid(UID)
             .description("Queue, offers, launches, placement, task outcomes, accounting and "
                          "Mesos capacity of a clusterjobs cluster")
             .tags(["clusterjobs", "mesos"]).refresh("30s").time("now-6h", "now")
             .timezone("utc")
             .with_variable(gdash.DatasourceVariable("datasource").label("Prometheus")
                            .type("prometheus")))
    rows: list[str] = []
    for panel in panels:
        if panel.row not in rows:
            rows.append(panel.row)
            board = board.with_row(gdash.Row(panel.row))
        board = board.with_panel(_panel(panel))
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def render(panels: Sequence[Panel] = PANELS) -> str:
    """The dashboard file's text: stable key order, two-space indent, final newline."""
    return json.dumps(build(panels), indent=2, sort_keys=True) + "\n"


def queries(board: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel of a dashboard JSON object."""
    found = []
    for panel in board.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []) or []:
                if target.get("expr"):
                    found.append((inner.get("title", ""), target["expr"]))
    return found
