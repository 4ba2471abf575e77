"""The stack's nodeos: booted with the JOB token; pyeoskit signs with the dev key."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from actors.stack import chain_boot, devchain

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz12345"


def _fresh_name(prefix: str) -> str:
    """A 12-character account name unused so far (the stack may be reused across runs)."""
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(12 - len(prefix)))


def _amount(text: str) -> Decimal:
    """The number of a balance string such as "70.0000 JOB" ("" = no balance = 0)."""
    return Decimal(text.split(" ")[0]) if text else Decimal(0)


def _transfer(api, sender: str, to: str, quantity: str, memo: str) -> dict:
    return api.push_action(devchain.TOKEN_CONTRACT, "transfer",
                           {"from": sender, "to": to, "quantity": quantity, "memo": memo},
                           {sender: "active"})


@pytest.fixture(scope="module")
def chain(stack: dict) -> str:
    devchain.connect(stack["nodeos"])
    return str(stack["nodeos"])


def test_endpoints_describe_the_booted_chain(stack: dict, chain: str) -> None:
    info = devchain.rpc(chain, "/v1/chain/get_info")
    assert stack["chain"] == {"token_contract": "eosio.token", "token_symbol": "4,JOB",
                              "chain_id": info["chain_id"]}
    stats = devchain.rpc(chain, "/v1/chain/get_currency_stats",
                         {"code": "eosio.token", "symbol": "JOB"})["JOB"]
    assert stats["max_supply"] == "1000000000.0000 JOB"
    assert stats["issuer"] == "eosio"
    supported = chain_boot.parse_features(
        devchain.rpc(chain, "/v1/producer/get_supported_protocol_features", {}))
    active = chain_boot.activated_digests(chain)
    assert {f.digest for f in supported} <= active
    assert "ACTION_RETURN_VALUE" in {f.codename for f in supported}


def test_transfers_move_exact_amounts_and_overdraw_is_rejected(chain: str) -> None:
    api = devchain.connect(chain)
    alice, bob = _fresh_name("tna"), _fresh_name("tnb")
    devchain.create_account(alice)
    devchain.create_account(bob)
    # eosio.bios has no RAM market: a new account's RAM (and CPU, NET) is unlimited.
    assert api.get_account(alice)["ram_quota"] == -1

    supply_before = _amount(devchain.rpc(chain, "/v1/chain/get_currency_stats",
                                         {"code": "eosio.token", "symbol": "JOB"})["JOB"]["supply"])
    eosio_before = _amount(devchain.balance(chain, "eosio"))
    api.push_action(devchain.TOKEN_CONTRACT, "issue",
                    {"to": "eosio", "quantity": "50.0000 JOB", "memo": f"test {alice}"},
                    {"eosio": "active"})
    _transfer(api, "eosio", alice, "100.0000 JOB", f"fund {alice}")
    supply_after = _amount(devchain.rpc(chain, "/v1/chain/get_currency_stats",
                                        {"code": "eosio.token", "symbol": "JOB"})["JOB"]["supply"])
    assert supply_after - supply_before == Decimal("50.0000")
    assert _amount(devchain.balance(chain, "eosio")) == eosio_before + 50 - 100
    assert devchain.balance(chain, alice) == "100.0000 JOB"

    _transfer(api, alice, bob, "30.2500 JOB", "between accounts")
    assert devchain.balance(chain, alice) == "69.7500 JOB"
    assert devchain.balance(chain, bob) == "30.2500 JOB"

    with pytest.raises(Exception) as caught:
        _transfer(api, bob, alice, "30.2501 JOB", "one unit too much")
    assert "overdrawn balance" in devchain.error_message(caught.value)
    assert devchain.balance(chain, alice) == "69.7500 JOB"
    assert devchain.balance(chain, bob) == "30.2500 JOB"


def test_ensure_account_creates_once(chain: str) -> None:
    devchain.connect(chain)
    name = _fresh_name("tnc")
    assert not devchain.account_exists(name)
    assert devchain.ensure_account(name) is True
    assert devchain.account_exists(name)
    assert devchain.ensure_account(name) is False


def _poll(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"chain did not come {what}")
        time.sleep(0.2)


def test_boot_again_changes_nothing(chain: str) -> None:
    supply = devchain.rpc(chain, "/v1/chain/get_currency_stats",
                          {"code": "eosio.token", "symbol": "JOB"})["JOB"]["supply"]
    report = chain_boot.boot(chain, _poll)
    assert report.steps == []
    assert devchain.rpc(chain, "/v1/chain/get_currency_stats",
                        {"code": "eosio.token", "symbol": "JOB"})["JOB"]["supply"] == supply
