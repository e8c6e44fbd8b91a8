"""Subaccounts (issue 19.4): the simulator keeps orders, fills, positions and cash per subaccount
number, as Kalshi does; writes act in the subaccount they name; cancel-all clears one subaccount
(or all) and, as Kalshi warns, orders placed in the minute after."""

from __future__ import annotations

import pytest

from common.domain import Side, make_client_order_id
from common.kalshi import KalshiClient
from common.kalshi.errors import NotFound
from common.kalshi.signing import Signer
from common.kalshi.wire.orders import OrderRequest
from sim.engine import CANCEL_ALL_REACH_MS, Exchange
from sim.engine import OrderRequest as SimRequest
from sim.model import BookSide, OrderStatus
from tests.sim.simtest_helpers import T0, make_exchange
from tests.support.simfix import RunningSim


@pytest.fixture
def ex() -> Exchange:
    return make_exchange()


def bid(ticker: str, price: int, sub: int, count: int = 100) -> SimRequest:
    return SimRequest(ticker, BookSide.BID, price, count, subaccount=sub)


def test_each_subaccount_has_its_own_orders_fills_positions_and_cash(ex: Exchange) -> None:
    ticker = next(iter(ex.markets))
    opening = ex.account("a").cash
    ex.create_order("a", bid(ticker, 4000, 3), T0)
    ex.create_order("b", SimRequest(ticker, BookSide.ASK, 4000, 100), T0 + 1)  # fills it
    three, zero = ex.ledger("a", 3), ex.ledger("a", 0)
    assert three.positions[ticker].position == 100 and ticker not in zero.positions
    assert len(three.fills) == 1 and zero.fills == []
    assert three.cash == opening - 4000 * 100 and zero.cash == opening
    assert three.fills[0].subaccount == 3
    assert ex.total_money() == ex.deposits  # the subaccount's opening cash is a deposit


def test_a_write_acts_only_in_the_subaccount_it_names(ex: Exchange) -> None:
    ticker = next(iter(ex.markets))
    order = ex.create_order("a", bid(ticker, 3000, 5), T0).order
    with pytest.raises(Exception, match="not found"):
        ex.cancel_order("a", order.order_id, T0, subaccount=0)
    assert order.status is OrderStatus.RESTING
    assert ex.cancel_order("a", order.order_id, T0, subaccount=5)[1] == 100


def test_cancel_all_clears_one_subaccount_and_orders_of_the_minute_after(ex: Exchange) -> None:
    ticker = next(iter(ex.markets))
    mine = ex.create_order("a", bid(ticker, 3000, 2), T0).order
    theirs = ex.create_order("a", bid(ticker, 3100, 0), T0).order
    assert ex.cancel_all("a", T0 + 10, subaccount=2) == 1
    assert mine.status is OrderStatus.CANCELED and theirs.status is OrderStatus.RESTING
    late = ex.create_order("a", bid(ticker, 3200, 2), T0 + 20_000).order
    later = ex.create_order("a", bid(ticker, 3300, 2), T0 + 10 + CANCEL_ALL_REACH_MS).order
    other = ex.create_order("a", bid(ticker, 3400, 0), T0 + 20_000).order
    ex.expire_orders(T0 + 10 + CANCEL_ALL_REACH_MS - 1)
    assert late.status is OrderStatus.RESTING  # within the minute it may still rest
    ex.expire_orders(T0 + 10 + CANCEL_ALL_REACH_MS)
    assert late.status is OrderStatus.CANCELED and late.last_update_reason == "CancelAll"
    assert later.status is OrderStatus.RESTING and other.status is OrderStatus.RESTING


async def test_the_rest_api_scopes_every_read_write_and_cancel(
    sim: RunningSim, signer: Signer
) -> None:
    mine = KalshiClient.create(sim.rest_url, signer, subaccount=7)
    primary = KalshiClient.create(sim.rest_url, signer, subaccount=0)
    try:
        ticker = (await mine.get_markets())[0].ticker
        for client, n in ((mine, 1), (mine, 2), (primary, 5)):
            await client.place_order(
                OrderRequest(
                    ticker, Side.BID, 100 * n, 100, make_client_order_id("s", ticker, "bid", n)
                )
            )
        assert [o.price for o in await mine.get_open_orders()] == [200, 100]
        assert [o.price for o in await primary.get_open_orders()] == [500]
        # each has its own cash: $0.03 locked in mine, $0.05 in the primary's
        assert (await mine.get_balance()).balance - (await primary.get_balance()).balance == 20_000
        their_order = (await primary.get_open_orders())[0]
        assert their_order.order_id is not None
        with pytest.raises(NotFound):  # dora's client cannot reach another subaccount's order
            await mine.amend_order(their_order, price=600)
        assert (await mine.cancel_order(their_order.order_id, ticker)).reduced_by == 0
        await mine.cancel_all_orders()
        assert await mine.get_open_orders() == []
        assert len(await primary.get_open_orders()) == 1  # untouched
    finally:
        await mine.aclose()
        await primary.aclose()
