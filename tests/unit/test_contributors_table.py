"""The contributors table: Mesos agents joined with the jobs contract's rows and the price."""

from __future__ import annotations

from contracts import pay
from scheduler import contributors

STATE = {
    "slaves": [
        {"id": "a1", "attributes": {"eos_account": "bob"}},
        {"id": "a2", "attributes": {"eos_account": "bob"}},
        {"id": "a3", "attributes": {"eos_account": "carol"}},
        {"id": "a4", "attributes": {}},
    ],
    "frameworks": [{"tasks": [{"id": "t1", "slave_id": "a1"}, {"id": "t2", "slave_id": "a2"}],
                    "completed_tasks": [{"id": "t3", "slave_id": "a3"}]}],
    "completed_tasks": [{"id": "t3", "slave_id": "a3"}, {"id": "t4", "slave_id": "a1"}],
}
PROTOCOL = {"researcher": "alice", "fund": "1000.0000 JOB", "tokencontract": "eosio.token",
            "worker_pay_rate": pay.rate_to_fixed(0.3, 4),
            "dispatcher_pay_rate": pay.rate_to_fixed(0.125, 4)}


def test_join() -> None:
    workers = {"bob": [{"researcher": "alice", "total_time": 10_000_000,
                        "unpaid_time": 4_000_000},
                       {"researcher": "zed", "total_time": 5, "unpaid_time": 5}]}
    dispatchers = {"mars": [{"researcher": "alice", "total_time": 8_000_000,
                             "unpaid_time": 0}]}
    table = contributors.join(STATE, workers, dispatchers,
                              contributors.pricing([PROTOCOL]),
                              {("bob", "eosio.token"): "1.8000 JOB"})
    assert table == [
        {"account": "bob", "type": "worker", "researcher": "alice", "total_us": 10_000_000,
         "unpaid_us": 4_000_000, "paid": "1.8000 JOB", "agent_ids": ["a1", "a2"],
         "paid_us": 6_000_000, "tasks": 3, "balance": "1.8000 JOB"},
        {"account": "bob", "type": "worker", "researcher": "zed", "total_us": 5,
         "unpaid_us": 5, "paid": None, "agent_ids": ["a1", "a2"], "paid_us": 0, "tasks": 3,
         "balance": None},
        {"account": "mars", "type": "dispatcher", "researcher": "alice",
         "total_us": 8_000_000, "unpaid_us": 0, "paid": "1.0000 JOB", "agent_ids": [],
         "paid_us": 8_000_000, "tasks": 0, "balance": None},
        {"account": "carol", "type": "worker", "researcher": None, "total_us": 0,
         "unpaid_us": 0, "paid": None, "agent_ids": ["a3"], "paid_us": 0, "tasks": 1,
         "balance": None},
    ]


def test_paid_is_the_contract_formula_rounded_down() -> None:
    rate = pay.rate_to_fixed(0.3, 4)  # 0.300000011920... JOB/s stored
    table = contributors.join({}, {"bob": [{"researcher": "alice", "total_time": 1_000_001,
                                            "unpaid_time": 0}]}, {},
                              contributors.pricing([PROTOCOL]))
    assert table[0]["paid"] == contributors.asset(pay.time_value(1_000_001, rate), 4, "JOB")
    assert table[0]["paid"] == "0.3000 JOB"


def test_asset_text() -> None:
    assert contributors.asset(12345, 4, "JOB") == "1.2345 JOB"
    assert contributors.asset(5, 4, "JOB") == "0.0005 JOB"
    assert contributors.asset(7, 0, "PTS") == "7 PTS"


def test_render_lists_every_row() -> None:
    table = contributors.join(STATE, {}, {}, {})
    text = contributors.render(table)
    assert text.splitlines()[0].split()[:3] == ["account", "type", "researcher"]
    assert "carol" in text and "bob" in text
