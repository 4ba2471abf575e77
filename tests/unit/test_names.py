"""Antelope account names (actors/names.py): what nodeos accepts, and the reason otherwise."""

from __future__ import annotations

import argparse

import pytest

from actors.names import (
    account_name_arg,
    account_name_problem,
    account_names,
    is_account_name,
    numbered_account,
)


@pytest.mark.parametrize("name", ["a", "eosio", "eosio.token", "worker1", "12345abcdefgh",
                                  "abcdefghijkl", "abcdefghijklj", "a.b.c", "zzzzzzzzzzzz5"])
def test_valid_names(name: str) -> None:
    assert account_name_problem(name) is None
    assert is_account_name(name)
    assert account_name_arg(name) == name


@pytest.mark.parametrize(("name", "why"), [
    ("", "cannot be empty"),
    ("BAD NAME!", "characters other than a-z, 1-5 and '.': ' !ABDEMN'"),
    ("Alice", "characters other than"),
    ("worker6", "'6'"),
    ("worker0", "'0'"),
    ("alice_b", "'_'"),
    ("bob.", "ends with a dot"),
    ("abcdefghijklk", "a 13th character must be one of a-j or 1-5"),
    ("abcdefghijkl.", "a 13th character"),
    ("abcdefghijklmn", "longer than 13 characters"),
])
def test_invalid_names_say_why(name: str, why: str) -> None:
    problem = account_name_problem(name)
    assert problem is not None and why in problem
    assert not is_account_name(name)
    with pytest.raises(argparse.ArgumentTypeError, match="account name"):
        account_name_arg(name)


def test_comma_separated_names() -> None:
    assert account_names("alice, bob,carol") == ("alice", "bob", "carol")
    assert account_names("") == ()
    with pytest.raises(ValueError, match="'BAD NAME!'"):
        account_names("BAD NAME!,x")
    with pytest.raises(ValueError, match="cannot be empty"):
        account_names("alice,,bob")


def test_numbered_accounts_are_valid_distinct_and_keep_the_first_five() -> None:
    names = [numbered_account("worker", n) for n in range(1, 201)]
    assert names[:6] == ["worker1", "worker2", "worker3", "worker4", "worker5", "worker11"]
    assert names[29:31] == ["worker55", "worker111"]
    assert len(set(names)) == len(names)
    assert all(is_account_name(name) for name in names)
    with pytest.raises(ValueError, match="start at 1"):
        numbered_account("worker", 0)
    with pytest.raises(ValueError, match="longer than 13"):
        numbered_account("workerworker", 10**6)
