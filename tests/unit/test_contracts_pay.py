"""The pay formula's Python reference (contracts/pay.py), which the contract must agree with."""

from __future__ import annotations

import math

import pytest

from contracts import pay


def test_rate_units_half_a_token_per_second() -> None:
    fixed = pay.rate_to_fixed(0.5, 4)
    assert fixed == 5_000_000_000
    # One second at 0.5 JOB/s is 0.5000 JOB = 5000 units.
    assert pay.compute_pay(1_000_000, 1_000_000, fixed) == 5_000


def test_float32_rate_is_converted_once_with_rounding() -> None:
    # 0.3 is 0.300000011920928955078125 as float32: the fixed rate keeps that value.
    assert pay.rate_to_fixed(0.3, 4) == 3_000_000_119
    assert pay.rate_to_fixed(0.3, 0) == 300_000


@pytest.mark.parametrize("rate,message", [
    (math.nan, "must be a finite number"),
    (math.inf, "must be a finite number"),
    (-math.inf, "must be a finite number"),
    (-0.5, "must not be negative"),
    (2_000_000.0, "must be at most 1000000 tokens per second"),
    (1e-30, "is below the smallest rate the fund's precision can pay"),
])
def test_bad_rates(rate: float, message: str) -> None:
    with pytest.raises(pay.RateError, match=f"^{message}$"):
        pay.rate_to_fixed(rate, 4)


def test_rate_too_large_for_precision() -> None:
    with pytest.raises(pay.RateError, match="too large for the fund's precision"):
        pay.rate_to_fixed(1_000_000.0, 18)
    assert pay.rate_to_fixed(0.0, 18) == 0
    assert pay.rate_to_fixed(-0.0, 4) == 0


@pytest.mark.parametrize("rate", [0.0001, 0.3, 0.125, 7.77, 1000.0])
def test_splitting_time_across_payouts_pays_the_same_as_one_payout(rate: float) -> None:
    fixed = pay.rate_to_fixed(rate, 4)
    total, unpaid, paid = 0, 0, 0
    chunks = [1_234_567 + 977 * i for i in range(200)] + [1, 3, 999_999]
    for n, chunk in enumerate(chunks):
        total += chunk
        unpaid += chunk
        if n % 3 == 0:  # pay out every third job
            paid += pay.compute_pay(total, unpaid, fixed)
            unpaid = 0
    paid += pay.compute_pay(total, unpaid, fixed)
    # Nothing lost, nothing paid twice: the sum is the value of the whole time.
    assert paid == pay.time_value(sum(chunks), fixed)
    # A single payout of many jobs rounds down once: at most one unit below the exact value.
    exact = sum(chunks) * fixed / pay.RATE_SCALE_US
    assert exact - 1 < paid <= exact


def test_small_unpaid_time_is_paid_once_enough_accumulates() -> None:
    fixed = pay.rate_to_fixed(0.3, 4)  # 0.3 JOB/s: one unit is worth about 333 us
    assert pay.compute_pay(300, 300, fixed) == 0
    # The 300 us stay unpaid (payout refused); with 100 us more they are worth a unit.
    assert pay.compute_pay(400, 400, fixed) == 1
    # Settled at 333 us of value: 400 us more later pays the carried fraction too.
    assert pay.compute_pay(800, 400, fixed) == 1
    assert pay.time_value(800, fixed) == 2


def test_unpaid_cannot_exceed_total() -> None:
    with pytest.raises(ValueError):
        pay.compute_pay(5, 6, 1)


def test_largest_inputs_stay_in_128_bits_or_are_refused() -> None:
    fixed = pay.rate_to_fixed(1_000_000.0, 4)
    assert pay.time_value(pay.MAX_TIME - 1, 10**12) == pay.MAX_TIME - 1
    assert (pay.MAX_TIME - 1) * (2**63 - 1) < 2**128
    with pytest.raises(OverflowError):
        pay.compute_pay(pay.MAX_TIME - 1, pay.MAX_TIME - 1, fixed)


def test_only_the_payout_must_fit_a_token_amount() -> None:
    # A long history at a high rate is worth more than 2^62-1 units; a small new slice is
    # still payable (the contract bounds the difference, not value(total)).
    fixed = pay.rate_to_fixed(1_000_000.0, 4)
    total = pay.MAX_TIME - 1
    assert pay.time_value(total, fixed) > pay.MAX_ASSET_AMOUNT
    assert pay.compute_pay(total, 1_000, fixed) == 10_000_000
