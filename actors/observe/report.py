"""`clusterjobs report`: the dashboard's main panels as one static HTML page with plots, from
the same PromQL (actors/observe/panels.py) asked of Prometheus, for whoever has no Grafana.

    clusterjobs report --stack DIR [--out report.html] [--since 1h]
    clusterjobs report --prometheus URL [--out report.html] [--since 30m]

The page is self-contained (plots embedded as PNG data), so it can be mailed or archived.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from actors.observe.panels import PANELS, Panel, legend, resolve

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
POINTS = 240  # samples per series: enough for a smooth line, few enough for a quick page


class ReportError(Exception):
    """A bad flag or an unreachable / failing Prometheus (one line for the operator)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a plot: its legend and (unix time, value) points."""

    name: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Plot:
    """One panel's data: every query's series; ``problem`` when a query failed."""

    panel: Panel
    series: tuple[Series, ...]
    problem: str | None = None


# -- pure ------------------------------------------------------------------------------------------
def parse_duration(text: str, flag: str) -> float:
    """Seconds of a Prometheus-style duration ("90s", "30m", "1h"); raises ReportError."""
    found = DURATION.match(text.strip())
    if not found or float(found.group(1)) <= 0:
        raise ReportError(f"{flag}: expected a duration such as 30m or 1h, got {text!r}")
    return float(found.group(1)) * UNIT_SECONDS[found.group(2)]


def step_for(start: float, end: float) -> float:
    """Range-query step giving about POINTS samples, at least one second."""
    return max(1.0, math.ceil((end - start) / POINTS))


def rate_interval(scrape_seconds: float, step: float) -> str:
    """Grafana's $__rate_interval: max(4 scrape intervals, step + one scrape interval)."""
    return f"{max(4 * scrape_seconds, step + scrape_seconds):g}s"


def to_series(result: Sequence[dict], template: str) -> list[Series]:
    """A range query's matrix as Series (NaN and infinite samples dropped)."""
    out = []
    for item in result:
        points = tuple((float(t), float(v)) for t, v in item["values"]
                       if math.isfinite(float(v)))
        if points:
            name = legend(template, item.get("metric", {}))
            out.append(Series(re.sub(r"\{\{\w+\}\}", "", name).strip() or "value", points))
    return out


def _figure_html(plot: Plot, png: bytes | None) -> str:
    title = html.escape(plot.panel.title)
    note = html.escape(plot.panel.description)
    if png is None:
        why = html.escape(plot.problem or "no data in this time range")
        body = f'<p class="empty">{why}</p>'
    else:
        data = base64.b64encode(png).decode()
        body = f'<img class="plot" alt="{title}" src="data:image/png;base64,{data}">'
    return (f'<figure><figcaption><b>{title}</b> <span>{note}</span></figcaption>'
            f"{body}</figure>")


def page(plots: Sequence[Plot], pngs: Sequence[bytes | None], *, source: str, start: float,
         end: float, generated: float) -> str:
    """The report's HTML."""
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))  # noqa: E731
    empty = [p.panel.title for p, png in zip(plots, pngs, strict=True) if png is None]
    sections: list[str] = []
    row = None
    for plot, png in zip(plots, pngs, strict=True):
        if plot.panel.row != row:
            row = plot.panel.row
            sections.append(f"<h2>{html.escape(row)}</h2>")
        sections.append(_figure_html(plot, png))
    summary = (f"{len(plots) - len(empty)} of {len(plots)} panels have data"
               + (f"; without: {html.escape(', '.join(empty))}" if empty else ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>clusterjobs report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; width: 560px; }}
figcaption span {{ color: #666; font-size: 0.9em; }}
img.plot {{ width: 560px; }}
p.empty {{ color: #a33; }}
</style></head>
<body data-plots="{len(plots) - len(empty)}">
<h1>clusterjobs report</h1>
<p>From {html.escape(source)}, {stamp(start)} to {stamp(end)} (generated {stamp(generated)}).
{summary}.</p>
{"".join(sections)}
<script>
window.addEventListener("load", function () {{
  var images = Array.prototype.slice.call(document.images);
  var drawn = images.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }});
  document.body.setAttribute("data-rendered", String(drawn.length));
}});
</script>
</body></html>
"""


# -- edges: Prometheus and matplotlib -------------------------------------------------------------
class Prometheus:
    """The two Prometheus HTTP API calls the report makes."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, object] | None = None) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=self.timeout) as a:
                answer = json.loads(a.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                raise ReportError(f"Prometheus {self.url}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise ReportError(f"Prometheus {self.url} did not answer: {exc}") from None
        if answer.get("status") != "success":
            raise ReportError(f"Prometheus {self.url}: {answer.get('error', 'failed')}")
        return answer["data"]

    def scrape_interval(self) -> float:
        """The global scrape interval of the running configuration (seconds)."""
        text = self._get("/api/v1/status/config")["yaml"]
        found = re.search(r"^\s+scrape_interval:\s*(\S+)", text, re.MULTILINE)
        return parse_duration(found.group(1), "scrape_interval") if found else 60.0

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("/api/v1/query_range",
                         {"query": expr, "start": start, "end": end, "step": step})["result"]


def collect(prom: Prometheus, panels: Sequence[Panel], start: float, end: float) -> list[Plot]:
    """Each panel's series over [start, end]; a failing query is noted on its plot."""
    step = step_for(start, end)
    interval = rate_interval(prom.scrape_interval(), step)
    plots = []
    for panel in panels:
        series: list[Series] = []
        problem = None
        for query in panel.queries:
            try:
                result = prom.query_range(resolve(query.expr, interval), start, end, step)
            except ReportError as exc:
                problem = str(exc)
                continue
            series += to_series(result, query.legend)
        plots.append(Plot(panel, tuple(series), problem))
    return plots


def draw(plot: Plot) -> bytes | None:
    """The plot as PNG bytes, or None when it has no series."""
    if not plot.series:
        return None
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 3.2), dpi=80)
    axes = figure.add_subplot()
    for series in plot.series:
        times = [dt.datetime.fromtimestamp(t, dt.UTC) for t, _ in series.points]
        axes.plot(times, [v for _, v in series.points], label=series.name, linewidth=1.4)
    axes.set_title(plot.panel.title, fontsize=10)
    axes.set_ylabel(plot.panel.unit, fontsize=8)
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def write_report(prometheus_url: str, out: Path, since: float, now: float | None = None,
                 panels: Sequence[Panel] | None = None) -> list[Plot]:
    """Query, draw and write the page; returns the plots (for callers that check them)."""
    end = time.time() if now is None else now
    start = end - since
    chosen = [p for p in PANELS if p.main] if panels is None else list(panels)
    plots = collect(Prometheus(prometheus_url), chosen, start, end)
    pngs = [draw(plot) for plot in plots]
    text = page(plots, pngs, source=prometheus_url, start=start, end=end, generated=time.time())
    try:
        out.write_text(text)
    except OSError as exc:
        raise ReportError(f"--out {out}: {exc.strerror}") from None
    return plots


# -- CLI -----------------------------------------------------------------------------------------
def add_parser(commands) -> None:
    report = commands.add_parser("report", help="the dashboard's main panels as a static HTML "
                                                "page with plots")
    where = report.add_mutually_exclusive_group()
    where.add_argument("--stack", help="take Prometheus from this local stack (default .stack/)")
    where.add_argument("--prometheus", help="Prometheus base URL")
    report.add_argument("--out", default="report.html", help="page to write (default "
                                                             "report.html)")
    report.add_argument("--since", default="1h", help="time range ending now (default 1h)")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    since = parse_duration(args.since, "--since")
    url = args.prometheus
    if not url:
        from actors.stack import orchestrator

        info = orchestrator.status(Path(args.stack or ".stack"))
        url = info.get("prometheus")
        if not url:
            raise ReportError(f"--stack {args.stack or '.stack'}: no Prometheus in this stack")
    plots = write_report(url, Path(args.out), since)
    with_data = sum(1 for p in plots if p.series)
    print(f"{args.out}: {with_data} of {len(plots)} panels with data")
    return 0
