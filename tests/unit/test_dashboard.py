"""The Grafana dashboard as code: deploy/grafana/clusterjobs.json is what the code generates,
it has the panels the issue names, each on the Prometheus data source variable, and every
PromQL expression is valid (promtool reads them as recording rules)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from actors.observe.dashboard import build, queries
from actors.observe.panels import PANELS, legend, resolve

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "deploy" / "grafana" / "clusterjobs.json"


def test_dashboard_file_is_what_the_code_generates() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "deploy/grafana/generate.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_panels_cover_what_the_issue_names() -> None:
    titles = {panel["title"] for panel in json.loads(FILE.read_text())["panels"]}
    for wanted in ("Queue depth (pending instances)", "Offers", "Launches", "Placement latency",
                   "Task run time", "Failures by reason", "Credited time per researcher",
                   "Credited time per worker", "Outbox size",
                   "Outbox oldest credit", "Cluster CPUs", "Cluster memory"):
        assert wanted in titles
    rows = [p["title"] for p in json.loads(FILE.read_text())["panels"] if p["type"] == "row"]
    assert rows == ["Scheduler", "Accounting", "Mesos"]


def test_every_target_uses_the_datasource_variable() -> None:
    board = build()
    assert board["templating"]["list"][0]["type"] == "datasource"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(t["datasource"]["uid"] == "${datasource}"
                                        for t in panel["targets"])
    assert len(queries(board)) == sum(len(p.queries) for p in PANELS)


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [{"record": f"check:panel_{i}", "expr": resolve(expr, "1m")}
             for i, (_, expr) in enumerate(queries(build()))]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "rules",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_rate_interval_and_legends_resolve() -> None:
    assert resolve("rate(x[$__rate_interval])", "15s") == "rate(x[15s])"
    assert legend("p95 {{researcher}}", {"researcher": "alice", "le": "1"}) == "p95 alice"
