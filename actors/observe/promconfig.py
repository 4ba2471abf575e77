"""deploy/prometheus/prometheus.yml pointed at other targets (pure): the same jobs, metrics
paths, probe parameters and relabelling, with each job's service discovery replaced by a static
list. The integration test uses it to run the deployment's configuration against the local
stack's ports."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

SD_KEYS = ("static_configs", "file_sd_configs", "marathon_sd_configs", "dns_sd_configs",
           "consul_sd_configs", "kubernetes_sd_configs", "http_sd_configs")
EXPORTER_JOBS = ("mesos-masters", "mesos-agents")


class ConfigError(ValueError):
    """The configuration does not have the shape this rewrite needs (one line)."""


def localize(config: Mapping[str, Any], targets: Mapping[str, Sequence[str]], *,
             exporter: str, rule_files: Sequence[str], scrape_interval: str | None = None
             ) -> dict[str, Any]:
    """A copy of ``config`` whose job ``name`` scrapes exactly ``targets[name]``.

    Jobs missing from ``targets`` are dropped; relabel rules that read service-discovery
    metadata (``__meta_*``) go with the discovery they belonged to; the exporter jobs' probe
    relabelling sends to ``exporter`` (host:port). Raises ConfigError for a job named in
    ``targets`` that the configuration lacks.
    """
    out = copy.deepcopy(dict(config))
    jobs = out.get("scrape_configs") or []
    names = {job.get("job_name") for job in jobs}
    unknown = sorted(set(targets) - names)
    if unknown:
        raise ConfigError(f"scrape_configs: no job named {', '.join(unknown)}")
    kept = []
    for job in jobs:
        name = job["job_name"]
        if name not in targets:
            continue
        for key in SD_KEYS:
            job.pop(key, None)
        job["static_configs"] = [{"targets": list(targets[name])}]
        rules = []
        for rule in job.get("relabel_configs") or []:
            if any(str(label).startswith("__meta_") for label in rule.get("source_labels", [])):
                continue
            if name in EXPORTER_JOBS and rule.get("target_label") == "__address__":
                rule = {**rule, "replacement": exporter}
            rules.append(rule)
        if rules:
            job["relabel_configs"] = rules
        else:
            job.pop("relabel_configs", None)
        kept.append(job)
    out["scrape_configs"] = kept
    out["rule_files"] = list(rule_files)
    if scrape_interval:
        out.setdefault("global", {})
        out["global"]["scrape_interval"] = scrape_interval
        out["global"]["evaluation_interval"] = scrape_interval
    return out
