"""The payout policy inside the scheduler process: a thread that reads what contributors are
owed and pushes ``jobs::payout`` when :func:`scheduler.payout_policy.due` says so, signed by
``<funder>@<permission>`` (default ``cjpay``: the permission the funder linked to
``jobs::payout`` only, holding the scheduler's key; see `clusterjobs contracts delegate`).

Rows are read raw and decoded here (as scheduler/chain_view.py does): nodeos exits on a row its
current ABI cannot decode.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from scheduler import chain
from scheduler.chain import ChainClient, ChainError, Signer
from scheduler.chain_view import ChainView, RowReader
from scheduler.payout_policy import Owed, Policy, Terms, due

log = logging.getLogger("clusterjobs.scheduler.payout")


def read_contributors(view: ChainView, kind: str) -> dict[str, list[dict[str, Any]]]:
    """account → its ``worker`` or ``dispatcher`` rows (researcher, total_time, unpaid_time)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for account in view._scopes(view.jobs, kind):
        for raw in view._rows(view.jobs, account, kind):
            reader = RowReader(raw)
            found.setdefault(account, []).append({
                "researcher": reader.name(), "total_time": reader.u64(),
                "unpaid_time": reader.u64()})
    return found


def read_protocols(view: ChainView) -> list[dict[str, Any]]:
    """The registry's ``protocol`` rows with their owner (the scope); fields appended by later
    contract versions are not read."""
    found = []
    for owner in view._scopes(view.registry, "protocol"):
        for raw in view._rows(view.registry, owner, "protocol"):
            reader = RowReader(raw)
            row: dict[str, Any] = {"owner": owner, "title": reader.string(),
                                   "researcher": reader.name(), "datadir": reader.string(),
                                   "fundaccount": reader.name()}
            amount = reader.u64()
            amount -= (1 << 64) if amount >> 63 else 0  # int64
            symbol = reader.u64()
            precision = symbol & 0xFF
            code = (symbol >> 8).to_bytes(7, "little").rstrip(b"\0").decode()
            row["fund"] = _asset(amount, precision, code)
            row["tokencontract"] = reader.name()
            row["worker_pay_rate"], row["dispatcher_pay_rate"] = reader.u64(), reader.u64()
            found.append(row)
    return found


def _asset(units: int, precision: int, code: str) -> str:
    sign, units = ("-", -units) if units < 0 else ("", units)
    if precision == 0:
        return f"{sign}{units} {code}"
    whole, frac = divmod(units, 10**precision)
    return f"{sign}{whole}.{frac:0{precision}d} {code}"


def read_owed(view: ChainView) -> tuple[list[Owed], dict[str, Terms]]:
    """Every worker/dispatcher row, and each researcher's protocol terms."""
    owed = [Owed(kind, account, str(row["researcher"]), int(row["total_time"]),
                 int(row["unpaid_time"]))
            for kind in ("worker", "dispatcher")
            for account, rows in read_contributors(view, kind).items() for row in rows]
    terms: dict[str, Terms] = {}
    for row in read_protocols(view):
        amount, symbol = str(row["fund"]).split()
        precision = len(amount.split(".")[1]) if "." in amount else 0
        terms.setdefault(row["researcher"], Terms(row["owner"], row["fundaccount"],
                                                  row["worker_pay_rate"],
                                                  row["dispatcher_pay_rate"], precision, symbol))
    return owed, terms


class PayoutLoop:
    """Checks every ``check_s`` seconds; remembers when each contributor was last paid."""

    def __init__(self, policy: Policy, view: ChainView, client: ChainClient, jobs: str,
                 permission: str = "cjpay", check_s: float = 5.0) -> None:
        self.policy, self.view, self.client = policy, view, client
        self.jobs, self.permission, self.check_s = jobs, permission, check_s
        self.last_paid: dict[tuple[str, str, str], float] = {}
        self.paid = 0
        self.failed = 0
        # (researcher, type, symbol) -> payouts pushed and whole tokens they moved (metrics).
        self.payouts: dict[tuple[str, str, str], int] = {}
        self.tokens: dict[tuple[str, str, str], float] = {}

    def round(self, now: float) -> list[str]:
        """One check; returns the chain's message of each payout that failed."""
        owed, terms = read_owed(self.view)
        errors = []
        for payout in due(self.policy, owed, terms, self.last_paid, now):
            key = (payout.kind, payout.contributor, payout.researcher)
            self.last_paid[key] = now  # a refused payout is not retried before the interval
            action = self.client.action(self.jobs, "payout", payout.data,
                                        [(payout.funder, self.permission)])
            try:
                self.client.push([action])
                self.paid += 1
                labels = (payout.researcher, payout.kind, payout.symbol)
                self.payouts[labels] = self.payouts.get(labels, 0) + 1
                self.tokens[labels] = self.tokens.get(labels, 0.0) + payout.tokens
                log.info("payout", extra={**payout.data, "amount_units": payout.amount})
            except ChainError as exc:
                self.failed += 1
                errors.append(str(exc))
                log.warning("payout refused", extra={**payout.data, "reason": str(exc)})
        return errors

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.round(time.time())
            except Exception as exc:  # nodeos away: the next round tries again
                log.warning("payout round failed", extra={"error": str(exc)[:300]})
            stopping.wait(self.check_s)


class PayoutCollector:
    """prometheus_client collector: ``clusterjobs_payouts_total{researcher,type,symbol}`` and
    ``clusterjobs_paid_tokens_total{researcher,type,symbol}`` (whole tokens moved)."""

    def __init__(self, loop: PayoutLoop) -> None:
        self.loop = loop

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        labels = ["researcher", "type", "symbol"]
        count = CounterMetricFamily("clusterjobs_payouts", "Payouts pushed and accepted",
                                    labels=labels)
        tokens = CounterMetricFamily("clusterjobs_paid_tokens",
                                     "Tokens the accepted payouts moved", labels=labels)
        for key, n in sorted(self.loop.payouts.items()):
            count.add_metric(list(key), n)
            tokens.add_metric(list(key), self.loop.tokens.get(key, 0.0))
        yield count
        yield tokens


def start(service: Any) -> threading.Thread | None:
    """Start the payout thread of ``service`` when its options enable a policy."""
    options = service.options
    policy = Policy(options.payout_every_seconds, int(options.payout_threshold_seconds * 1e6))
    if not policy.enabled:
        return None
    if not options.chain_keys:
        log.warning("payouts are off: no chain key")
        return None
    client = ChainClient(options.nodeos, Signer("", options.payout_permission,
                                                options.chain_keys))
    view = ChainView(options.nodeos, registry=options.registry_account,
                     jobs=options.jobs_account)
    check = min(5.0, options.payout_every_seconds or 5.0)
    loop = PayoutLoop(policy, view, client, options.jobs_account, options.payout_permission,
                      check)
    service.payouts = loop
    service.metrics.registry.register(PayoutCollector(loop))
    thread = threading.Thread(target=loop.run, args=(service.stopping,), daemon=True,
                              name="payouts")
    thread.start()
    log.info("payout policy on", extra={"every_s": policy.every_s,
                                        "threshold_us": policy.threshold_us,
                                        "permission": options.payout_permission,
                                        "key_env": chain.KEY_ENV})
    return thread
