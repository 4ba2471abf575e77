"""What an operator watches, checked on a real run: the stack's Prometheus runs
deploy/prometheus/prometheus.yml (targets rewritten to the local ports), a batch of jobs runs
through the scheduler, and then every PromQL expression of every panel of
deploy/grafana/clusterjobs.json returns data over the run, and `clusterjobs report` writes a
page whose plots show it, which headless Chromium renders without errors; promtool's linter
finds nothing on the scheduler's /metrics."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from observed_run import RATE_INTERVAL, ROOT, Run, get, has_data, job_state, observed_run

from actors.observe.dashboard import queries
from actors.observe.panels import PANELS, resolve

pytest.importorskip("scheduler.service", reason="the scheduler (issue 8) is not on this branch")


@pytest.fixture(scope="module")
def run(stack: dict, stack_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with observed_run(stack, stack_dir, tmp_path_factory.mktemp("observed")) as observed:
        yield observed


def test_the_batch_ran(run: Run) -> None:
    states = [job_state(run.scheduler, job_id) for job_id in run.job_ids]
    assert states == ["finished"] * 6 + ["failed"]


def test_every_dashboard_query_returns_data(run: Run) -> None:
    board = json.loads((ROOT / "deploy" / "grafana" / "clusterjobs.json").read_text())
    exprs = queries(board)
    assert len(exprs) >= 20
    empty = [f"{title}: {expr}" for title, expr in exprs
             if not has_data(run.query_range(resolve(expr, RATE_INTERVAL)))]
    assert empty == [], "panels without data:\n" + "\n".join(empty)


def test_report_shows_the_run_and_chromium_renders_it(run: Run, stack_dir: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    since = f"{math.ceil(time.time() - run.start) + 5}s"
    done = subprocess.run([sys.executable, "-m", "actors.cli", "report", "--stack",
                           str(stack_dir), "--out", str(out), "--since", since],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    main = [panel for panel in PANELS if panel.main]
    assert done.stdout.strip() == f"{out}: {len(main)} of {len(main)} panels with data"
    text = out.read_text()
    assert text.count('<img class="plot"') == len(main)
    chromium = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                               "--enable-logging=stderr", "--v=0", "--dump-dom",
                               out.as_uri()], capture_output=True, text=True, timeout=120)
    assert chromium.returncode == 0, chromium.stderr[-2000:]
    rendered = re.search(r'data-rendered="(\d+)"', chromium.stdout)
    assert rendered, "the page's load handler did not run"
    assert int(rendered.group(1)) == len(main), "some plots did not decode"
    console = [line for line in chromium.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console


def test_promtool_finds_nothing_on_the_schedulers_metrics(run: Run) -> None:
    code, body = get(f"{run.scheduler}/metrics")
    assert code == 200 and b"clusterjobs_credited_seconds_total{" in body
    done = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "metrics"],
                          input=body, capture_output=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, b"")
