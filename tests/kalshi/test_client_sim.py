"""Every KalshiClient method against the in-process simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.domain import OrderStatus, Side, TimeInForce
from common.fees import FeeType
from common.kalshi import (
    AuthError,
    KalshiClient,
    NotFound,
    OrderRejected,
    OrderRequest,
    make_client_order_id,
    signer_from_pem,
)
from common.kalshi.http import ConnectionLost, HttpResponse, LeanHTTP
from common.kalshi.ratelimit import LocalRateBudget
from common.kalshi.wire.markets import MarketInfo
from common.kalshi.wire.order_changes import CancelResult
from services.executor.kalshi_gateway import KalshiGateway
from services.executor.orders import shortfall
from tests.kalshi.test_signing import rsa_pem
from tests.support.simfix import KEY_ID, MakeClient, sim_control

_seq = 0


def req(ticker: str, side: Side, price: int, count: int, **kwargs: Any) -> OrderRequest:
    global _seq
    _seq += 1
    return OrderRequest(
        ticker, side, price, count, make_client_order_id("test", ticker, side, _seq), **kwargs
    )


async def orders_in_log(running: Any, client_order_id: str) -> list[dict[str, Any]]:
    rows = await sim_control(running, "GET", f"/_sim/orders?key_id={KEY_ID}")
    rows = rows["orders"] if isinstance(rows, dict) else rows
    return [r for r in rows if r["client_order_id"] == client_order_id]


async def test_exchange_status_markets_and_fees(kalshi: KalshiClient, market: MarketInfo) -> None:
    status = await kalshi.get_exchange_status()
    assert status.exchange_active and status.trading_active
    meta = await kalshi.get_market(market.ticker)
    assert meta.ticker == market.ticker and meta.is_open and meta.close_ms > 0
    assert meta.grid.is_valid(5000) and isinstance(meta.fee_type, FeeType)
    metas = await kalshi.get_markets(tickers=[market.ticker])
    assert [m.ticker for m in metas] == [market.ticker]
    everything = await kalshi.get_markets()
    assert len(everything) == 4
    with pytest.raises(NotFound):
        await kalshi.get_market("NOPE-1")


async def test_place_read_and_book(kalshi: KalshiClient, market: MarketInfo) -> None:
    bid = await kalshi.place_order(req(market.ticker, Side.BID, 4200, 1000))
    ask = await kalshi.place_order(req(market.ticker, Side.ASK, 4500, 250))
    assert bid.status is OrderStatus.RESTING and bid.remaining == 1000 and bid.order_id
    book = await kalshi.get_order_book(market.ticker)
    assert (book.best_bid, book.best_bid_size, book.best_ask, book.best_ask_size) == (
        4200,
        1000,
        4500,
        250,
    )
    open_orders = {o.order_id: o for o in await kalshi.get_open_orders(market.ticker)}
    assert set(open_orders) == {bid.order_id, ask.order_id}
    assert open_orders[ask.order_id].side is Side.ASK and open_orders[ask.order_id].price == 4500
    fetched = await kalshi.get_order(bid.order_id)  # type: ignore[arg-type]
    assert fetched.client_order_id == bid.client_order_id and fetched.remaining == 1000
    assert await kalshi.find_order(ask.client_order_id, market.ticker) == open_orders[ask.order_id]


async def test_post_only_cross_is_rejected_with_code(
    kalshi: KalshiClient, other: KalshiClient, market: MarketInfo
) -> None:
    await other.place_order(req(market.ticker, Side.ASK, 5000, 100))
    with pytest.raises(OrderRejected) as info:
        await kalshi.place_order(req(market.ticker, Side.BID, 5100, 100))
    assert info.value.code == "invalid_order"


async def test_amend_count_is_filled_plus_remaining(
    kalshi: KalshiClient, other: KalshiClient, market: MarketInfo
) -> None:
    order = await kalshi.place_order(req(market.ticker, Side.BID, 4000, 1000))
    taker = await other.place_order(
        req(market.ticker, Side.ASK, 4000, 300, post_only=False, time_in_force=TimeInForce.IOC)
    )
    assert taker.filled == 300
    current = await kalshi.get_order(order.order_id)  # type: ignore[arg-type]
    assert (current.filled, current.remaining) == (300, 700)
    amended = await kalshi.amend_order(current, price=4100, remaining=500)
    assert (amended.price, amended.filled, amended.remaining, amended.count) == (
        4100,
        300,
        500,
        800,
    )
    truth = await kalshi.get_order(order.order_id)  # type: ignore[arg-type]
    assert (truth.price, truth.filled, truth.remaining) == (4100, 300, 500)
    assert (await kalshi.get_order_book(market.ticker)).best_bid_size == 500


async def test_decrease_by_and_to(kalshi: KalshiClient, market: MarketInfo) -> None:
    order = await kalshi.place_order(req(market.ticker, Side.ASK, 6000, 1000))
    smaller = await kalshi.decrease_order(order, reduce_by=200)
    assert smaller.remaining == 800 and smaller.status is OrderStatus.RESTING
    smaller = await kalshi.decrease_order(smaller, reduce_to=300)
    assert smaller.remaining == 300
    assert (await kalshi.get_order(order.order_id)).remaining == 300  # type: ignore[arg-type]
    gone = await kalshi.decrease_order(smaller, reduce_to=0)
    assert gone.remaining == 0 and gone.status is OrderStatus.CANCELED


async def test_a_decrease_after_an_execution_not_heard_of_answers_short(
    kalshi: KalshiClient, other: KalshiClient, market: MarketInfo
) -> None:
    """The executor's decrease goes by how much (``reduce_by``): 3 of the bid's 10 executed
    before dora heard, it takes 10 down to 6 and the answer says 3 rest, 3 short of what it
    asked, so the executor looks the order up and keeps the execution counted. By ``reduce_to``
    the answer said 6, the 3 executed were in neither the position nor the resting size (a
    ledger below the exchange at 500 markets, until the fill was posted)."""
    order = await kalshi.place_order(req(market.ticker, Side.BID, 4000, 1000))
    await other.place_order(
        req(market.ticker, Side.ASK, 4000, 300, post_only=False, time_in_force=TimeInForce.IOC)
    )
    answer = await KalshiGateway(kalshi).decrease(order, 600)  # dora still thinks 10 rest
    assert (answer.remaining, shortfall(order, answer, 600)) == (300, 300)
    truth = await kalshi.get_order(order.order_id)  # type: ignore[arg-type]
    assert (truth.filled, truth.remaining) == (300, 300)


async def test_cancel_single_is_idempotent(kalshi: KalshiClient, market: MarketInfo) -> None:
    order = await kalshi.place_order(req(market.ticker, Side.BID, 3000, 400))
    first = await kalshi.cancel_order(order.order_id, market.ticker)  # type: ignore[arg-type]
    assert first.reduced_by == 400 and first.order_id == order.order_id
    again = await kalshi.cancel_order(order.order_id, market.ticker)  # type: ignore[arg-type]
    assert again.reduced_by == 0
    assert (await kalshi.get_order(order.order_id)).status is OrderStatus.CANCELED  # type: ignore[arg-type]


async def test_batch_create_with_partial_errors(kalshi: KalshiClient, market: MarketInfo) -> None:
    good = req(market.ticker, Side.BID, 3500, 100)
    off_grid = req(market.ticker, Side.BID, 3505, 100)  # linear_cent: 0.3505 is not a price
    other_good = req(market.ticker, Side.ASK, 6500, 200)
    results = await kalshi.place_orders([good, off_grid, other_good])
    assert results[0].client_order_id == good.client_order_id  # type: ignore[union-attr]
    assert isinstance(results[1], OrderRejected) and results[1].code
    assert results[2].remaining == 200  # type: ignore[union-attr]
    assert len(await kalshi.get_open_orders(market.ticker)) == 2


async def test_batch_create_splits_to_fit_the_bucket(
    make_client: MakeClient, market: MarketInfo
) -> None:
    client = make_client(budget=LocalRateBudget("basic"))
    assert client.max_batch_create() == 7
    requests = [req(market.ticker, Side.BID, 100 * (i + 1), 100) for i in range(16)]
    results = await client.place_orders(requests)
    assert all(r.status is OrderStatus.RESTING for r in results)  # type: ignore[union-attr]
    assert (
        client.transport.stats.by_status.get(201, 0) + client.transport.stats.by_status.get(200, 0)
        == 3
    )


async def test_batch_cancel_with_partial_errors(kalshi: KalshiClient, market: MarketInfo) -> None:
    a = await kalshi.place_order(req(market.ticker, Side.BID, 2000, 100))
    b = await kalshi.place_order(req(market.ticker, Side.BID, 2100, 100))
    results = await kalshi.cancel_orders(
        [a, (b.order_id, market.ticker), ("no-such-order", market.ticker)]
    )  # type: ignore[list-item]
    assert isinstance(results[0], CancelResult) and results[0].reduced_by == 100
    assert isinstance(results[1], CancelResult) and results[1].reduced_by == 100
    assert isinstance(results[2], CancelResult | Exception)
    if isinstance(results[2], CancelResult):
        assert results[2].reduced_by == 0
    assert await kalshi.get_open_orders(market.ticker) == []


async def test_cancel_all_for_a_market_and_the_account(kalshi: KalshiClient) -> None:
    infos = await kalshi.get_market_infos(status="open")
    first, second = infos[0].ticker, infos[1].ticker
    for ticker in (first, first, second):
        await kalshi.place_order(req(ticker, Side.BID, 1000, 100))
    assert await kalshi.cancel_all_orders(first) == 2
    assert [o.ticker for o in await kalshi.get_open_orders()] == [second]
    assert await kalshi.cancel_all_orders() is None
    assert await kalshi.get_open_orders() == []


async def test_cancel_own_orders_leaves_an_order_placed_by_hand(kalshi: KalshiClient) -> None:
    """What pulling quotes uses: only orders whose client order id dora made are cancelled."""
    ticker = (await kalshi.get_market_infos(status="open"))[0].ticker
    for price in (1000, 1100):
        await kalshi.place_order(req(ticker, Side.BID, price, 100))
    manual = await kalshi.place_order(OrderRequest(ticker, Side.BID, 500, 100, "by-hand-1"))
    assert await kalshi.cancel_own_orders() == 2
    assert [o.order_id for o in await kalshi.get_open_orders()] == [manual.order_id]


async def test_repeated_client_order_id_returns_the_same_order(
    kalshi: KalshiClient, sim: Any, market: MarketInfo
) -> None:
    request = req(market.ticker, Side.BID, 4400, 100)
    first = await kalshi.place_order(request)
    second = await kalshi.place_order(request)  # 409 order_already_exists -> looked up
    assert second.order_id == first.order_id
    assert len(await orders_in_log(sim, request.client_order_id)) == 1


class LoseFirstCreateAnswer(LeanHTTP):
    """Delivers the first create to the exchange, then loses its answer (connection reset)."""

    lost = 0

    async def request(self, method: str, path: str, **options: Any) -> HttpResponse:
        response = await super().request(method, path, **options)
        if method == "POST" and path.endswith("/events/orders") and self.lost == 0:
            self.lost += 1
            raise ConnectionLost("connection reset by peer")
        return response


async def test_transport_error_during_create_ends_with_exactly_one_order(
    make_client: MakeClient, sim: Any, market: MarketInfo
) -> None:
    lossy = LoseFirstCreateAnswer(sim.rest_url)
    client = make_client(http=lossy)
    request = req(market.ticker, Side.BID, 4300, 700)
    order = await client.place_order(request)
    assert lossy.lost == 1
    assert order.client_order_id == request.client_order_id and order.remaining == 700
    assert len(await orders_in_log(sim, request.client_order_id)) == 1
    assert len(await client.get_open_orders(market.ticker)) == 1


async def test_429_burst_is_waited_out(kalshi: KalshiClient, sim: Any) -> None:
    await sim_control(sim, "POST", "/_sim/faults", {"burst_429_s": 0.4})
    balance = await kalshi.get_balance()
    assert balance.balance > 0
    assert kalshi.transport.stats.rate_limited >= 1
    stats = await sim_control(sim, "GET", "/_sim/stats")
    assert stats["http_429"] == kalshi.transport.stats.rate_limited


async def test_5xx_reads_and_cancels_are_retried(
    kalshi: KalshiClient, sim: Any, market: MarketInfo
) -> None:
    order = await kalshi.place_order(req(market.ticker, Side.BID, 1500, 100))
    await sim_control(sim, "POST", "/_sim/faults", {"error_5xx_rate": 0.5})
    for _ in range(10):
        await kalshi.get_exchange_status()
    result = await kalshi.cancel_order(order.order_id, market.ticker)  # type: ignore[arg-type]
    await sim_control(sim, "POST", "/_sim/faults", {"clear": True})
    assert result.order_id == order.order_id
    assert kalshi.transport.stats.server_errors >= 1
    assert await kalshi.get_open_orders(market.ticker) == []


async def test_5xx_on_create_resends_and_never_duplicates(
    kalshi: KalshiClient, sim: Any, market: MarketInfo
) -> None:
    await sim_control(sim, "POST", "/_sim/faults", {"error_5xx_rate": 0.6})
    placed = []
    for i in range(8):
        try:
            placed.append(
                await kalshi.place_order(req(market.ticker, Side.BID, 100 + 100 * i, 100))
            )
        except Exception as exc:  # OutcomeUnknown is allowed; duplicates are not
            placed.append(exc)  # type: ignore[arg-type]
    await sim_control(sim, "POST", "/_sim/faults", {"clear": True})
    rows = await sim_control(sim, "GET", f"/_sim/orders?key_id={KEY_ID}")
    rows = rows["orders"] if isinstance(rows, dict) else rows
    ids = [r["client_order_id"] for r in rows]
    assert len(ids) == len(set(ids))


async def test_positions_balance_and_fills_since(
    kalshi: KalshiClient, other: KalshiClient, market: MarketInfo
) -> None:
    before = await kalshi.get_balance()
    start_ms = kalshi.clock.now_ms()
    await kalshi.place_order(req(market.ticker, Side.BID, 4000, 500))
    await other.place_order(
        req(market.ticker, Side.ASK, 4000, 200, post_only=False, time_in_force=TimeInForce.IOC)
    )
    positions = {p.ticker: p for p in await kalshi.get_positions()}
    assert positions[market.ticker].position == 200
    fills = await kalshi.get_fills(start_ms)
    assert [(f.side, f.price, f.count, f.is_taker) for f in fills] == [(Side.BID, 4000, 200, False)]
    assert fills[0].ts_ms // 1000 >= start_ms // 1000
    assert await kalshi.get_fills(fills[0].ts_ms + 2000) == []
    after = await kalshi.get_balance()
    assert after.balance < before.balance


async def test_order_groups(kalshi: KalshiClient, market: MarketInfo) -> None:
    group_id = await kalshi.create_order_group(500)
    order = await kalshi.place_order(
        req(market.ticker, Side.BID, 2500, 100, order_group_id=group_id)
    )
    group = await kalshi.get_order_group(group_id)
    assert group.contracts_limit == 500 and order.order_id in group.order_ids
    assert group_id in {g.order_group_id for g in await kalshi.get_order_groups()}
    await kalshi.set_order_group_limit(group_id, 1000)
    assert (await kalshi.get_order_group(group_id)).contracts_limit == 1000
    await kalshi.trigger_order_group(group_id)
    assert await kalshi.get_open_orders(market.ticker) == []
    with pytest.raises(OrderRejected):
        await kalshi.place_order(req(market.ticker, Side.BID, 2500, 100, order_group_id=group_id))
    await kalshi.reset_order_group(group_id)
    await kalshi.place_order(req(market.ticker, Side.BID, 2500, 100, order_group_id=group_id))
    await kalshi.delete_order_group(group_id)
    assert await kalshi.get_open_orders(market.ticker) == []


async def test_wrong_key_is_auth_error(make_client: MakeClient) -> None:
    stranger = signer_from_pem(KEY_ID, rsa_pem()[1])
    client = make_client(signer_=stranger)
    with pytest.raises(AuthError) as info:
        await client.get_balance()
    assert info.value.status == 401 and info.value.code == "authentication_error"


async def test_concurrent_reads_share_keepalive(kalshi: KalshiClient) -> None:
    results = await asyncio.gather(*(kalshi.get_exchange_status() for _ in range(20)))
    assert all(r.exchange_active for r in results)
