"""The simulator's controls for the chaos run (issues 18 and 19): the private feed held back,
takers that hit an account's resting orders on demand, a book that collapses to one side."""

from __future__ import annotations

import asyncio

from sim.model import BookSide
from sim.server import RunningSim
from sim.world import World
from tests.sim.simtest_helpers import Signed, WsClient, order_body
from tests.support.simfix import KEY_ID


def _ticker(sim: RunningSim) -> str:
    markets = sim.sim.exchange.markets
    return next(t for t in sorted(markets) if markets[t].price_level_structure == "linear_cent")


async def test_a_delayed_private_feed_holds_user_orders_then_sends_them_in_order(
    sim: RunningSim, private_key, client: Signed
) -> None:
    ticker = _ticker(sim)
    ws = await WsClient(sim, private_key).connect()
    await ws.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": ticker})
    await ws.until(lambda m: m["type"] == "orderbook_snapshot")
    await ws.send("subscribe", {"channels": ["user_orders"]})
    await ws.sync()
    await client.control("POST", "/faults", {"delay_private_ws_s": 0.5})
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.30", "5"))
    await ws.sync()
    assert not any(m["type"] == "user_order" for m in ws.received)
    assert any(m["type"] == "orderbook_delta" for m in ws.received)  # books keep flowing
    await asyncio.sleep(0.6)
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.31", "5"))
    await ws.until(
        lambda m: m["type"] == "user_order" and m["msg"]["yes_price_dollars"] == "0.3100"
    )
    prices = [m["msg"]["yes_price_dollars"] for m in ws.received if m["type"] == "user_order"]
    assert prices == ["0.3000", "0.3100"]
    await ws.close()


async def test_takers_hit_every_resting_order_of_an_account_on_demand(
    sim: RunningSim, client: Signed, other: Signed
) -> None:
    ticker = _ticker(sim)
    await other.post("/portfolio/events/orders", order_body(ticker, "bid", "0.35", "3"))
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.30", "5"))
    await client.post("/portfolio/events/orders", order_body(ticker, "ask", "0.60", "4"))
    answer = (await client.control("POST", f"/accounts/{KEY_ID}/hit", {})).json()
    assert answer["hit"] == 2
    account = (await client.control("GET", f"/accounts/{KEY_ID}")).json()
    assert account["resting_orders"] == []
    assert account["positions"][ticker]["position_fp"] == "1.00"  # +5 bought, -4 sold


def test_a_book_collapses_to_one_side_while_told_then_fills_again() -> None:
    world = World("calm", seed=3, n_markets=2)
    world.step(10_000)
    ticker = world.tickers[0]
    book = world.exchange.books[ticker]
    assert book.best_bid() is not None and book.best_ask() is not None
    assert world.agents is not None
    world.agents.collapse(ticker, BookSide.BID, world.now_ms + 20_000, world.now_ms)
    assert book.best_bid() is None  # at once
    for _ in range(15):
        world.step(1_000)
        assert book.best_bid() is None, "a maker put a bid back during the collapse"
        assert book.best_ask() is not None
    world.step(10_000)
    assert book.best_bid() is not None  # over: the makers quote both sides again
