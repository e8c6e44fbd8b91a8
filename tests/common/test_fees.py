"""Kalshi's fees: the trade fee, the rounding fee and the per-order accumulator's rebates
(CHANGES-3.34.md "Fees"), for both account types, and conservative prices for unknown types."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.fees import (
    CENT,
    DIRECT_PRECISION,
    TAKER_RATE_BP,
    FeeType,
    RoundingFee,
    maker_fee,
    maker_rate_bp,
    taker_fee,
)
from common.numbers import COUNT_SCALE, MONEY_SCALE, PRICE_SCALE

DOLLAR = MONEY_SCALE


def test_one_maker_contract_at_fifty_cents_costs_a_non_direct_member_a_cent() -> None:
    """The example of the docs: trade fee $0.0044, the balance drops by $0.01 for it."""
    trade = maker_fee(FeeType.QUADRATIC_WITH_MAKER_FEES, 5000, 1 * COUNT_SCALE)
    assert trade == 4_400
    rounded = RoundingFee.for_member(False).apply(True, 5000, COUNT_SCALE, trade, 0)
    assert (rounded.rounding_fee, rounded.rebate, rounded.net) == (5_600, 0, CENT)
    # a direct member's balance moves in $0.0001: no rounding on a fee already rounded to it
    direct = RoundingFee.for_member(True).apply(True, 5000, COUNT_SCALE, trade, 0)
    assert direct.net == trade and direct.rounding_fee == 0


def test_the_accumulator_refunds_a_cent_once_the_overpaid_rounding_exceeds_one() -> None:
    """Ten 1-lot fills at $0.055 (taker, quadratic): each alone rounds to $0.06 lost; over the
    order the roundings pass $0.01 once and a cent comes back: $0.59, what one fill of ten
    would cost ($0.55 + $0.0364 trade fees = $0.5864, floored)."""
    rule = RoundingFee.for_member(False)
    accumulator, balance = 0, 0
    total_fee = taker_fee(550, 10 * COUNT_SCALE)  # the order's running total, rounded up
    for filled in range(10):
        # the fill's trade fee: the increase of the order's rounded running total
        trade = taker_fee(550, (filled + 1) * COUNT_SCALE) - taker_fee(550, filled * COUNT_SCALE)
        rounded = rule.apply(True, 550, COUNT_SCALE, trade, accumulator)
        accumulator = rounded.accumulator
        balance -= 550 * COUNT_SCALE + rounded.net
        assert balance % CENT == 0  # always aligned to the member's precision
    assert total_fee == 36_400
    assert balance == -59 * CENT


@settings(max_examples=300, deadline=None)
@given(
    fills=st.lists(
        st.tuples(
            st.booleans(),
            st.integers(1, PRICE_SCALE - 1),
            st.integers(1, 500 * COUNT_SCALE),
            st.integers(0, 5 * DOLLAR),
        ),
        min_size=1,
        max_size=30,
    ),
    direct=st.booleans(),
)
def test_the_balance_stays_aligned_and_an_orders_net_fees_never_go_below_its_trade_fees(
    fills: list[tuple[bool, int, int, int]], direct: bool
) -> None:
    """One fill's rebate can exceed its own fees (a zero-fee maker fill at a subpenny price),
    but over the order the rebates never exceed the roundings paid."""
    rule = RoundingFee.for_member(direct)
    accumulator, balance, net, trades = 0, 0, 0, 0
    for is_bid, price, count, raw_fee in fills:
        trade = raw_fee - raw_fee % 100  # trade fees come in $0.0001
        rounded = rule.apply(is_bid, price, count, trade, accumulator)
        net, trades = net + rounded.net, trades + trade
        assert net >= trades and 0 <= rounded.rounding_fee < rule.precision
        assert 0 <= rounded.accumulator <= CENT
        accumulator = rounded.accumulator
        revenue = -price * count if is_bid else price * count
        balance += revenue - rounded.net
        assert balance % rule.precision == 0


@pytest.mark.parametrize(
    "fee_type",
    [FeeType.FLAT, FeeType.MARGIN_MARKET_MAKER_PROGRAM_FEES, FeeType.UNKNOWN],
)
def test_types_whose_rates_dora_does_not_know_pay_the_taker_rate_as_makers(
    fee_type: FeeType,
) -> None:
    assert maker_rate_bp(fee_type) == TAKER_RATE_BP
    assert maker_fee(fee_type, 5000, COUNT_SCALE) == taker_fee(5000, COUNT_SCALE)
    assert FeeType.parse("never_heard_of_it") is FeeType.UNKNOWN


def test_direct_precision_is_a_hundredth_of_a_cent() -> None:
    assert DIRECT_PRECISION * 100 == CENT
