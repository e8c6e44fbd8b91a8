"""Kalshi's official SDK (``kalshi-python-async`` 3.34.0, its code unchanged but for host and key)
driving a running simulator through every endpoint dora uses; run by ``test_sdk_fidelity`` in
a Python >= 3.13 virtualenv (``.venv-sdk``), not imported by the test suite.

``python drive_sim.py REST_URL KEY_ID KEY_PATH OTHER_ID OTHER_PATH TICKER`` prints one JSON
object: ``{"checks": [{"name", "ok", "error"}]}``. Each check is one call whose answer the SDK
must deserialize into its 3.34 model (a 201 where the SDK expects one); a few also check what
the answer says (an amend's new expiry, the reduce_only rule).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kalshi_python_async import Configuration, KalshiClient
from kalshi_python_async.api import (
    EventsApi,
    ExchangeApi,
    MarketApi,
    OrderGroupsApi,
    OrdersApi,
    PortfolioApi,
)
from kalshi_python_async.exceptions import ApiException
from kalshi_python_async.models import CreateOrderV2Request

CHECKS: list[dict[str, Any]] = []


async def check(name: str, call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        result = await call()
    except Exception as exc:  # the SDK refused the answer (or the simulator refused the call)
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        CHECKS.append({"name": name, "ok": False, "error": detail[:600]})
        return None
    CHECKS.append({"name": name, "ok": True, "error": ""})
    return result


def expect(name: str, ok: bool, error: str) -> None:
    CHECKS.append({"name": name, "ok": ok, "error": "" if ok else error})


def client(url: str, key_id: str, key_path: str) -> KalshiClient:
    config = Configuration(host=url)
    config.api_key_id = key_id
    with open(key_path) as pem:
        config.private_key_pem = pem.read()
    return KalshiClient(config)


async def main(url: str, key_id: str, key_path: str, other_id: str, other_path: str, ticker: str):
    me, other = client(url, key_id, key_path), client(url, other_id, other_path)
    exchange, markets, events = ExchangeApi(me), MarketApi(me), EventsApi(me)
    orders, groups, portfolio = OrdersApi(me), OrderGroupsApi(me), PortfolioApi(me)
    their_orders = OrdersApi(other)
    base = url.removesuffix("/trade-api/v2")

    # the exchange, markets, events, series
    await check("GET /exchange/status", exchange.get_exchange_status)
    await check("GET /exchange/schedule", exchange.get_exchange_schedule)
    await check("GET /series/fee_changes", exchange.get_series_fee_changes)
    await check("GET /exchange/user_data_timestamp", exchange.get_user_data_timestamp)
    listed = await check("GET /markets", lambda: markets.get_markets(limit=1000))
    market = await check("GET /markets/{ticker}", lambda: markets.get_market(ticker))
    await check("GET /markets/{ticker}/orderbook", lambda: markets.get_market_orderbook(ticker))
    await check("GET /markets/orderbooks", lambda: markets.get_market_orderbooks(tickers=[ticker]))
    event_ticker = market.market.event_ticker if market else ticker.rsplit("-", 1)[0]
    event = await check("GET /events/{event_ticker}", lambda: events.get_event(event_ticker))
    await check("GET /events", lambda: events.get_events(limit=200))
    series_ticker = event.event.series_ticker if event else event_ticker.split("-")[0]
    await check("GET /series/{series_ticker}", lambda: markets.get_series(series_ticker))
    await check("GET /series", markets.get_series_list)
    expect(
        "markets carry settlement_bounds_type",
        bool(listed and all(m.settlement_bounds_type for m in listed.markets)),
        "a market without settlement_bounds_type",
    )

    # V2 order entry: a resting bid, a taker against it, amend, decrease, cancel, batches
    created = await check(
        "POST /portfolio/events/orders",
        lambda: orders.create_order_v2(
            ticker=ticker,
            side="bid",
            price="0.4000",
            count="10.00",
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
            client_order_id="sdk-1",
            post_only=True,
            cancel_order_on_pause=True,
        ),
    )
    await check(
        "POST /portfolio/events/orders (taker)",
        lambda: their_orders.create_order_v2(
            ticker=ticker,
            side="ask",
            price="0.4000",
            count="3.00",
            time_in_force="immediate_or_cancel",
            self_trade_prevention_type="taker_at_cross",
        ),
    )
    order_id = created.order_id if created else "missing"
    await check("GET /portfolio/orders/{order_id}", lambda: orders.get_order(order_id))
    await check("GET /portfolio/orders", lambda: orders.get_orders(limit=100))
    await check(
        "GET /portfolio/orders/{order_id}/queue_position",
        lambda: orders.get_order_queue_position(order_id),
    )
    await check(
        "GET /portfolio/orders/queue_positions",
        lambda: orders.get_order_queue_positions(market_tickers=ticker),
    )
    expiry = int(time.time()) + 3600
    await check(
        "POST /portfolio/events/orders/{order_id}/amend",
        lambda: orders.amend_order_v2(
            order_id,
            ticker=ticker,
            side="bid",
            price="0.4000",
            count="8.00",
            expiration_time=expiry,
        ),
    )
    amended = await check(
        "GET /portfolio/orders/{order_id} (amended)", lambda: orders.get_order(order_id)
    )
    seen = amended.order.expiration_time if amended else None
    expect(
        "an amend's expiration_time is applied",
        seen is not None and int(seen.timestamp()) == expiry,
        f"expiration_time {seen} after amending to {expiry}",
    )
    await check(
        "POST /portfolio/events/orders/{order_id}/decrease (reduce_by)",
        lambda: orders.decrease_order_v2(order_id, reduce_by="1.00"),
    )
    await check(
        "POST /portfolio/events/orders/{order_id}/decrease (reduce_to)",
        lambda: orders.decrease_order_v2(order_id, reduce_to="2.00"),
    )
    await check(
        "DELETE /portfolio/events/orders/{order_id}",
        lambda: orders.cancel_order_v2(order_id, market_ticker=ticker),
    )
    batch = await check(
        "POST /portfolio/events/orders/batched",
        lambda: orders.batch_create_orders_v2(
            orders=[
                CreateOrderV2Request(
                    ticker=ticker,
                    side=side,
                    price=price,
                    count="1.00",
                    time_in_force="good_till_canceled",
                    self_trade_prevention_type="taker_at_cross",
                )
                for side, price in (("bid", "0.3000"), ("ask", "0.7000"))
            ]
        ),
    )
    ids = [o.order_id for o in batch.orders] if batch else []
    await check(
        "DELETE /portfolio/events/orders/batched",
        lambda: orders.batch_cancel_orders_v2(
            orders=[{"order_id": i, "market_ticker": ticker} for i in ids]
        ),
    )
    try:
        await orders.create_order_v2(
            ticker=ticker,
            side="ask",
            price="0.9900",
            count="1.00",
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
            reduce_only=True,
        )
        expect("reduce_only is refused unless immediate_or_cancel", False, "it was accepted")
    except ApiException as exc:
        expect("reduce_only is refused unless immediate_or_cancel", exc.status == 400, str(exc))

    # the portfolio
    await check("GET /portfolio/balance", portfolio.get_balance)
    await check("GET /portfolio/positions", portfolio.get_positions)
    await check(
        "GET /portfolio/positions?settlement_status=all",
        lambda: portfolio.get_positions(settlement_status="all"),
    )
    await check("GET /portfolio/fills", lambda: portfolio.get_fills(limit=100))

    # order groups, on a shard
    group = await check(
        "POST /portfolio/order_groups/create",
        lambda: groups.create_order_group(contracts_limit_fp="10.00", exchange_index=0),
    )
    group_id = group.order_group_id if group else "missing"
    await check("GET /portfolio/order_groups/{id}", lambda: groups.get_order_group(group_id))
    await check("GET /portfolio/order_groups", groups.get_order_groups)
    await check(
        "PUT /portfolio/order_groups/{id}/limit",
        lambda: groups.update_order_group_limit(group_id, contracts_limit_fp="20.00"),
    )
    await check(
        "PUT /portfolio/order_groups/{id}/trigger", lambda: groups.trigger_order_group(group_id)
    )
    await check(
        "PUT /portfolio/order_groups/{id}/reset", lambda: groups.reset_order_group(group_id)
    )
    await check("DELETE /portfolio/order_groups/{id}", lambda: groups.delete_order_group(group_id))
    await check("DELETE /portfolio/events/orders", orders.cancel_all_orders)

    # settlement (the simulator's control API decides the market)
    async with aiohttp.ClientSession() as http:
        for action, body in (("determine", {"result": "yes"}), ("settle", {})):
            async with http.post(f"{base}/_sim/markets/{ticker}/{action}", json=body) as answer:
                expect(f"control {action}", answer.status == 200, await answer.text())
    await check("GET /portfolio/settlements", portfolio.get_settlements)
    await check(
        "GET /portfolio/positions?settlement_status=settled",
        lambda: portfolio.get_positions(settlement_status="settled"),
    )
    await me.close()
    await other.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
    print(json.dumps({"checks": CHECKS}))
