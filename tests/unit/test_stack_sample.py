"""The pure part of the sample protocol: the facts `stack status` shows under ``sample``."""

from __future__ import annotations

from actors.stack import sample


def test_one_dispatcher_account_per_master() -> None:
    assert sample.dispatcher_accounts(["http://127.0.0.1:5050", "http://127.0.0.1:5051"]) == {
        "127.0.0.1:5050": "dispatcher1", "127.0.0.1:5051": "dispatcher2"}
    assert sample.dispatcher_accounts(["127.0.0.1:7000"]) == {"127.0.0.1:7000": "dispatcher1"}


def test_facts_have_the_interface_keys() -> None:
    found = sample.facts(["worker2", "worker1", "worker1"], ["http://127.0.0.1:5050"])
    assert found == {"researcher": "alice", "owner": "aliceowner",
                     "datadir": "/protocols/alice", "fund_account": "alicefund",
                     "jobs_account": "jobs", "registry_account": "registry",
                     "workers": ["worker1", "worker2"],
                     "dispatchers": {"127.0.0.1:5050": "dispatcher1"}}


def test_protocol_arguments() -> None:
    args = sample.protocol_args()
    assert (args["owner"], args["researcher"], args["fundaccount"], args["datadir"]) == (
        "aliceowner", "alice", "alicefund", "/protocols/alice")
    assert args["worker_pay_rate"] > 0 and args["dispatcher_pay_rate"] > 0
