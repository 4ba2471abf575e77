"""Prometheus of the local stack scrapes an endpoint this test serves and answers PromQL."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from actors.stack.prometheus import add_target, remove_target


def _query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_scrapes_a_test_endpoint_and_answers_promql(stack: dict, stack_dir: Path) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("clusterjobs_test_answer", "a value only this test sets", registry=registry)
    gauge.set(42.5)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    add_target(stack_dir, "prom-test", f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = _query(stack["prometheus"], 'clusterjobs_test_answer{job="prom-test"}')
            if result:
                break
            time.sleep(0.5)
        assert result, "Prometheus never scraped the test endpoint"
        assert float(result[0]["value"][1]) == 42.5
        assert result[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    finally:
        remove_target(stack_dir, "prom-test")
        server.shutdown()
        thread.join(5)
