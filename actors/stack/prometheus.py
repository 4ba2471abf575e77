"""Prometheus from Debian's package, scraping the targets listed under DIR/prometheus/targets.

Targets are file-based service discovery: whoever wants to be scraped (a test, the scheduler)
drops ``<name>.json`` there (see :func:`add_target`), and Prometheus picks it up within seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from actors.stack.context import StackContext
from actors.stack.errors import StackError

SCRAPE_INTERVAL = "1s"


def targets_dir(workdir: Path) -> Path:
    return workdir / "prometheus" / "targets"


def add_target(
    workdir: Path, name: str, address: str, labels: dict[str, str] | None = None
) -> Path:
    """Ask the stack's Prometheus to scrape ``address`` ("host:port") as job ``name``."""
    directory = targets_dir(workdir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": {"job": name, **(labels or {})}}]))
    tmp.replace(path)  # Prometheus must never read a half-written file
    return path


def remove_target(workdir: Path, name: str) -> None:
    (targets_dir(workdir) / f"{name}.json").unlink(missing_ok=True)


def start(ctx: StackContext) -> dict[str, object]:
    """Start Prometheus on a free loopback port; endpoint ``prometheus`` is its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError("Prometheus is not installed (run deploy/local/install.sh "
                         "or apt-get install prometheus)")
    home = ctx.service_dir("prometheus")
    targets = targets_dir(ctx.workdir)
    targets.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL}\n"
        f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
        "scrape_configs:\n"
        "  - job_name: stack\n"
        "    file_sd_configs:\n"
        f"      - files: ['{targets}/*.json']\n"
        "        refresh_interval: 1s\n"
    )
    port = ctx.port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d",
    ]
    proc = ctx.spawn("prometheus", argv)
    url = f"http://127.0.0.1:{port}"
    ctx.wait_http("prometheus", f"{url}/-/ready", proc)
    return {"prometheus": url}
