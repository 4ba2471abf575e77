"""The pay formula of contracts/include/cj/pay.hpp in Python: the reference the unit tests
check the arithmetic against and the integration tests predict balances with."""

from __future__ import annotations

import math
import struct

RATE_SCALE_US = 10**12  # 10^6 us per second * 10^6 for the rate's fraction digits
RATE_FRACTION_DIGITS = 6
MAX_RATE = 1_000_000.0  # whole tokens per second
MAX_TIME = 1 << 62  # microseconds
MAX_ASSET_AMOUNT = (1 << 62) - 1


class RateError(ValueError):
    """A rate the registry refuses; the message is the contract's wording after the rate name."""


def float32(value: float) -> float:
    """``value`` rounded to float32, as the action data carries it."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def rate_to_fixed(rate: float, precision: int) -> int:
    """The fixed-point rate stored in the protocol row (units: 10^-6 of the fund's smallest
    unit per second), computed with the same IEEE double steps as the contract."""
    rate = float32(rate)
    if math.isnan(rate) or math.isinf(rate):
        raise RateError("must be a finite number")
    if rate == 0.0:
        return 0
    if rate < 0:
        raise RateError("must not be negative")
    if rate > MAX_RATE:
        raise RateError("must be at most 1000000 tokens per second")
    scaled = rate
    for _ in range(precision + RATE_FRACTION_DIGITS):
        scaled *= 10.0
    if scaled >= 2.0**63:
        raise RateError("is too large for the fund's precision")
    fixed = int(scaled + 0.5)
    if fixed == 0:
        raise RateError("is below the smallest rate the fund's precision can pay")
    return fixed


def time_value(time_us: int, rate_fixed: int) -> int:
    """The value of ``time_us`` at ``rate_fixed`` in the fund's smallest units, rounded down
    (unbounded, like the contract's 128-bit intermediate)."""
    return time_us * rate_fixed // RATE_SCALE_US


def compute_pay(total_us: int, unpaid_us: int, rate_fixed: int) -> int:
    """Pay for the ``unpaid_us`` latest microseconds of ``total_us``:
    value(total) - value(total - unpaid), so payouts telescope to value(total). Only this
    difference must fit a token amount (see compute_pay in pay.hpp)."""
    if unpaid_us > total_us:
        raise ValueError("unpaid time exceeds total time")
    if unpaid_us <= 0 or rate_fixed == 0:
        return 0
    pay = time_value(total_us, rate_fixed) - time_value(total_us - unpaid_us, rate_fixed)
    if pay > MAX_ASSET_AMOUNT:
        raise OverflowError("pay exceeds the largest token amount")
    return pay
