"""The event's worst loss equals a brute-force enumeration of outcomes and fills."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.domain import Fill, Order, OrderStatus, Position, Side
from common.event_loss import (
    MarketLoss,
    cost_from_exposure,
    event_worst_loss,
    market_loss,
    position_losses,
    reserved_orders_loss,
)
from common.numbers import ONE_DOLLAR


def brute_force(markets: list[tuple[int, int, list[Order]]], exclusive: bool) -> int:
    """Every outcome the event allows, every subset of the resting orders filling: the largest
    loss at settlement (cost paid minus what the contracts pay)."""
    n = len(markets)
    if exclusive:
        outcomes = [tuple(i == w for i in range(n)) for w in range(-1, n)]
    else:
        outcomes = list(itertools.product((False, True), repeat=n))
    orders = [(i, o) for i, (_, _, os) in enumerate(markets) for o in os]
    worst = None
    for outcome in outcomes:
        for picks in itertools.product((False, True), repeat=len(orders)):
            q = [m[0] for m in markets]
            c = [m[1] for m in markets]
            for (i, o), filled in zip(orders, picks, strict=True):
                if filled:
                    sign = 1 if o.side is Side.BID else -1
                    q[i] += sign * o.remaining
                    c[i] += sign * o.price * o.remaining
            loss = sum(c[i] - (q[i] * ONE_DOLLAR if outcome[i] else 0) for i in range(n))
            worst = loss if worst is None else max(worst, loss)
    assert worst is not None
    return worst


order_st = st.builds(
    lambda side, price, count: Order(
        "T", side, price, count, "c", "o", OrderStatus.RESTING, 0, count
    ),
    st.sampled_from([Side.BID, Side.ASK]),
    st.integers(100, 9900),
    st.integers(1, 500),
)
market_st = st.tuples(
    st.integers(-800, 800), st.integers(-5_000_000, 5_000_000), st.lists(order_st, max_size=2)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(market_st, min_size=1, max_size=3), st.booleans())
def test_the_worst_loss_is_the_worst_outcome(
    markets: list[tuple[int, int, list[Order]]], exclusive: bool
) -> None:
    losses = [market_loss(q, c, orders) for q, c, orders in markets]
    assert event_worst_loss(losses, exclusive) == brute_force(markets, exclusive)


def test_an_exclusive_event_counts_one_winner() -> None:
    # long 10 YES at $0.30 in each of three exclusive markets: at most one pays $10
    each = market_loss(1000, 3_000_000, [])
    assert (each.if_yes, each.if_no) == (-7_000_000, 3_000_000)
    assert event_worst_loss([each] * 3, True) == 9_000_000  # none wins: all three lost
    assert event_worst_loss([each] * 3, False) == 9_000_000


def test_short_in_every_exclusive_market_loses_only_once() -> None:
    # short 10 YES at $0.40 in three exclusive markets: one winner costs $6, the others gain $4
    each = market_loss(-1000, -4_000_000, [])
    assert event_worst_loss([each] * 3, True) == 6_000_000 - 8_000_000
    assert event_worst_loss([each] * 3, False) == 18_000_000  # each on its own may resolve YES


def test_resting_orders_count_against_their_losing_outcome() -> None:
    bid = Order("T", Side.BID, 4000, 1000, "b", "ob", OrderStatus.RESTING, 0, 1000)
    ask = Order("T", Side.ASK, 6000, 500, "a", "oa", OrderStatus.RESTING, 0, 500)
    loss = market_loss(0, 0, [bid, ask])
    assert loss == MarketLoss(0, 0, 4_000_000, 2_000_000)
    assert event_worst_loss([loss], False) == 4_000_000


def test_the_exchange_exposure_gives_back_the_cost_basis() -> None:
    assert cost_from_exposure(1000, 3_000_000) == 3_000_000
    assert cost_from_exposure(-1000, 4_000_000) == -6_000_000
    assert position_losses(-1000, -6_000_000) == (4_000_000, -6_000_000)


def _fill(order: Order, count: int) -> Fill:
    return Fill("f", "o", order.ticker, order.side, order.price, count, 0, False, 0)


@pytest.mark.parametrize("side", [Side.ASK, Side.BID])
def test_a_reservation_holds_after_a_closing_order_fills(side: Side) -> None:
    """Long 1 YES at $0.10 with 10 asked at $0.50: loss if YES is $0.10 - $1 + $5.00 = $4.10.
    The ask closes the 1 at a $0.40 gain the formula stops counting once realized: after that
    fill the loss if YES is $4.50 with no new order (the bid closing a short the same way, for
    the loss if NO). What the ledger reserved must cover it: the exchange saw an event past
    max_event_loss in the chaos run with the ledger agreeing to the cent."""
    if side is Side.ASK:
        held, order = Position("KX", 100, 100_000), Order("KX", side, 5000, 1000, "c", "o")
    else:
        held, order = Position("KX", -100, -900_000), Order("KX", side, 5000, 1000, "c", "o")
    order = replace(order, status=OrderStatus.RESTING, remaining=1000)
    if_yes, if_no = position_losses(held.position, held.cost)
    part = reserved_orders_loss(side, [order], held.position, held.cost)
    reserved = (if_yes + part) if side is Side.ASK else (if_no + part)
    for closed in (100, 1000):  # the closing contract alone, then the whole order
        after = held.apply_fill(_fill(order, closed))
        rest = replace(order, remaining=1000 - closed)
        loss = market_loss(after.position, after.cost, [rest] if rest.remaining else [])
        assert (loss.if_yes if side is Side.ASK else loss.if_no) <= reserved
