"""`clusterjobs report`'s pure parts: durations, steps, Grafana's rate interval, series from a
range query, and the page (a plot per panel with data, the empty ones named)."""

from __future__ import annotations

import math

import pytest

from actors.observe.panels import PANELS
from actors.observe.report import (
    Plot,
    ReportError,
    Series,
    page,
    parse_duration,
    rate_interval,
    step_for,
    to_series,
)


def test_durations() -> None:
    assert parse_duration("90s", "--since") == 90
    assert parse_duration("1.5h", "--since") == 5400
    for bad in ("", "10", "5x", "-1m", "0s"):
        with pytest.raises(ReportError, match="--since: expected a duration"):
            parse_duration(bad, "--since")


def test_step_and_rate_interval() -> None:
    assert step_for(0, 60) == 1
    assert step_for(0, 3600) == 15
    assert rate_interval(1, 1) == "4s"
    assert rate_interval(15, 60) == "75s"


def test_series_from_a_matrix() -> None:
    result = [{"metric": {"researcher": "alice"}, "values": [[1, "2"], [2, "NaN"], [3, "+Inf"]]},
              {"metric": {}, "values": [[1, "NaN"]]},
              {"metric": {"le": "1"}, "values": [[5, "0.5"]]}]
    series = to_series(result, "p95 {{researcher}}")
    assert series == [Series("p95 alice", ((1.0, 2.0),)), Series("p95", ((5.0, 0.5),))]
    assert all(math.isfinite(v) for s in series for _, v in s.points)


def test_page_plots_and_names_the_empty_panels() -> None:
    panels = PANELS[:3]
    plots = [Plot(panels[0], (Series("a", ((1.0, 1.0),)),)), Plot(panels[1], ()),
             Plot(panels[2], (), problem="Prometheus http://p: bad query")]
    text = page(plots, [b"\x89PNG fake", None, None], source="http://p", start=0, end=60,
                generated=60)
    assert text.count('<img class="plot"') == 1
    assert 'data-plots="1"' in text
    assert f"1 of 3 panels have data; without: {panels[1].title}, {panels[2].title}" in text
    assert "no data in this time range" in text and "bad query" in text
    assert "1970-01-01 00:00:00 UTC to 1970-01-01 00:01:00 UTC" in text
