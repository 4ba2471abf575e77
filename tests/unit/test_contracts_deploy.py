"""The pure part of the deploy: adding ``<contract>@eosio.code`` to a permission."""

from __future__ import annotations

from contracts import serialize
from contracts.deploy import code_permission

KEY = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"


def _authority(*accounts: tuple[str, str]) -> dict:
    return {"threshold": 1, "keys": [{"key": KEY, "weight": 1}],
            "accounts": [{"permission": {"actor": a, "permission": p}, "weight": 1}
                         for a, p in accounts], "waits": []}


def test_adds_eosio_code_and_keeps_keys() -> None:
    new = code_permission(_authority(), "jobs")
    assert new is not None
    assert new["keys"] == [{"key": KEY, "weight": 1}]
    assert new["accounts"] == [{"permission": {"actor": "jobs", "permission": "eosio.code"},
                                "weight": 1}]


def test_already_there_changes_nothing() -> None:
    assert code_permission(_authority(("jobs", "eosio.code")), "jobs") is None


def test_accounts_stay_sorted_by_name_value() -> None:
    # nodeos refuses an authority whose accounts are not sorted by (actor, permission) value.
    new = code_permission(_authority(("registry", "eosio.code"), ("zeta", "active")), "jobs")
    actors = [a["permission"]["actor"] for a in new["accounts"]]
    assert actors == ["jobs", "registry", "zeta"]
    new = code_permission(_authority(("jobs", "active")), "jobs")
    assert [a["permission"]["permission"] for a in new["accounts"]] == ["active", "eosio.code"]


def test_name_values() -> None:
    assert serialize.name_value("jobs") < serialize.name_value("registry")
    assert serialize.name_value("zzzzzzzzzzzzj") == 2**64 - 1
    assert serialize.name_value("") == 0
