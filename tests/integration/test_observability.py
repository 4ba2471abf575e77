"""What an operator watches, checked on a real run: the stack's Prometheus runs
deploy/prometheus/prometheus.yml (targets rewritten to the local ports), a batch of jobs runs
through the scheduler, and then every PromQL expression of every panel of
deploy/grafana/clusterjobs.json returns data over the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from observed_run import RATE_INTERVAL, ROOT, Run, has_data, job_state, observed_run

from actors.observe.dashboard import queries
from actors.observe.panels import resolve

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
