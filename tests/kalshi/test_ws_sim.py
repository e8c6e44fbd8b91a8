"""The WebSocket client against the simulator and its fault injection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.domain import Side
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.ws import (
    BookStale,
    Connected,
    Disconnected,
    FillEvent,
    KalshiWebSocket,
    UserOrderEvent,
)
from tests.kalshi.test_client_sim import req
from tests.kalshi.test_ws import Recorder, until
from tests.support.simfix import StartSim, sim_control


async def open_ws(
    running: Any, signer: Signer, tickers: list[str], **kwargs: Any
) -> tuple[KalshiWebSocket, Recorder]:
    recorder = Recorder()
    options: dict[str, Any] = {"on_event": recorder, "reconnect_base_s": 0.05, "private": True}
    options.update(kwargs)
    ws = KalshiWebSocket(running.ws_url, signer, tickers=tickers, **options)
    await ws.start()
    assert await ws.wait_fresh(tickers, 5.0)
    return ws, recorder


async def books_match_rest(ws: KalshiWebSocket, kalshi: KalshiClient, tickers: list[str]) -> bool:
    for ticker in tickers:
        if ws.is_stale(ticker) or ws.yes_book(ticker) != await kalshi.get_order_book(ticker):
            return False
    return True


async def wait_match(
    ws: KalshiWebSocket, kalshi: KalshiClient, tickers: list[str], timeout_s: float = 3.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await books_match_rest(ws, kalshi, tickers):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("WS books never matched REST")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("use_yes_price", [True, False])
async def test_seq_gap_stale_then_resynced_equal_to_rest(
    sim: Any, signer: Signer, kalshi: KalshiClient, other: KalshiClient, use_yes_price: bool
) -> None:
    """Books equal REST's with NO levels in YES prices (Kalshi's coming default) or NO prices."""
    tickers = [m.ticker for m in await kalshi.get_market_infos()][:2]
    ws, rec = await open_ws(sim, signer, tickers, use_yes_price=use_yes_price)
    try:
        await kalshi.place_order(req(tickers[0], Side.BID, 4000, 500))
        await wait_match(ws, kalshi, tickers)
        await sim_control(sim, "POST", "/_sim/faults", {"skip_seq": 1})
        await other.place_order(req(tickers[0], Side.ASK, 4600, 300))
        await until(lambda: ws.stats.gaps >= 1)
        assert {e.ticker for e in rec.of(BookStale) if "gap" in e.reason} == set(tickers)
        await wait_match(ws, kalshi, tickers, 1.5)  # resynced within the snapshot timeout
        assert ws.stats.connects == 1  # resynced by get_snapshot, not by reconnecting
        await kalshi.place_order(req(tickers[1], Side.ASK, 7000, 100))
        await wait_match(ws, kalshi, tickers)
    finally:
        await ws.close()


async def test_dropped_socket_reconnects_resubscribes_and_matches_rest(
    sim: Any, signer: Signer, kalshi: KalshiClient
) -> None:
    tickers = [m.ticker for m in await kalshi.get_market_infos()][:3]
    ws, rec = await open_ws(sim, signer, tickers)
    try:
        await sim_control(sim, "POST", "/_sim/faults", {"drop_ws": True})
        await until(lambda: len(rec.of(Connected)) >= 2, 5.0)
        assert rec.of(Disconnected)
        await kalshi.place_order(req(tickers[2], Side.BID, 1200, 100))
        await wait_match(ws, kalshi, tickers)
        stats = await sim_control(sim, "GET", "/_sim/stats")
        assert stats["ws_dropped"] >= 1 and stats["ws_connections_open"] == 1
    finally:
        await ws.close()


async def test_fill_and_user_order_streams(
    sim: Any, signer: Signer, kalshi: KalshiClient, other: KalshiClient
) -> None:
    ticker = (await kalshi.get_market_infos())[0].ticker
    ws, rec = await open_ws(sim, signer, [ticker])
    try:
        mine = await kalshi.place_order(req(ticker, Side.BID, 3300, 400))
        await other.place_order(req(ticker, Side.ASK, 3300, 100, post_only=False))
        await until(lambda: bool(rec.of(FillEvent)))
        fill = rec.of(FillEvent)[0].fill
        assert (fill.order_id, fill.side, fill.price, fill.count, fill.post_position) == (
            mine.order_id,
            Side.BID,
            3300,
            100,
            100,
        )
        await until(lambda: any(e.order.filled == 100 for e in rec.of(UserOrderEvent)))
    finally:
        await ws.close()


@pytest.mark.slow
async def test_stalled_feed_is_detected_and_resynced(
    start_sim: StartSim, signer: Signer, make_client: Any
) -> None:
    running = await start_sim(agents=True, scenario="news_jumps")
    kalshi = make_client(running=running)
    tickers = [m.ticker for m in await kalshi.get_market_infos()]
    ws, rec = await open_ws(running, signer, tickers, book_silence_s=1.0, private=False)
    try:
        await asyncio.sleep(1.5)
        baseline = ws.stats.silent_drops
        await sim_control(running, "POST", "/_sim/faults", {"stall_book_feed_s": 2.5})
        await until(lambda: ws.stats.silent_drops > baseline, 4.0)
        # the Disconnected event follows the drop counter by a moment (the socket closes first)
        await until(lambda: any("silent" in e.reason for e in rec.of(Disconnected)), 2.0)
        assert await ws.wait_fresh(tickers, 5.0)
    finally:
        await ws.close()


@pytest.mark.slow
async def test_completely_silent_socket_against_sim(
    start_sim: StartSim, signer: Signer, make_client: Any
) -> None:
    """The sim goes fully silent (no frame, no ping; it still answers our pings, which must not
    count): the socket is declared dead, books go stale, and after the silence a reconnect
    resyncs them to the REST book."""
    running = await start_sim(agents=True)
    kalshi = make_client(running=running)
    tickers = [m.ticker for m in await kalshi.get_market_infos()][:3]
    ws, rec = await open_ws(
        running, signer, tickers, silence_timeout_s=1.0, ping_interval_s=0.3, private=False
    )
    try:
        baseline = ws.stats.silent_drops
        await sim_control(running, "POST", "/_sim/faults", {"silence_ws_s": 2.0})
        await until(lambda: ws.stats.silent_drops > baseline, 3.0)
        await until(lambda: any("silent" in e.reason for e in rec.of(Disconnected)), 2.0)
        assert all(ws.is_stale(t) for t in tickers) or ws.stats.connects > 1
        assert await ws.wait_fresh(tickers, 8.0)
        for _ in range(100):  # the flow keeps moving: the books agree with REST within moments
            if await books_match_rest(ws, kalshi, tickers):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("books never matched REST after the silence")
    finally:
        await ws.close()
