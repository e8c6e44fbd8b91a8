"""The WebSocket surface: commands and errors, every channel, seq, book rebuild, faults."""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
import pytest

import sim.server as sim_server
from common.numbers import ONE_DOLLAR, format_price, parse_price
from sim.server import RunningSim
from tests.sim.simtest_helpers import Signed, WsClient, order_body


def tickers_of(sim: RunningSim) -> list[str]:
    return sorted(sim.sim.exchange.markets)


def linear_tickers(sim: RunningSim) -> list[str]:
    return [
        t
        for t in tickers_of(sim)
        if sim.sim.exchange.markets[t].price_level_structure == "linear_cent"
    ]


async def book_feed(sim: RunningSim, private_key) -> tuple[str, WsClient]:
    """A socket subscribed to the first linear market's book, its snapshot received."""
    ticker = linear_tickers(sim)[0]
    ws = await WsClient(sim, private_key).connect()
    await ws.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": ticker})
    await ws.until(lambda m: m["type"] == "orderbook_snapshot")
    return ticker, ws


async def test_upgrade_needs_a_signature(sim: RunningSim):
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(sim.ws_url)
        assert info.value.status == 401


async def test_commands_and_error_codes(sim: RunningSim, private_key):
    ws = await WsClient(sim, private_key).connect()
    ticker, second = tickers_of(sim)[:2]
    cases = [
        ("nope", {"channels": ["ticker"]}, 5),
        ("subscribe", None, 2),
        ("subscribe", {}, 3),
        ("subscribe", {"channels": ["weather"]}, 8),
        ("subscribe", {"channels": ["orderbook_delta"]}, 14),
        ("subscribe", {"channels": ["orderbook_delta"], "market_ticker": "NOPE"}, 16),
        ("unsubscribe", {}, 4),
        ("unsubscribe", {"sids": [99]}, 7),
        ("update_subscription", {"sids": [1, 2], "action": "add_markets"}, 12),
    ]
    for cmd, params, code in cases:
        reply = await ws.reply(await ws.send(cmd, params))
        assert reply["type"] == "error" and reply["msg"]["code"] == code, (cmd, params, reply)
    sub = await ws.reply(
        await ws.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": ticker})
    )
    assert sub == {
        "id": ws.next_id,
        "type": "subscribed",
        "msg": {"channel": "orderbook_delta", "sid": 1},
    }
    snapshot = await ws.recv()
    assert snapshot["type"] == "orderbook_snapshot" and snapshot["seq"] == 1
    bad_action = await ws.reply(
        await ws.send(
            "update_subscription", {"sid": 1, "action": "zap", "market_tickers": [ticker]}
        )
    )
    assert bad_action["msg"]["code"] == 13
    no_action = await ws.reply(
        await ws.send("update_subscription", {"sid": 1, "market_tickers": [ticker]})
    )
    assert no_action["msg"]["code"] == 15
    added = await ws.reply(
        await ws.send(
            "update_subscription",
            {"sids": [1], "action": "add_markets", "market_tickers": [second]},
        )
    )
    assert added["type"] == "ok" and added["msg"]["market_tickers"] == sorted([ticker, second])
    assert added["seq"] == 2
    snap2 = await ws.recv()
    assert (
        snap2["type"] == "orderbook_snapshot"
        and snap2["msg"]["market_ticker"] == second
        and snap2["seq"] == 3
    )
    removed = await ws.reply(
        await ws.send(
            "update_subscription", {"sid": 1, "action": "delete_markets", "market_ticker": second}
        )
    )
    assert removed["msg"]["market_tickers"] == [ticker]
    await ws.reply(await ws.send("subscribe", {"channels": ["fill", "user_orders"]}))
    listing = await ws.reply(await ws.send("list_subscriptions"))
    assert {(s["channel"], s["sid"]) for s in listing["msg"]} == {
        ("orderbook_delta", 1),
        ("fill", 2),
        ("user_orders", 3),
    }
    gone = await ws.reply(await ws.send("unsubscribe", {"sids": [1]}))
    assert gone["type"] == "unsubscribed" and gone["sid"] == 1 and gone["seq"] == 5
    assert ws.mirror.gaps == []
    await ws.close()


async def test_every_channel_reports_a_trade(
    sim: RunningSim, private_key, client: Signed, other: Signed
):
    ticker = linear_tickers(sim)[0]
    ws = await WsClient(sim, private_key).connect()
    channels = [
        "orderbook_delta",
        "ticker",
        "trade",
        "fill",
        "user_orders",
        "market_positions",
        "order_group_updates",
        "market_lifecycle_v2",
    ]
    await ws.send("subscribe", {"channels": channels, "market_ticker": ticker})
    for _ in channels:
        await ws.until(lambda m: m["type"] == "subscribed")
    group_id = (
        await client.post("/portfolio/order_groups/create", {"contracts_limit": 100})
    ).json()["order_group_id"]
    ack = (
        await client.post(
            "/portfolio/events/orders",
            order_body(
                ticker, "bid", "0.45", "10", client_order_id="mine", order_group_id=group_id
            ),
        )
    ).json()
    await other.post(
        "/portfolio/events/orders",
        order_body(ticker, "ask", "0.45", "4", time_in_force="immediate_or_cancel"),
    )
    await client.control("POST", f"/markets/{ticker}/pause")
    await ws.sync()
    kinds = {m["type"] for m in ws.received}
    assert {
        "orderbook_snapshot",
        "orderbook_delta",
        "ticker",
        "trade",
        "fill",
        "user_order",
        "market_position",
        "order_group_updates",
        "market_lifecycle_v2",
    } <= kinds
    fill = next(m["msg"] for m in ws.received if m["type"] == "fill")
    assert (
        fill["order_id"] == ack["order_id"]
        and fill["count_fp"] == "4.00"
        and fill["is_taker"] is False
    )
    assert (
        fill["post_position_fp"] == "4.00"
        and fill["book_side"] == "bid"
        and fill["yes_price_dollars"] == "0.4500"
    )
    own_delta = next(
        m["msg"]
        for m in ws.received
        if m["type"] == "orderbook_delta" and m["msg"]["delta_fp"] == "10.00"
    )
    assert (
        own_delta["client_order_id"] == "mine"
        and own_delta["side"] == "yes"
        and own_delta["price_dollars"] == "0.4500"
    )
    trade = next(m["msg"] for m in ws.received if m["type"] == "trade")
    assert trade["taker_book_side"] == "ask" and trade["count_fp"] == "4.00"
    orders = [m["msg"] for m in ws.received if m["type"] == "user_order"]
    assert orders[-1]["fill_count_fp"] == "4.00" and orders[-1]["remaining_count_fp"] == "6.00"
    position = next(m["msg"] for m in ws.received if m["type"] == "market_position")
    assert position["position_fp"] == "4.00"
    group = next(m for m in ws.received if m["type"] == "order_group_updates")
    assert group["msg"]["event_type"] == "created" and group["seq"] == 1
    lifecycle = next(m["msg"] for m in ws.received if m["type"] == "market_lifecycle_v2")
    assert lifecycle == {
        "market_ticker": ticker,
        "event_type": "deactivated",
        "is_deactivated": True,
    }
    await ws.close()


@pytest.mark.slow
async def test_books_rebuilt_from_deltas_match_rest_after_thousands_of_orders(
    sim: RunningSim, private_key, client: Signed, other: Signed
):
    tickers = tickers_of(sim)[:4]
    ws = await WsClient(sim, private_key).connect()
    yes_ws = await WsClient(sim, private_key).connect()
    await ws.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": tickers})
    await yes_ws.send(
        "subscribe",
        {"channels": ["orderbook_delta"], "market_tickers": tickers, "use_yes_price": True},
    )
    rng = random.Random(3)
    resting: dict[str, list[str]] = {client.key_id: [], other.key_id: []}
    for i in range(2000):
        who = client if rng.random() < 0.5 else other
        ticker = rng.choice(tickers)
        grid = sim.sim.exchange.markets[ticker].grid
        if resting[who.key_id] and rng.random() < 0.25:
            order_id = resting[who.key_id].pop(rng.randrange(len(resting[who.key_id])))
            await who.delete(f"/portfolio/events/orders/{order_id}")
            continue
        price = grid.round_down(rng.randint(3500, 6500)) or 5000
        body = order_body(
            ticker,
            rng.choice(["bid", "ask"]),
            format_price(price),
            f"{rng.randint(1, 2000) / 100:.2f}",
            time_in_force=rng.choice(
                ["good_till_canceled"] * 3 + ["immediate_or_cancel", "fill_or_kill"]
            ),
            self_trade_prevention_type=rng.choice(["taker_at_cross", "maker"]),
        )
        resp = await who.post("/portfolio/events/orders", body)
        if resp.status_code == 201 and resp.json()["remaining_count"] != "0.00":
            resting[who.key_id].append(resp.json()["order_id"])
        if i % 200 == 0:  # keep the sockets drained
            await ws.sync()
            await yes_ws.sync()
    await ws.sync()
    await yes_ws.sync()
    assert ws.mirror.gaps == [] and yes_ws.mirror.gaps == []
    assert sim.sim.exchange.counters["trades"] > 200
    for ticker in tickers:
        rest = (await client.get(f"/markets/{ticker}/orderbook")).json()["orderbook_fp"]
        assert ws.mirror.levels(ticker) == rest, ticker
        yes_priced = yes_ws.mirror.levels(ticker)
        assert yes_priced["yes_dollars"] == rest["yes_dollars"]
        as_no = sorted(
            [format_price(ONE_DOLLAR - parse_price(p)), c] for p, c in yes_priced["no_dollars"]
        )
        assert as_no == rest["no_dollars"]
    await ws.close()
    await yes_ws.close()


async def test_an_injected_seq_skip_is_detected_and_resync_heals(
    sim: RunningSim, private_key, client: Signed
):
    ticker, ws = await book_feed(sim, private_key)
    await client.control("POST", "/faults", {"skip_seq": 1})
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.30", "5"))
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.31", "5"))
    await ws.sync()
    assert ws.mirror.gaps == [(1, 2, 3)]
    ws.mirror.gaps.clear()
    await ws.send(
        "update_subscription", {"sid": 1, "action": "get_snapshot", "market_tickers": [ticker]}
    )
    await ws.until(lambda m: m["type"] == "orderbook_snapshot")
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.32", "5"))
    await ws.sync()
    rest = (await client.get(f"/markets/{ticker}/orderbook")).json()["orderbook_fp"]
    assert ws.mirror.levels(ticker) == rest and ws.mirror.gaps == []
    assert (await client.control("GET", "/stats")).json()["seq_skipped"] == 1
    await ws.close()


async def test_stalled_feed_holds_deltas_then_delivers_them(
    sim: RunningSim, private_key, client: Signed
):
    ticker, ws = await book_feed(sim, private_key)
    await client.control("POST", "/faults", {"stall_book_feed_s": 0.5})
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.30", "5"))
    await ws.sync()
    assert not any(m["type"] == "orderbook_delta" for m in ws.received)
    await asyncio.sleep(0.6)
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.31", "5"))
    await ws.sync()
    assert [m["msg"]["price_dollars"] for m in ws.received if m["type"] == "orderbook_delta"] == [
        "0.3000",
        "0.3100",
    ]
    assert ws.mirror.gaps == []
    await ws.close()


async def test_drop_ws_fault_cuts_connections(sim: RunningSim, private_key, client: Signed):
    ws = await WsClient(sim, private_key).connect()
    await ws.sync()
    dropped = (await client.control("POST", "/faults", {"drop_ws": True})).json()
    assert dropped["dropped"] == 1
    with pytest.raises((ConnectionError, asyncio.TimeoutError)):
        for _ in range(5):
            await ws.recv(timeout=2)
    await ws.close()


async def test_server_pings_with_heartbeat(start_sim, private_key, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sim_server, "PING_INTERVAL_S", 0.2)
    running = await start_sim(agents=False)
    ws = await WsClient(running, private_key).connect(autoping=False)
    assert ws.ws is not None
    started = time.monotonic()
    message = await ws.ws.receive(timeout=3)
    assert message.type is aiohttp.WSMsgType.PING and message.data == b"heartbeat"
    assert time.monotonic() - started < 3
    await ws.close()


async def test_stats_tell_how_old_book_deltas_were_when_written(
    sim: RunningSim, private_key, client: Signed
):
    """``ws_delta_age_ms``: now minus the exchange timestamp of the oldest delta written to a
    socket in about the last second, the simulator's own share of a reader's feed lag."""
    ticker, ws = await book_feed(sim, private_key)
    await client.control("POST", "/faults", {"stall_book_feed_s": 0.5})
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.30", "5"))
    await asyncio.sleep(0.6)
    await client.post("/portfolio/events/orders", order_body(ticker, "bid", "0.31", "5"))
    await ws.sync()  # the held delta went out ~0.6 s after it happened
    age = (await client.control("GET", "/stats")).json()["ws_delta_age_ms"]
    assert 500 <= age < 5_000
    await ws.close()


def test_delta_age_is_the_worst_of_about_the_last_second() -> None:
    from sim.faults import Faults
    from sim.world import World
    from sim.ws import WsHub

    now = [10_000]
    hub = WsHub(
        World("calm", seed=1, n_markets=1, agents=False).exchange, Faults(), {}, lambda: now[0]
    )
    assert hub.delta_age_ms() == 0
    hub._note_delta_age(9_700)  # 300 ms old
    hub._note_delta_age(9_950)
    assert hub.delta_age_ms() == 300
    now[0] = 11_200  # next second: the previous second's worst still counts
    hub._note_delta_age(11_190)
    assert hub.delta_age_ms() == 300
    now[0] = 12_100  # two seconds on: only this second's (none yet) and the last's
    assert hub.delta_age_ms() == 10
    now[0] = 14_000  # quiet for a while: nothing old is reported
    assert hub.delta_age_ms() == 0
