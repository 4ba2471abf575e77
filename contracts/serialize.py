"""Antelope binary serialization of the contracts' action arguments, by hand.

Used where an ABI-driven packer cannot go (e.g. a NaN float32, which JSON cannot carry) and by
the unit tests that check the hand-written ABIs against it.
"""

from __future__ import annotations

import struct
from decimal import Decimal

_CHARMAP = ".12345abcdefghijklmnopqrstuvwxyz"


def name_value(name: str) -> int:
    """The uint64 of an account/action name (at most 12 characters, then one of .1-5a-j)."""
    if len(name) > 13 or any(c not in _CHARMAP for c in name):
        raise ValueError(f"not an Antelope name: {name!r}")
    value = 0
    for i, c in enumerate(name[:12]):
        value |= (_CHARMAP.index(c) & 0x1F) << (64 - 5 * (i + 1))
    if len(name) == 13:
        last = _CHARMAP.index(name[12])
        if last > 0x0F:
            raise ValueError(f"not an Antelope name: {name!r}")
        value |= last
    return value


def varuint32(value: int) -> bytes:
    """LEB128 length prefix."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pack_name(name: str) -> bytes:
    return struct.pack("<Q", name_value(name))


def pack_string(text: str) -> bytes:
    data = text.encode()
    return varuint32(len(data)) + data


def symbol_value(precision: int, code: str) -> int:
    """A symbol as uint64: precision in the low byte, the code's letters above it."""
    value = precision
    for i, c in enumerate(code):
        value |= ord(c) << (8 * (i + 1))
    return value


def pack_asset(text: str) -> bytes:
    """"12.3400 JOB" -> int64 amount + symbol."""
    amount_text, code = text.split()
    precision = len(amount_text.split(".")[1]) if "." in amount_text else 0
    amount = int(Decimal(amount_text).scaleb(precision))
    return struct.pack("<qQ", amount, symbol_value(precision, code))


def pack_f32_bits(bits: int) -> bytes:
    """A float32 given by its raw bits (NaN payloads and signs survive)."""
    return struct.pack("<I", bits)


def pack_f32(value: float) -> bytes:
    return struct.pack("<f", value)


def addprotocol(title: str, owner: str, researcher: str, datadir: str, fundaccount: str,
                fund: str, tokencontract: str, dispatcher_rate: bytes,
                worker_rate: bytes) -> bytes:
    """registry::addprotocol's data; the rates are packed float32 (see pack_f32*)."""
    return (pack_string(title) + pack_name(owner) + pack_name(researcher) + pack_string(datadir)
            + pack_name(fundaccount) + pack_asset(fund) + pack_name(tokencontract)
            + dispatcher_rate + worker_rate)
