"""deploy/prometheus/: promtool accepts the configuration and the rules, the alerts fire as their
own unit tests say (promtool test rules), and the configuration's rewrite to local targets
(actors/observe/promconfig.py) keeps what the deployment means."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from actors.observe.promconfig import ConfigError, localize

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          input=stdin, cwd=PROM)


def test_promtool_checks_the_config() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_alerts_fire_as_their_unit_tests_say() -> None:
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    rules["groups"][0]["rules"][0]["expr"] = "up{job=="
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "bad.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0


def test_alerts_cover_what_the_issue_names() -> None:
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert {"ClusterjobsSchedulerDown", "ClusterjobsOutboxBacklogGrowing", "ClusterjobsNoOffers",
            "ClusterjobsTaskFailureRate"} <= names


def deploy_config() -> dict:
    return yaml.safe_load((PROM / "prometheus.yml").read_text())


def test_localize_points_every_job_at_local_targets() -> None:
    local = localize(deploy_config(),
                     {"clusterjobs-scheduler": ["127.0.0.1:4001"],
                      "mesos-masters": ["127.0.0.1:5050"], "prometheus": ["127.0.0.1:9090"]},
                     exporter="127.0.0.1:9105", rule_files=["/x/alerts.yml"],
                     scrape_interval="1s")
    jobs = {job["job_name"]: job for job in local["scrape_configs"]}
    assert set(jobs) == {"clusterjobs-scheduler", "mesos-masters", "prometheus"}
    scheduler = jobs["clusterjobs-scheduler"]
    assert scheduler["static_configs"] == [{"targets": ["127.0.0.1:4001"]}]
    assert "marathon_sd_configs" not in scheduler and "relabel_configs" not in scheduler
    masters = jobs["mesos-masters"]
    assert masters["metrics_path"] == "/probe" and masters["params"] == {"role": ["master"]}
    assert masters["relabel_configs"][-1] == {"target_label": "__address__",
                                              "replacement": "127.0.0.1:9105"}
    assert local["rule_files"] == ["/x/alerts.yml"]
    assert local["global"]["scrape_interval"] == "1s"
    # the deployment's own file is untouched
    assert deploy_config()["scrape_configs"][0]["marathon_sd_configs"]


def test_localize_refuses_an_unknown_job() -> None:
    with pytest.raises(ConfigError, match="scrape_configs: no job named nope"):
        localize(deploy_config(), {"nope": ["x:1"]}, exporter="e:1", rule_files=[])


def test_localized_config_passes_promtool(tmp_path: Path) -> None:
    local = localize(deploy_config(), {"clusterjobs-scheduler": ["127.0.0.1:4001"],
                                       "mesos-agents": ["127.0.0.1:5051"]},
                     exporter="127.0.0.1:9105", rule_files=[str(PROM / "alerts.yml")])
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(local))
    done = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
