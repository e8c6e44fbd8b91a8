"""Hypothesis properties of the matching engine under random order flow.

After every operation: no crossed book at rest; contracts and cash are conserved (fees go to
the exchange); positions equal the signed sum of fills; collateral is never negative and equals
what the resting orders hold; book levels equal the sum of their orders.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import lifecycle
from sim.catalog import build_catalog
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, SelfTradePrevention, TimeInForce
from sim.scenario import load_scenario
from tests.sim.simtest_helpers import T0

ACCOUNTS = ("a", "b", "c")

create = st.tuples(
    st.just("create"),
    st.sampled_from(ACCOUNTS),
    st.integers(0, 1),  # market
    st.sampled_from(BookSide),
    st.integers(1, 99),  # cents
    st.integers(1, 3000),  # centi-contracts
    st.sampled_from(TimeInForce),
    st.sampled_from(SelfTradePrevention),
    st.booleans(),  # post only
)
cancel = st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS), st.integers(0, 50))
amend = st.tuples(
    st.just("amend"),
    st.sampled_from(ACCOUNTS),
    st.integers(0, 50),
    st.integers(1, 99),
    st.integers(1, 3000),
)
decrease = st.tuples(
    st.just("decrease"), st.sampled_from(ACCOUNTS), st.integers(0, 50), st.integers(0, 3000)
)
operations = st.lists(st.one_of(create, create, create, cancel, amend, decrease), max_size=60)


def build(balances: list[int]) -> Exchange:
    exchange = Exchange()
    build_catalog(exchange, load_scenario("calm"), 4, T0)
    lifecycle.advance(exchange, T0)
    for key_id, dollars in zip(ACCOUNTS, balances, strict=True):
        exchange.open_account(key_id, dollars * 1_000_000)
    return exchange


def check_invariants(ex: Exchange) -> None:
    for ticker, book in ex.books.items():
        assert not book.is_crossed(), ticker
        for half in (book.bids, book.asks):
            for level in half.levels.values():
                assert level.size == sum(o.remaining for o in level.orders.values()) > 0
        assert (
            sum(a.positions[ticker].position for a in ex.accounts.values() if ticker in a.positions)
            == 0
        )
        long = sum(
            max(a.positions[ticker].position, 0)
            for a in ex.accounts.values()
            if ticker in a.positions
        )
        assert long == ex.markets[ticker].open_interest
    assert ex.total_money() == ex.deposits
    for account in ex.accounts.values():
        assert account.locked == sum(o.locked for o in account.resting.values())
        assert account.locked >= 0
        assert account.available >= 0, account.key_id
        signed: dict[str, int] = defaultdict(int)
        for fill in account.fills:
            signed[fill.ticker] += fill.count * fill.side.sign
        for ticker, position in account.positions.items():
            assert position.position == signed[ticker]
        for order in account.orders.values():
            assert order.filled + order.remaining <= order.initial_count
            assert order.remaining >= 0


def resting_of(ex: Exchange, key_id: str, index: int):  # type: ignore[no-untyped-def]
    resting = list(ex.accounts[key_id].resting.values())
    return resting[index % len(resting)] if resting else None


def apply(ex: Exchange, op: tuple, now_ms: int) -> None:  # type: ignore[type-arg]
    tickers = list(ex.markets)
    try:
        if op[0] == "create":
            _, key, m, side, cents, count, tif, stp, post_only = op
            request = OrderRequest(
                tickers[m], side, cents * 100, count, tif=tif, stp=stp, post_only=post_only
            )
            ex.create_order(key, request, now_ms)
        elif op[0] == "cancel":
            order = resting_of(ex, op[1], op[2])
            if order is not None:
                ex.cancel_order(op[1], order.order_id, now_ms)
        elif op[0] == "amend":
            order = resting_of(ex, op[1], op[2])
            if order is not None:
                ex.amend_order(
                    op[1],
                    order.order_id,
                    now_ms,
                    ticker=order.ticker,
                    side=order.side,
                    price=op[3] * 100,
                    count=order.filled + op[4],
                )
        elif op[0] == "decrease":
            order = resting_of(ex, op[1], op[2])
            if order is not None:
                ex.decrease_order(
                    op[1], order.order_id, now_ms, reduce_to=min(op[3], order.remaining)
                )
    except EngineError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=operations,
    balances=st.lists(st.integers(1, 200), min_size=3, max_size=3),
    result=st.sampled_from(["yes", "no"]),
)
def test_engine_invariants_hold_through_random_flow_and_settlement(
    ops: list[tuple],
    balances: list[int],
    result: str,  # type: ignore[type-arg]
) -> None:
    ex = build(balances)
    for i, op in enumerate(ops):
        apply(ex, op, T0 + i)
        check_invariants(ex)
    for ticker in list(ex.markets)[:2]:
        lifecycle.determine(ex, ticker, result, T0 + 10_000)
        lifecycle.settle(ex, ticker, T0 + 20_000)
    check_invariants(ex)
    for account in ex.accounts.values():
        assert account.locked == 0 or any(
            o.ticker not in list(ex.markets)[:2] for o in account.resting.values()
        )


def test_invariants_through_a_long_seeded_run() -> None:
    import random

    rng = random.Random(7)
    ex = build([5000, 5000, 5000])
    sides, tifs, stps = list(BookSide), list(TimeInForce), list(SelfTradePrevention)
    for i in range(3000):
        key, roll = rng.choice(ACCOUNTS), rng.random()
        op: tuple  # type: ignore[type-arg]
        if roll < 0.6:
            op = (
                "create",
                key,
                rng.randint(0, 1),
                rng.choice(sides),
                rng.randint(30, 70),
                rng.randint(1, 3000),
                rng.choice(tifs),
                rng.choice(stps),
                rng.random() < 0.3,
            )
        elif roll < 0.75:
            op = ("cancel", key, rng.randint(0, 50))
        elif roll < 0.9:
            op = ("amend", key, rng.randint(0, 50), rng.randint(30, 70), rng.randint(1, 3000))
        else:
            op = ("decrease", key, rng.randint(0, 50), rng.randint(0, 3000))
        apply(ex, op, T0 + i)
        check_invariants(ex)
    assert ex.counters["trades"] > 200
