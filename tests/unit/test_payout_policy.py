"""The payout policy: which contributors are paid when."""

from __future__ import annotations

import pytest

from contracts import pay
from scheduler.payout_policy import Owed, Payout, Policy, Terms, due

RATE = pay.rate_to_fixed(0.001, 4)  # 0.001 JOB/s: one unit (0.0001 JOB) per 0.1 s
TERMS = {"alice": Terms("aliceowner", "alicefund", RATE, RATE // 10, 4, "JOB")}


def owed(unpaid: int, total: int = 50_000_000, kind: str = "worker",
         researcher: str = "alice") -> Owed:
    return Owed(kind, "worker1", researcher, total, unpaid)


def test_off_by_default() -> None:
    assert not Policy().enabled
    assert due(Policy(), [owed(10_000_000)], TERMS, {}, 100) == []


def test_every_n_seconds_per_contributor() -> None:
    policy = Policy(every_s=60)
    (first,) = due(policy, [owed(1_000_000)], TERMS, {}, 100)
    assert first == Payout("aliceowner", "alicefund", "alice", "worker1", "worker",
                           pay.compute_pay(50_000_000, 1_000_000, RATE), 4, "JOB")
    assert first.amount == 10  # 1 s at 0.001 JOB/s = 0.0010 JOB
    assert first.data == {"owner": "aliceowner", "funder": "alicefund", "researcher": "alice",
                          "contributor": "worker1", "type": "worker"}
    last = {("worker", "worker1", "alice"): 100.0}
    assert due(policy, [owed(1_000_000)], TERMS, last, 159.9) == []
    assert len(due(policy, [owed(1_000_000)], TERMS, last, 160)) == 1


def test_threshold_pays_at_once() -> None:
    policy = Policy(every_s=3600, threshold_us=5_000_000)
    last = {("worker", "worker1", "alice"): 100.0}
    assert due(policy, [owed(4_999_999)], TERMS, last, 101) == []
    assert len(due(policy, [owed(5_000_000)], TERMS, last, 101)) == 1


def test_nothing_worth_paying_waits() -> None:
    policy = Policy(every_s=1)
    assert due(policy, [owed(0)], TERMS, {}, 100) == []  # nothing unpaid
    assert due(policy, [owed(99_999, total=99_999)], TERMS, {}, 100) == []  # < one unit
    assert due(policy, [owed(10_000_000, researcher="bob")], TERMS, {}, 100) == []  # no protocol
    # A dispatcher is priced at the dispatcher rate.
    (d,) = due(policy, [owed(10_000_000, kind="dispatcher")], TERMS, {}, 100)
    assert d.kind == "dispatcher" and d.amount == pay.compute_pay(50_000_000, 10_000_000,
                                                                  RATE // 10)


def test_bad_policy() -> None:
    with pytest.raises(ValueError):
        Policy(every_s=-1)


class _View:
    """ChainView's raw reads over canned rows."""

    jobs, registry = "jobs", "registry"

    def __init__(self, rows: dict[tuple[str, str, str], list[str]]) -> None:
        self.rows = rows

    def _scopes(self, code: str, table: str) -> list[str]:
        return sorted({s for c, s, t in self.rows if (c, t) == (code, table)})

    def _rows(self, code: str, scope: str, table: str) -> list[str]:
        return self.rows[(code, scope, table)]


def _name(text: str) -> bytes:
    from contracts.serialize import name_value

    return name_value(text).to_bytes(8, "little")


def test_rows_are_decoded_from_their_raw_form() -> None:
    from contracts.serialize import pack_asset, pack_string
    from scheduler import payout_service

    protocol = (pack_string("t") + _name("alice") + pack_string("/protocols/alice")
                + _name("alicefund") + pack_asset("12.3400 JOB") + _name("eosio.token")
                + RATE.to_bytes(8, "little") + (RATE // 10).to_bytes(8, "little")
                + (99).to_bytes(8, "little"))  # a field a later version appended
    worker = _name("alice") + (7_000_000).to_bytes(8, "little") + (2_000_000).to_bytes(8, "little")
    view = _View({("registry", "aliceowner", "protocol"): [protocol.hex()],
                  ("jobs", "worker1", "worker"): [worker.hex()]})
    (row,) = payout_service.read_protocols(view)  # type: ignore[arg-type]
    assert row == {"owner": "aliceowner", "title": "t", "researcher": "alice",
                   "datadir": "/protocols/alice", "fundaccount": "alicefund",
                   "fund": "12.3400 JOB", "tokencontract": "eosio.token",
                   "worker_pay_rate": RATE, "dispatcher_pay_rate": RATE // 10}
    owed, terms = payout_service.read_owed(view)  # type: ignore[arg-type]
    assert owed == [Owed("worker", "worker1", "alice", 7_000_000, 2_000_000)]
    assert terms == TERMS


def test_a_payout_knows_its_token_for_the_metrics() -> None:
    (payout,) = due(Policy(every_s=1), [owed(1_000_000)], TERMS, {}, 100)
    assert (payout.amount, payout.symbol, payout.tokens) == (10, "JOB", 0.001)


def test_the_payout_metrics_render_by_researcher_type_and_token() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from scheduler.payout_service import PayoutCollector, PayoutLoop

    loop = PayoutLoop(Policy(every_s=1), view=None, client=None, jobs="jobs")  # type: ignore
    loop.payouts[("alice", "worker", "JOB")] = 2
    loop.tokens[("alice", "worker", "JOB")] = 1.5
    registry = CollectorRegistry()
    registry.register(PayoutCollector(loop))
    text = generate_latest(registry).decode()
    assert 'clusterjobs_payouts_total{researcher="alice",symbol="JOB",type="worker"} 2.0' in text
    assert ('clusterjobs_paid_tokens_total{researcher="alice",symbol="JOB",type="worker"} 1.5'
            in text)
