"""The matching engine: order types, self-trade prevention, fees, netting, amend/decrease."""

from __future__ import annotations

import pytest

from common.fees import maker_fee, taker_fee
from common.numbers import ONE_DOLLAR
from sim import lifecycle
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, OrderStatus, SelfTradePrevention, TimeInForce
from tests.sim.simtest_helpers import T0, make_exchange

BID, ASK = BookSide.BID, BookSide.ASK
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK


def order(ticker: str, side: BookSide, price: int, count: int, **kw: object) -> OrderRequest:
    return OrderRequest(ticker, side, price, count, **kw)  # type: ignore[arg-type]


@pytest.fixture
def ex() -> Exchange:
    return make_exchange()


@pytest.fixture
def ticker(ex: Exchange) -> str:
    return next(iter(ex.markets))


def test_resting_orders_do_not_cross_and_trade_at_the_resting_price(ex: Exchange, ticker: str):
    ex.create_order("a", order(ticker, BID, 5600, 1000), T0)
    result = ex.create_order("b", order(ticker, ASK, 5000, 400), T0 + 1)
    assert result.fill_count == 400
    assert result.fill_money == 5600 * 400
    assert result.order.status is OrderStatus.EXECUTED
    book = ex.books[ticker]
    assert book.yes_levels() == [(5600, 600)]
    assert book.no_levels() == []


def test_price_time_priority(ex: Exchange, ticker: str):
    first = ex.create_order("a", order(ticker, BID, 5000, 100), T0).order
    second = ex.create_order("c", order(ticker, BID, 5000, 100), T0 + 1).order
    better = ex.create_order("c", order(ticker, BID, 5100, 100), T0 + 2).order
    ex.create_order("b", order(ticker, ASK, 5000, 150), T0 + 3)
    assert better.status is OrderStatus.EXECUTED
    assert first.filled == 50 and second.filled == 0
    assert ex.queue_position(second) == 50


def test_post_only_rejects_a_cross(ex: Exchange, ticker: str):
    ex.create_order("a", order(ticker, BID, 5600, 100), T0)
    with pytest.raises(EngineError) as info:
        ex.create_order("b", order(ticker, ASK, 5600, 100, post_only=True), T0)
    assert (info.value.code, info.value.details) == ("invalid_order", "post only cross")


def test_ioc_fills_what_it_can_and_cancels_the_rest(ex: Exchange, ticker: str):
    ex.create_order("a", order(ticker, BID, 5600, 100), T0)
    result = ex.create_order("b", order(ticker, ASK, 5500, 300, tif=IOC), T0)
    assert result.fill_count == 100
    assert result.order.remaining == 0 and result.order.status is OrderStatus.CANCELED
    none = ex.create_order("b", order(ticker, ASK, 5500, 300, tif=IOC), T0)
    assert none.fill_count == 0 and none.order.status is OrderStatus.CANCELED


def test_fok_is_all_or_nothing(ex: Exchange, ticker: str):
    ex.create_order("a", order(ticker, BID, 5600, 100), T0)
    killed = ex.create_order("b", order(ticker, ASK, 5500, 101, tif=FOK), T0)
    assert killed.fill_count == 0 and killed.order.status is OrderStatus.CANCELED
    filled = ex.create_order("b", order(ticker, ASK, 5500, 100, tif=FOK), T0)
    assert filled.fill_count == 100 and filled.order.status is OrderStatus.EXECUTED


def test_stp_taker_at_cross_cancels_the_incoming_order(ex: Exchange, ticker: str):
    ex.create_order("a", order(ticker, BID, 5600, 100), T0)
    mine = ex.create_order("b", order(ticker, BID, 5500, 100), T0).order
    result = ex.create_order(
        "b", order(ticker, ASK, 5400, 300, stp=SelfTradePrevention.TAKER_AT_CROSS), T0
    )
    assert result.fill_count == 100  # the fill before the self-cross stands
    assert result.order.status is OrderStatus.CANCELED
    assert mine.is_resting


def test_stp_maker_cancels_the_resting_order_and_continues(ex: Exchange, ticker: str):
    mine = ex.create_order("b", order(ticker, BID, 5600, 100), T0).order
    ex.create_order("a", order(ticker, BID, 5500, 100), T0)
    result = ex.create_order("b", order(ticker, ASK, 5400, 100, stp=SelfTradePrevention.MAKER), T0)
    assert mine.status is OrderStatus.CANCELED
    assert result.fill_count == 100 and result.fill_money == 5500 * 100


def test_client_order_id_is_idempotent(ex: Exchange, ticker: str):
    ex.create_order("a", order(ticker, BID, 5000, 100, client_order_id="x1"), T0)
    with pytest.raises(EngineError) as info:
        ex.create_order("a", order(ticker, BID, 5000, 100, client_order_id="x1"), T0)
    assert info.value.status == 409 and info.value.code == "order_already_exists"
    ex.create_order("b", order(ticker, BID, 5000, 100, client_order_id="x1"), T0)  # other user


def test_balance_check(ex: Exchange, ticker: str):
    ex.open_account("poor", 10 * 1_000_000)
    with pytest.raises(EngineError) as info:
        ex.create_order("poor", order(ticker, BID, 5000, 2100), T0)
    assert info.value.code == "available_balance_too_low"
    ex.create_order("poor", order(ticker, BID, 5000, 1900), T0)
    assert ex.accounts["poor"].available == 10_000_000 - 5000 * 1900


def test_off_grid_price_and_bad_size(ex: Exchange, ticker: str):
    with pytest.raises(EngineError) as info:
        ex.create_order("a", order(ticker, BID, 5650, 100), T0)
    assert info.value.code == "invalid_parameters"
    with pytest.raises(EngineError) as info:
        ex.create_order("a", order(ticker, BID, 5600, 0), T0)
    assert info.value.code == "invalid_order_size"


def test_taker_and_maker_fees_follow_the_series(ex: Exchange):
    maker_fee_market = next(t for t, m in ex.markets.items() if m.series_ticker == "SIMMF")
    half_fee_market = next(t for t, m in ex.markets.items() if m.series_ticker == "SIMIDX")
    ex.create_order("a", order(maker_fee_market, BID, 3000, 1000), T0)
    taker = ex.create_order("b", order(maker_fee_market, ASK, 3000, 1000), T0)
    assert taker.fees == taker_fee(3000, 1000)
    maker = ex.accounts["a"].fills[-1]
    assert maker.fee == maker_fee(ex.markets[maker_fee_market].fee_type, 3000, 1000)
    ex.create_order("a", order(half_fee_market, BID, 3000, 1000), T0)
    taker = ex.create_order("b", order(half_fee_market, ASK, 3000, 1000), T0)
    assert taker.fees == taker_fee(3000, 1000, 50)
    assert ex.accounts["a"].fills[-1].fee == 0


def test_netting_closes_positions_and_returns_cash(ex: Exchange, ticker: str):
    a = ex.accounts["a"]
    start = a.cash
    ex.create_order("b", order(ticker, ASK, 4000, 1000), T0)
    ex.create_order("a", order(ticker, BID, 4000, 1000), T0)  # a buys 10 YES at 0.40
    paid = 4000 * 1000 + taker_fee(4000, 1000)
    assert a.cash == start - paid
    ex.create_order("b", order(ticker, BID, 6000, 1000), T0)
    ex.create_order("a", order(ticker, ASK, 6000, 1000), T0)  # a sells them at 0.60
    assert a.positions[ticker].position == 0
    assert a.cash == start - paid + 6000 * 1000 - taker_fee(6000, 1000)
    assert a.positions[ticker].realized_pnl == (6000 - 4000) * 1000
    assert ex.total_money() == ex.deposits


def test_amend_decrease_keeps_priority_and_increase_loses_it(ex: Exchange, ticker: str):
    first = ex.create_order("a", order(ticker, BID, 5000, 300), T0).order
    second = ex.create_order("c", order(ticker, BID, 5000, 100), T0).order
    ex.amend_order("a", first.order_id, T0, ticker=ticker, side=BID, price=5000, count=200)
    assert ex.queue_position(first) == 0 and ex.queue_position(second) == 200
    ex.amend_order("a", first.order_id, T0, ticker=ticker, side=BID, price=5000, count=400)
    assert ex.queue_position(second) == 0 and ex.queue_position(first) == 100


def test_amend_count_is_filled_plus_remaining_and_can_cross(ex: Exchange, ticker: str):
    resting = ex.create_order("a", order(ticker, BID, 5000, 300), T0).order
    ex.create_order("b", order(ticker, ASK, 5000, 100), T0)
    assert resting.filled == 100 and resting.remaining == 200
    ex.create_order("c", order(ticker, ASK, 5300, 50), T0)
    result = ex.amend_order(
        "a", resting.order_id, T0, ticker=ticker, side=BID, price=5300, count=250
    )
    assert result.fill_count == 50
    assert resting.filled == 150 and resting.remaining == 100 and resting.price == 5300


def test_an_amend_refused_for_collateral_leaves_the_order_as_it_was(ex: Exchange, ticker: str):
    """Found by the engine property test: the refused amend had already set the new count."""
    ex.open_account("poor", 5 * 1_000_000)
    resting = ex.create_order("poor", order(ticker, ASK, 9900, 1000, client_order_id="x"), T0).order
    with pytest.raises(EngineError) as info:  # an ask at 10 cents locks 90 cents: $8.10 > $5
        ex.amend_order(
            "poor",
            resting.order_id,
            T0,
            ticker=ticker,
            side=ASK,
            price=1000,
            count=900,
            updated_client_order_id="y",
        )
    assert info.value.code == "available_balance_too_low"
    assert (resting.price, resting.initial_count, resting.remaining) == (9900, 1000, 1000)
    assert resting.client_order_id == "x" and "x" in ex.accounts["poor"].orders_by_client_id


def test_amend_mismatches(ex: Exchange, ticker: str):
    resting = ex.create_order("a", order(ticker, BID, 5000, 300, client_order_id="c1"), T0).order
    for kwargs, code in (
        ({"ticker": "NOPE", "side": BID}, "order_ticker_mismatch"),
        ({"ticker": ticker, "side": ASK}, "order_side_mismatch"),
        (
            {"ticker": ticker, "side": BID, "client_order_id": "c2"},
            "order_id_and_client_order_id_mismatch",
        ),
    ):
        with pytest.raises(EngineError) as info:
            ex.amend_order("a", resting.order_id, T0, price=5000, count=100, **kwargs)  # type: ignore[arg-type]
        assert info.value.code == code


def test_decrease_by_and_to(ex: Exchange, ticker: str):
    resting = ex.create_order("a", order(ticker, BID, 5000, 300), T0).order
    ex.decrease_order("a", resting.order_id, T0, reduce_by=100)
    assert resting.remaining == 200
    ex.decrease_order("a", resting.order_id, T0, reduce_to=50)
    assert resting.remaining == 50
    ex.decrease_order("a", resting.order_id, T0, reduce_to=0)
    assert resting.status is OrderStatus.CANCELED
    assert ex.accounts["a"].locked == 0


def test_gtc_expiration(ex: Exchange, ticker: str):
    resting = ex.create_order("a", order(ticker, BID, 5000, 300, expiration_ms=T0 + 5000), T0).order
    lifecycle.advance(ex, T0 + 4999)
    assert resting.is_resting
    lifecycle.advance(ex, T0 + 5000)
    assert resting.status is OrderStatus.CANCELED
    with pytest.raises(EngineError):
        ex.create_order("a", order(ticker, BID, 5000, 1, expiration_ms=T0 - 1), T0)
    with pytest.raises(EngineError):
        ex.create_order("a", order(ticker, BID, 5000, 1, tif=IOC, expiration_ms=T0 + 9), T0)


def test_lifecycle_pause_resume_close_settle(ex: Exchange, ticker: str):
    keep = ex.create_order("a", order(ticker, BID, 5000, 300), T0).order
    pull = ex.create_order("a", order(ticker, BID, 4900, 300, cancel_on_pause=True), T0).order
    lifecycle.pause(ex, ticker, T0)
    assert keep.is_resting and pull.status is OrderStatus.CANCELED
    with pytest.raises(EngineError) as info:
        ex.create_order("a", order(ticker, BID, 5000, 300), T0)
    assert info.value.code == "MARKET_INACTIVE"
    lifecycle.resume(ex, ticker, T0)
    assert keep.status is OrderStatus.CANCELED  # reactivation cancels resting orders
    ex.create_order("a", order(ticker, BID, 6000, 1000), T0)
    ex.create_order("b", order(ticker, ASK, 6000, 1000), T0)
    lifecycle.close_now(ex, ticker, T0 + 10)
    with pytest.raises(EngineError):
        ex.create_order("a", order(ticker, BID, 5000, 300), T0 + 11)
    lifecycle.determine(ex, ticker, "yes", T0 + 20)
    cash_a, cash_b = ex.accounts["a"].cash, ex.accounts["b"].cash
    lifecycle.advance(ex, T0 + 20 + ex.markets[ticker].settlement_timer_s * 1000)
    assert ex.markets[ticker].status.value == "finalized"
    assert ex.accounts["a"].cash == cash_a + 10 * ONE_DOLLAR * 100
    assert ex.accounts["b"].cash == cash_b
    assert ticker not in ex.accounts["a"].positions
    settlement = ex.accounts["a"].settlements[-1]
    assert settlement.yes_count == 1000 and settlement.revenue == 10 * 1_000_000
    assert ex.total_money() == ex.deposits


def test_order_group_triggers_on_limit_and_resets(ex: Exchange, ticker: str):
    from sim import groups

    group = groups.create_group(ex, "a", 500, T0)
    g = group.group_id
    resting = ex.create_order("a", order(ticker, BID, 5000, 400, order_group_id=g), T0).order
    other = ex.create_order("a", order(ticker, BID, 4000, 800, order_group_id=g), T0).order
    ex.create_order("b", order(ticker, ASK, 5000, 300), T0)
    assert not group.triggered
    ex.create_order("b", order(ticker, ASK, 5000, 200), T0 + 20_000)  # window rolled: 200
    assert not group.triggered
    assert resting.status is OrderStatus.EXECUTED  # 300 + 100; the first 300 rolled out
    ex.create_order("b", order(ticker, ASK, 4000, 400), T0 + 21_000)  # window 100 + 400
    assert group.triggered
    assert other.status is OrderStatus.CANCELED and other.filled == 400
    with pytest.raises(EngineError):
        ex.create_order("a", order(ticker, BID, 4000, 100, order_group_id=g), T0 + 21_000)
    groups.reset_group(ex, "a", g, T0 + 22_000)
    ex.create_order("a", order(ticker, BID, 4000, 100, order_group_id=g), T0 + 22_000)
