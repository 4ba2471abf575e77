"""The scheduler's Prometheus metrics (prometheus-client), served on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 4 * 3600)


class SchedulerMetrics:
    """Counters the loop updates; gauges are computed from the core on each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.offers_received = Counter("clusterjobs_offers_received", "Offers received", registry=r)
        self.offers_declined = Counter("clusterjobs_offers_declined", "Offers declined", registry=r)
        self.launches = Counter("clusterjobs_task_launches", "Tasks launched", registry=r)
        self.updates = Counter("clusterjobs_status_updates", "Status updates by state",
                               ["state"], registry=r)
        self.finished = Counter("clusterjobs_instances_finished", "Instances finished",
                                ["researcher"], registry=r)
        self.failed = Counter("clusterjobs_instances_failed", "Instances failed for good",
                              ["researcher", "reason"], registry=r)
        self.placement_seconds = Histogram("clusterjobs_placement_seconds",
                                           "Time to place one batch of offers", registry=r)
        self.run_seconds = Histogram("clusterjobs_task_run_seconds",
                                     "Executor-measured run time of finished instances",
                                     ["researcher"], buckets=RUN_BUCKETS, registry=r)
        # Seconds, Prometheus's base unit (promtool's lint refuses "microseconds" in a name);
        # by researcher and contributor account for the dashboard's per-worker panels.
        self.credited_seconds = Counter("clusterjobs_credited_seconds",
                                        "Time written to the accounting outbox",
                                        ["kind", "researcher", "account"], registry=r)
        # Trust: executor-reported time beyond the scheduler-observed interval, per terminal
        # task with both known; tasks beyond --time-tolerance are counted (and flagged).
        self.discrepancy_seconds = Histogram(
            "clusterjobs_time_discrepancy_seconds",
            "Executor-reported run time beyond the observed RUNNING-to-terminal interval",
            ["researcher"], buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 60, 600), registry=r)
        self.discrepancy_flagged = Counter(
            "clusterjobs_time_discrepancy_flagged_tasks",
            "Tasks whose executor time exceeded the observed interval beyond the tolerance",
            ["researcher"], registry=r)
        self.specs_seen = Gauge("clusterjobs_specs", "Specs taken by intake since start",
                                ["outcome"], registry=r)
        self.instances = Gauge("clusterjobs_instances", "Tracked instances by state",
                               ["researcher", "state"], registry=r)

    def update(self, state: str) -> None:
        self.updates.labels(state).inc()

    def instance_done(self, researcher: str, state: str, last: str,
                      run_us: int | None) -> None:
        """``last``: how its last attempt ended (finished, failed, timeout, lost, error...)."""
        if state == "finished":
            self.finished.labels(researcher).inc()
            if run_us:
                self.run_seconds.labels(researcher).observe(run_us / 1e6)
        elif state == "failed":
            self.failed.labels(researcher, last).inc()

    def credited(self, credits) -> None:
        for entry in credits:
            self.credited_seconds.labels(entry.kind, entry.researcher, entry.account).inc(
                entry.time_us / 1e6)

    def discrepancy(self, researcher: str, discrepancy_us: int | None, flagged: bool) -> None:
        if discrepancy_us is not None:
            self.discrepancy_seconds.labels(researcher).observe(discrepancy_us / 1e6)
        if flagged:
            self.discrepancy_flagged.labels(researcher).inc()

    def specs(self, accepted: int, rejected: int) -> None:
        self.specs_seen.labels("accepted").set(accepted)
        self.specs_seen.labels("rejected").set(rejected)

    def render(self, jobs) -> bytes:
        """The exposition text, with the per-state gauges recomputed from ``jobs``."""
        counts: dict[tuple[str, str], int] = {}
        for job in jobs:
            for inst in job.instances:
                key = (job.spec.researcher, inst.state)
                counts[key] = counts.get(key, 0) + 1
        self.instances.clear()
        for (researcher, state), n in counts.items():
            self.instances.labels(researcher, state).set(n)
        return generate_latest(self.registry)
