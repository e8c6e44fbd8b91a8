"""The WebSocket client against a small fake Kalshi feed (websockets server API): snapshot and
deltas, seq gaps, reconnects, silence, subscription changes, private streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from common.book import YesBook
from common.kalshi.signing import signer_from_pem
from common.kalshi.ws import (
    BookStale,
    BookUpdated,
    Connected,
    Disconnected,
    FillEvent,
    KalshiWebSocket,
    LifecycleEvent,
    UserOrderEvent,
    WsEvent,
)
from common.numbers import format_count, format_price
from tests.kalshi.test_signing import ed_pem

SIGNER = signer_from_pem("kid", ed_pem()[1])


class FakeFeed:
    def __init__(self) -> None:
        self.yes: dict[str, dict[int, int]] = {"A": {4000: 500, 4100: 300}, "B": {2000: 100}}
        self.no: dict[str, dict[int, int]] = {"A": {5700: 200}, "B": {}}
        self.conns: list[ServerConnection] = []
        self.seq: dict[ServerConnection, int] = {}
        self.tickers: dict[ServerConnection, set[str]] = {}
        self.commands: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.silent = False
        self.answer_snapshots = True
        self.port = 0
        self.yes_prices: dict[ServerConnection, bool] = {}  # use_yes_price per connection

    async def handler(self, ws: ServerConnection) -> None:
        self.headers.append(
            {k.lower(): v for k, v in ws.request.headers.raw_items()} if ws.request else {}
        )
        self.conns.append(ws)
        self.seq[ws] = 0
        self.tickers[ws] = set()
        try:
            async for raw in ws:
                cmd = orjson.loads(raw)
                self.commands.append(cmd)
                if self.silent:
                    continue
                await self.command(ws, cmd)
        except Exception:
            pass
        finally:
            if ws in self.conns:
                self.conns.remove(ws)

    async def send(
        self,
        ws: ServerConnection,
        kind: str,
        msg: dict[str, Any],
        *,
        skip: bool = False,
        numbered: bool = True,
    ) -> None:
        frame: dict[str, Any] = {"type": kind, "sid": 1, "msg": msg}
        if numbered:
            self.seq[ws] += 2 if skip else 1
            frame["seq"] = self.seq[ws]
        with contextlib.suppress(Exception):
            await ws.send(orjson.dumps(frame).decode())

    async def snapshot(self, ws: ServerConnection, ticker: str) -> None:
        msg: dict[str, Any] = {"market_ticker": ticker, "market_id": ticker}
        if self.yes[ticker]:
            msg["yes_dollars_fp"] = [
                [format_price(p), format_count(q)] for p, q in sorted(self.yes[ticker].items())
            ]
        if self.no[ticker]:
            msg["no_dollars_fp"] = [
                [format_price(self.no_price(ws, p)), format_count(q)]
                for p, q in sorted(self.no[ticker].items())
            ]
        await self.send(ws, "orderbook_snapshot", msg)

    def no_price(self, ws: ServerConnection, price: int) -> int:
        """A NO level's price on the wire: NO prices, or YES prices with ``use_yes_price``."""
        return 10_000 - price if self.yes_prices.get(ws) else price

    async def command(self, ws: ServerConnection, cmd: dict[str, Any]) -> None:
        params = cmd.get("params", {})
        if cmd["cmd"] == "subscribe":
            for channel in params["channels"]:
                sid = 1 if channel == "orderbook_delta" else 2
                await ws.send(
                    orjson.dumps(
                        {
                            "id": cmd["id"],
                            "type": "subscribed",
                            "msg": {"channel": channel, "sid": sid},
                        }
                    ).decode()
                )
                if channel == "orderbook_delta":
                    self.yes_prices[ws] = params["use_yes_price"]
                    for ticker in params["market_tickers"]:
                        self.tickers[ws].add(ticker)
                        await self.snapshot(ws, ticker)
        elif cmd["cmd"] == "update_subscription":
            await self.send(ws, "ok", {"market_tickers": sorted(self.tickers[ws])})
            if params["action"] == "get_snapshot" and self.answer_snapshots:
                for ticker in params["market_tickers"]:
                    await self.snapshot(ws, ticker)
            elif params["action"] == "add_markets":
                for ticker in params["market_tickers"]:
                    self.tickers[ws].add(ticker)
                    await self.snapshot(ws, ticker)
            elif params["action"] == "delete_markets":
                self.tickers[ws] -= set(params["market_tickers"])

    async def delta(
        self,
        ticker: str,
        is_yes: bool,
        price: int,
        delta: int,
        *,
        skip: bool = False,
        apply: bool = True,
    ) -> None:
        ladder = (self.yes if is_yes else self.no)[ticker]
        if apply:
            ladder[price] = ladder.get(price, 0) + delta
            if ladder[price] == 0:
                del ladder[price]
        for ws in list(self.conns):
            msg = {
                "market_ticker": ticker,
                "side": "yes" if is_yes else "no",
                "price_dollars": format_price(price if is_yes else self.no_price(ws, price)),
                "delta_fp": format_count(delta),
                "ts_ms": 1767225600123,
            }
            if ticker in self.tickers[ws]:
                await self.send(ws, "orderbook_delta", msg, skip=skip)

    async def private(self, kind: str, msg: dict[str, Any]) -> None:
        for ws in list(self.conns):
            await ws.send(orjson.dumps({"type": kind, "sid": 3, "msg": msg}).decode())

    def book(self, ticker: str) -> YesBook:
        return YesBook.from_bid_ladders(self.yes[ticker].items(), self.no[ticker].items())

    def drop(self) -> None:
        for ws in list(self.conns):
            ws.transport.abort()


@pytest.fixture
async def feed() -> AsyncIterator[FakeFeed]:
    fake = FakeFeed()
    async with serve(fake.handler, "127.0.0.1", 0, ping_interval=None) as server:
        fake.port = server.sockets[0].getsockname()[1]
        yield fake


class Recorder:
    def __init__(self) -> None:
        self.events: list[WsEvent] = []

    def __call__(self, event: WsEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def until(predicate: Any, timeout_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def client(feed: FakeFeed, **kwargs: Any) -> AsyncIterator[tuple[KalshiWebSocket, Recorder]]:
    recorder = Recorder()
    options: dict[str, Any] = {
        "tickers": ["A", "B"],
        "lifecycle": False,
        "reconnect_base_s": 0.01,
        "on_event": recorder,
    }
    options.update(kwargs)
    ws = KalshiWebSocket(f"ws://127.0.0.1:{feed.port}/trade-api/ws/v2", SIGNER, **options)
    await ws.start()
    try:
        assert await ws.wait_fresh(ws.tickers, 3.0)
        yield ws, recorder
    finally:
        await ws.close()


@pytest.mark.parametrize("use_yes_price", [True, False])
async def test_snapshot_then_deltas_keep_the_yes_book(feed: FakeFeed, use_yes_price: bool) -> None:
    """The same book whether NO levels arrive in NO prices or, as Kalshi announced they will
    once the flag goes away, in YES prices."""
    async with client(feed, use_yes_price=use_yes_price) as (ws, rec):
        assert feed.yes_prices[feed.conns[0]] is use_yes_price
        headers = feed.headers[0]
        assert headers["kalshi-access-key"] == "kid" and "kalshi-access-signature" in headers
        assert ws.yes_book("A") == feed.book("A")
        assert ws.yes_book("A").best_ask == 4300  # type: ignore[union-attr]
        await feed.delta("A", True, 4200, 700)
        await feed.delta("A", False, 5700, -200)
        await feed.delta("B", False, 7000, 100)
        await until(lambda: ws.stats.deltas == 3)
        assert ws.yes_book("A") == feed.book("A") and ws.yes_book("B") == feed.book("B")
        updates = [e for e in rec.of(BookUpdated) if not e.snapshot]
        assert [u.ticker for u in updates] == ["A", "A", "B"] and updates[
            0
        ].exchange_ms == 1767225600123


async def test_seq_gap_marks_stale_and_resyncs_equal_to_server(feed: FakeFeed) -> None:
    async with client(feed) as (ws, rec):
        await feed.delta("A", True, 4100, -300, skip=True)  # this message skips a seq number
        await until(lambda: ws.stats.gaps == 1)
        await until(lambda: not ws.is_stale("A") and not ws.is_stale("B"))
        stale = rec.of(BookStale)
        assert {s.ticker for s in stale if "gap" in s.reason} == {"A", "B"}
        resynced = [e for e in rec.of(BookUpdated) if e.resynced and e.snapshot]
        assert {e.ticker for e in resynced} >= {"A", "B"}
        assert ws.yes_book("A") == feed.book("A")
        assert any(
            c["cmd"] == "update_subscription" and c["params"]["action"] == "get_snapshot"
            for c in feed.commands
        )
        await feed.delta("A", True, 3900, 100)  # deltas apply again after the resync
        await until(lambda: ws.yes_book("A") == feed.book("A"))


async def test_bad_delta_below_zero_resyncs_that_book(feed: FakeFeed) -> None:
    async with client(feed) as (ws, rec):
        await feed.delta("A", True, 3000, -100, apply=False)  # a level we never had
        await until(
            lambda: any(isinstance(e, BookStale) and "bad delta" in e.reason for e in rec.events)
        )
        await until(lambda: not ws.is_stale("A"))
        assert ws.yes_book("A") == feed.book("A")


async def test_dropped_socket_reconnects_resubscribes_and_resyncs(feed: FakeFeed) -> None:
    async with client(feed) as (ws, rec):
        feed.drop()
        await until(lambda: len(rec.of(Connected)) == 2)
        assert rec.of(Disconnected)
        assert {e.ticker for e in rec.of(BookStale) if "disconnected" in e.reason} == {"A", "B"}
        await feed.delta("A", True, 4000, -100)
        assert await ws.wait_fresh(["A", "B"], 3.0)
        await until(lambda: ws.yes_book("A") == feed.book("A"))
        subscribes = [c for c in feed.commands if c["cmd"] == "subscribe"]
        assert len(subscribes) == 2 and len(feed.headers) == 2
        assert (
            feed.headers[0]["kalshi-access-timestamp"] <= feed.headers[1]["kalshi-access-timestamp"]
        )


async def test_silent_socket_is_detected_and_replaced(feed: FakeFeed) -> None:
    async with client(feed, silence_timeout_s=0.4, ping_interval_s=0.1) as (ws, rec):
        feed.silent = True  # answers pings at the protocol level, sends nothing
        await until(lambda: ws.stats.silent_drops >= 1, 3.0)
        # the run loop reports the drop once the aborted socket's reader has ended
        await until(lambda: any("silent" in e.reason for e in rec.of(Disconnected)), 3.0)
        feed.silent = False
        await until(lambda: ws.stats.connects >= 2 and not ws.is_stale("A"), 3.0)
        assert ws.yes_book("A") == feed.book("A")


async def test_missing_snapshot_after_gap_forces_reconnect(feed: FakeFeed) -> None:
    async with client(feed, snapshot_timeout_s=0.2) as (ws, rec):
        feed.answer_snapshots = False
        await feed.delta("B", True, 2100, 50, skip=True)
        await until(lambda: any("no snapshot" in e.reason for e in rec.of(Disconnected)), 3.0)
        feed.answer_snapshots = True
        await until(lambda: not ws.is_stale("A") and not ws.is_stale("B"), 3.0)
        assert ws.yes_book("B") == feed.book("B")


async def test_add_and_remove_markets(feed: FakeFeed) -> None:
    feed.yes["C"], feed.no["C"] = {1000: 100}, {8000: 100}
    async with client(feed, tickers=["A"]) as (ws, _):
        await ws.add_markets(["C"])
        assert await ws.wait_fresh(["C"], 2.0)
        assert ws.yes_book("C") == feed.book("C")
        await ws.remove_markets(["A"])
        assert ws.yes_book("A") is None and "A" not in ws.tickers
        await until(
            lambda: any(c["params"].get("action") == "delete_markets" for c in feed.commands)
        )


async def test_private_streams_and_lifecycle_events(feed: FakeFeed) -> None:
    async with client(feed) as (ws, rec):
        await feed.private(
            "fill",
            {
                "trade_id": "t1",
                "order_id": "o1",
                "market_ticker": "A",
                "is_taker": False,
                "yes_price_dollars": "0.4000",
                "count_fp": "2.00",
                "fee_cost": "0.0000",
                "post_position_fp": "2.00",
                "book_side": "bid",
                "ts_ms": 5,
            },
        )
        await feed.private(
            "user_order",
            {
                "order_id": "o1",
                "ticker": "A",
                "status": "resting",
                "book_side": "bid",
                "yes_price_dollars": "0.4000",
                "fill_count_fp": "2.00",
                "remaining_count_fp": "3.00",
                "initial_count_fp": "5.00",
                "client_order_id": "c1",
                "created_ts_ms": 1,
            },
        )
        await feed.private(
            "market_lifecycle_v2",
            {"market_ticker": "A", "event_type": "deactivated", "is_deactivated": True},
        )
        await feed.private("fill", {"trade_id": "t2"})  # malformed: counted, not fatal
        await until(lambda: ws.stats.wire_errors == 1)
        (fill,) = rec.of(FillEvent)
        assert fill.fill.post_position == 200 and fill.fill.count == 200
        (order,) = rec.of(UserOrderEvent)
        assert order.order.remaining == 300 and order.order.client_order_id == "c1"
        (life,) = rec.of(LifecycleEvent)
        assert (
            life.ticker == "A"
            and life.event_type == "deactivated"
            and life.fields == {"is_deactivated": True}
        )


async def test_events_iterator_without_callback(feed: FakeFeed) -> None:
    ws = KalshiWebSocket(
        f"ws://127.0.0.1:{feed.port}/trade-api/ws/v2", SIGNER, tickers=["A"], lifecycle=False
    )
    await ws.start()
    try:
        kinds = []
        async for event in ws.events():
            kinds.append(type(event).__name__)
            if isinstance(event, BookUpdated):
                break
        assert kinds[-1] == "BookUpdated" and "Connected" in kinds
    finally:
        await ws.close()
