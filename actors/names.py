"""Antelope (EOSIO) account names: the one check every role uses before a name reaches a chain.

A name is 1 to 12 characters of ``a-z``, ``1-5`` and ``.``, optionally a 13th character of
``a-j`` or ``1-5`` (only 4 bits are left for it in the 64-bit value), and never ends in a dot
(nodeos would print such a name without the dot, so it could not be given back as written).
Pure: no I/O, no chain.
"""

from __future__ import annotations

import argparse

_FIRST_TWELVE = frozenset("abcdefghijklmnopqrstuvwxyz12345.")
_THIRTEENTH = frozenset("abcdefghij12345")


def account_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Antelope account name, or None when it is one."""
    if not name:
        return "an account name cannot be empty"
    if len(name) > 13:
        return f"account name {name!r} is longer than 13 characters"
    bad = sorted({c for c in name[:12] if c not in _FIRST_TWELVE})
    if bad:
        return (f"account name {name!r} has characters other than a-z, 1-5 and '.': "
                f"{''.join(bad)!r}")
    if len(name) == 13 and name[12] not in _THIRTEENTH:
        return f"account name {name!r}: a 13th character must be one of a-j or 1-5"
    if name.endswith("."):
        return f"account name {name!r} ends with a dot"
    return None


def is_account_name(name: str) -> bool:
    """True when ``name`` is a valid Antelope account name."""
    return account_name_problem(name) is None


def account_names(text: str) -> tuple[str, ...]:
    """Comma-separated account names (blanks around commas ignored); ValueError names the
    first invalid one."""
    names = tuple(part.strip() for part in text.split(","))
    if names == ("",):
        return ()
    for name in names:
        problem = account_name_problem(name)
        if problem:
            raise ValueError(problem)
    return names


def numbered_account(prefix: str, number: int) -> str:
    """``prefix`` followed by ``number`` (1-based) written with the digits an account name allows.

    Bijective base 5 over ``1-5``: 1..5 stay ``1``..``5`` (so ``worker3`` is still ``worker3``),
    6 is ``11``, 30 is ``55``, 31 is ``111``. ValueError when the result is not a valid name.
    """
    if number < 1:
        raise ValueError(f"account numbers start at 1, not {number}")
    digits = ""
    while number:
        number, rest = divmod(number - 1, 5)
        digits = "12345"[rest] + digits
    name = prefix + digits
    problem = account_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def account_name_arg(text: str) -> str:
    """An argparse ``type=`` for one account name: the error names what is wrong."""
    problem = account_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text
