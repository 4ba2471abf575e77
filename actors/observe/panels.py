"""The operator's view of clusterjobs: every panel of the Grafana dashboard and of
`clusterjobs report`, with its PromQL (pure data; one source for both).

Queries use Grafana's ``$__rate_interval``; :func:`resolve` replaces it for tools that talk to
Prometheus directly (the report, the dashboard's integration test).
"""

from __future__ import annotations

from dataclasses import dataclass

RATE_INTERVAL = "$__rate_interval"
# Only the leading master reports the cluster; standby masters answer with zeros.
LEADER = "and on(instance) mesos_master_elected == 1"


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression and its legend (Grafana's ``{{label}}`` template)."""

    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    """One plot: title, Grafana unit id, kind ("timeseries" or "stat"), queries, row."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    row: str
    kind: str = "timeseries"
    description: str = ""
    main: bool = True  # shown in `clusterjobs report`


def _q(expr: str, legend: str) -> Query:
    return Query(" ".join(expr.split()), legend)


def _rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({metric}[{RATE_INTERVAL}]))"


def _quantile(q: float, metric: str, by: str = "") -> str:
    keys = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({keys}) (rate({metric}_bucket[{RATE_INTERVAL}])))"


TERMINAL_BAD = 'state=~"TASK_(FAILED|LOST|ERROR|DROPPED|GONE)"'

PANELS: tuple[Panel, ...] = (
    # -- the scheduler --------------------------------------------------------------------------
    Panel("Queue depth (pending instances)", "short", (
        _q('sum by (researcher) (clusterjobs_instances{state="pending"})', "{{researcher}}"),
    ), "Scheduler", description="Instances waiting for an offer, per researcher."),
    Panel("Instances by state", "short", (
        _q("sum by (state) (clusterjobs_instances)", "{{state}}"),
    ), "Scheduler"),
    Panel("Offers", "ops", (
        _q(_rate("clusterjobs_offers_received_total"), "received"),
        _q(_rate("clusterjobs_offers_declined_total"), "declined"),
    ), "Scheduler", description="Offers per second from the Mesos master."),
    Panel("Launches", "ops", (
        _q(_rate("clusterjobs_task_launches_total"), "tasks launched"),
    ), "Scheduler"),
    Panel("Placement latency", "s", (
        _q(_quantile(0.5, "clusterjobs_placement_seconds"), "p50"),
        _q(_quantile(0.99, "clusterjobs_placement_seconds"), "p99"),
    ), "Scheduler", description="Time to place one batch of offers."),
    Panel("Task run time", "s", (
        _q(_quantile(0.5, "clusterjobs_task_run_seconds", "researcher"), "p50 {{researcher}}"),
        _q(_quantile(0.95, "clusterjobs_task_run_seconds", "researcher"), "p95 {{researcher}}"),
    ), "Scheduler", description="Executor-measured run time of finished instances."),
    Panel("Instances finished", "ops", (
        _q(_rate("clusterjobs_instances_finished_total", "researcher"), "{{researcher}}"),
    ), "Scheduler"),
    Panel("Failures by reason", "short", (
        _q("sum by (reason) (clusterjobs_instances_failed_total)", "{{reason}}"),
    ), "Scheduler", description="Instances failed for good (retries exhausted) since the "
                                "scheduler started, by how their last attempt ended."),
    Panel("Bad task updates", "ops", (
        _q(f"sum by (state) (rate(clusterjobs_status_updates_total{{{TERMINAL_BAD}}}"
           f"[{RATE_INTERVAL}]))", "{{state}}"),
    ), "Scheduler", main=False),
    # -- accounting -----------------------------------------------------------------------------
    Panel("Credited time per researcher", "s", (
        _q("sum by (researcher, kind) (clusterjobs_credited_seconds_total)",
           "{{researcher}} {{kind}}"),
    ), "Accounting", description="Seconds of worker and dispatcher time written to the "
                                 "accounting outbox since the scheduler started."),
    Panel("Credited time per worker", "s", (
        _q('sum by (account) (clusterjobs_credited_seconds_total{kind="worker"})',
           "{{account}}"),
    ), "Accounting", description="Worker (agent) time credited, by the agent's eos_account."),
    Panel("Credited time per dispatcher", "s", (
        _q('sum by (account) (clusterjobs_credited_seconds_total{kind="dispatcher"})',
           "{{account}}"),
    ), "Accounting", main=False),
    Panel("Outbox size", "short", (
        _q("sum(clusterjobs_outbox_entries)", "waiting"),
        _q("sum(clusterjobs_outbox_parked)", "parked"),
    ), "Accounting"),
    Panel("Outbox oldest credit", "s", (
        _q("max(clusterjobs_outbox_oldest_age_seconds)", "age"),
    ), "Accounting"),
    Panel("Credits confirmed on chain", "ops", (
        _q(_rate("clusterjobs_pusher_confirmed_actions_total"), "actions"),
        _q(_rate("clusterjobs_pusher_confirmed_transactions_total"), "transactions"),
    ), "Accounting"),
    Panel("Payouts", "short", (
        _q("sum by (researcher, type) (clusterjobs_payouts_total)",
           "{{researcher}} {{type}} payouts"),
        _q("sum by (researcher, type, symbol) (clusterjobs_paid_tokens_total)",
           "{{researcher}} {{type}} {{symbol}} paid"),
    ), "Accounting", description="Payouts the scheduler's payout policy pushed since it "
                                 "started, and the tokens they moved, by researcher and type."),
    # -- Mesos ----------------------------------------------------------------------------------
    Panel("Cluster CPUs", "short", (
        _q(f"sum(mesos_master_cpus_capacity {LEADER})", "capacity"),
        _q(f"sum(mesos_master_cpus_used {LEADER})", "used"),
    ), "Mesos"),
    Panel("Cluster memory", "bytes", (
        _q(f"sum(mesos_master_mem_capacity_bytes {LEADER})", "capacity"),
        _q(f"sum(mesos_master_mem_used_bytes {LEADER})", "used"),
    ), "Mesos"),
    Panel("Agents and frameworks", "short", (
        _q(f"sum(mesos_master_slaves_active {LEADER})", "agents"),
        _q(f"sum(mesos_master_frameworks_active {LEADER})", "frameworks"),
    ), "Mesos", main=False),
    Panel("Mesos tasks running", "short", (
        _q(f"sum(mesos_master_tasks_running {LEADER})", "running"),
    ), "Mesos", main=False),
    Panel("Scheduler up", "short", (
        _q('sum(up{job="clusterjobs-scheduler"})', "up"),
    ), "Mesos", kind="stat", main=False),
)


def resolve(expr: str, rate_interval: str) -> str:
    """``expr`` with Grafana's ``$__rate_interval`` replaced (for Prometheus itself)."""
    return expr.replace(RATE_INTERVAL, rate_interval)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend template filled with a series' labels (``{{researcher}}``)."""
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out
