"""The WebSocket side of the simulator: commands, subscriptions and the event fan-out.

Each connection (authenticated on the upgrade) holds subscriptions, one per channel, each with
its ``sid`` and its own ``seq`` counter (orderbook, order-group, trade and lifecycle messages,
``ok`` and ``unsubscribed`` answers carry it). Engine events are turned into Kalshi messages once and sent
to the subscriptions that want them; a per-connection writer task sends what is queued so the
engine never waits on a slow socket. Book levels go out as ``orderbook_delta``: YES bids as
``side: "yes"`` at the YES price, YES asks as ``side: "no"`` at the NO price (1 - p), or at the
YES price with ``use_yes_price``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from common.numbers import ONE_DOLLAR, format_count, format_price
from sim import wire
from sim.engine import Exchange
from sim.events import (
    BookDelta,
    EngineEvent,
    FillEvent,
    LifecycleEvent,
    OrderEvent,
    OrderGroupEvent,
    PositionEvent,
    TickerEvent,
    TradeEvent,
)
from sim.faults import Faults
from sim.model import BookSide

log = logging.getLogger("dora.sim.ws")

BOOK = "orderbook_delta"
PUBLIC_FILTERED = ("ticker", "trade")
PRIVATE = ("fill", "user_orders", "market_positions", "order_group_updates")
LIFECYCLE = "market_lifecycle_v2"
CHANNELS = (BOOK, *PUBLIC_FILTERED, *PRIVATE, LIFECYCLE)
SEQUENCED = (BOOK, "order_group_updates", "trade", LIFECYCLE)  # trade and lifecycle: 3.34
MAX_QUEUED = 200_000
PING_INTERVAL_S = 10.0

ERRORS = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    25: "Subscription buffer overflow",
}


class CommandError(Exception):
    def __init__(self, code: int, market_ticker: str | None = None) -> None:
        super().__init__(ERRORS.get(code, "error"))
        self.code = code
        self.market_ticker = market_ticker


class Subscription:
    __slots__ = ("channel", "conn", "seq", "sid", "snapshot_at", "tickers", "use_yes_price")

    def __init__(self, conn: Connection, sid: int, channel: str) -> None:
        self.conn = conn
        self.sid = sid
        self.channel = channel
        self.tickers: set[str] | None = None  # None: every market
        self.use_yes_price = False
        self.seq = 0
        self.snapshot_at: dict[str, int] = {}

    def wants(self, ticker: str) -> bool:
        return self.tickers is None or ticker in self.tickers

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class Connection:
    def __init__(self, ws: web.WebSocketResponse, key_id: str, user_id: str, stats: dict[str, int]):
        self.ws = ws
        self.key_id = key_id
        self.user_id = user_id
        self.subs: dict[int, Subscription] = {}
        self.by_channel: dict[str, Subscription] = {}
        self.out: list[bytes] = []
        self.queued = 0  # messages accepted for this connection...
        self.written = 0  # ...and handed to the socket: the difference is its backlog
        self.wake = asyncio.Event()
        self.closed = False
        self.stats = stats
        # (queue position, exchange ms) of each book delta queued: when it reaches the socket,
        # its age says how much of a reader's feed lag the simulator itself accounts for
        self.delta_ts: deque[tuple[int, int]] = deque()
        self.transport: asyncio.Transport | None = None

    def send(self, payload: bytes) -> None:
        if self.closed:
            return
        self.out.append(payload)
        self.queued += 1
        self.stats["ws_messages_sent"] += 1
        if len(self.out) > MAX_QUEUED:
            self.out.clear()
            self.out.append(_error_frame(0, 25))
            self.closed = True
        self.wake.set()

    def send_json(self, data: dict[str, Any]) -> None:
        self.send(orjson.dumps(data))


def _error_frame(cmd_id: int, code: int, market_ticker: str | None = None) -> bytes:
    msg: dict[str, Any] = {"code": code, "msg": ERRORS.get(code, "error")}
    if market_ticker is not None:
        msg["market_ticker"] = market_ticker
    return orjson.dumps({"id": cmd_id, "type": "error", "msg": msg})


class WsHub:
    def __init__(
        self, exchange: Exchange, faults: Faults, stats: dict[str, int], clock_ms: Callable[[], int]
    ) -> None:
        self.exchange = exchange
        self.faults = faults
        self.stats = stats
        self.clock_ms = clock_ms
        self.connections: set[Connection] = set()
        self._age_second = 0  # delta_age_ms: the current second, its worst age and the last's
        self._age_max = 0
        self._age_previous = 0
        self.book_subs: dict[str, set[Subscription]] = {}
        self.public: dict[str, set[Subscription]] = {
            c: set() for c in (*PUBLIC_FILTERED, LIFECYCLE)
        }
        self.private: dict[str, dict[str, set[Subscription]]] = {c: {} for c in PRIVATE}
        self._held: list[tuple[int, BookDelta]] = []
        # private messages held back by the ``delay_private_ws_s`` fault, sent in order after it
        self._private_held: list[tuple[str, str, str, str, dict[str, Any]]] = []
        self._delta_counter = 0

    # ----- connection lifecycle -----------------------------------------------------------

    async def serve(self, request: web.Request, key_id: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=64 * 1024 * 1024, compress=False)
        await ws.prepare(request)
        account = self.exchange.accounts[key_id]
        conn = Connection(ws, key_id, account.user_id, self.stats)
        transport = request.transport
        conn.transport = transport if isinstance(transport, asyncio.Transport) else None
        self.connections.add(conn)
        self.stats["ws_connections"] += 1
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._command(conn, message.data)
                elif message.type is WSMsgType.BINARY:
                    self._command(conn, message.data.decode(errors="replace"))
                elif message.type is WSMsgType.ERROR:
                    break
                if conn.closed:
                    break
        finally:
            conn.closed = True
            conn.wake.set()
            self._drop_connection(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            if not ws.closed:
                await ws.close()
        return ws

    async def _writer(self, conn: Connection) -> None:
        ws = conn.ws
        try:
            while True:
                await conn.wake.wait()
                while self.faults.ws_silenced(self.clock_ms()):  # fault: nothing on the wire
                    await asyncio.sleep(0.05)
                conn.wake.clear()
                batch, conn.out = conn.out, []
                for payload in batch:
                    if ws.closed:
                        return
                    await ws.send_frame(payload, WSMsgType.TEXT)
                    conn.written += 1
                    while conn.delta_ts and conn.delta_ts[0][0] < conn.written:
                        self._note_delta_age(conn.delta_ts.popleft()[1])
                if conn.closed and not conn.out:
                    await ws.close()
                    return
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    def _note_delta_age(self, ts_ms: int) -> None:
        """The oldest book delta handed to a socket in the current or the previous second."""
        now = self.clock_ms()
        second = now // 1000
        if second != self._age_second:
            self._age_previous = self._age_max if second == self._age_second + 1 else 0
            self._age_second, self._age_max = second, 0
        self._age_max = max(self._age_max, now - ts_ms)

    def delta_age_ms(self) -> int:
        """Worst age (now - exchange timestamp) of a book delta as the simulator wrote it to a
        socket, over about the last second: the simulator's own share of a reader's feed lag."""
        second = self.clock_ms() // 1000
        if second == self._age_second:
            return max(self._age_max, self._age_previous)
        return self._age_max if second == self._age_second + 1 else 0

    def _drop_connection(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for sub in list(conn.subs.values()):
            self._unindex(sub)
        conn.subs.clear()
        conn.by_channel.clear()

    def drop_all(self) -> int:
        """Fault: cut every connection abruptly."""
        dropped = 0
        for conn in list(self.connections):
            conn.closed = True
            if conn.transport is not None:
                conn.transport.abort()
            dropped += 1
        self.stats["ws_dropped"] += dropped
        return dropped

    async def ping_all(self) -> None:
        if self.faults.ws_silenced(self.clock_ms()):
            return
        for conn in list(self.connections):
            if not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.ping(b"heartbeat")

    # ----- indexes --------------------------------------------------------------------------

    def _index(self, sub: Subscription) -> None:
        if sub.channel == BOOK:
            for ticker in sub.tickers or ():
                self.book_subs.setdefault(ticker, set()).add(sub)
        elif sub.channel in PRIVATE:
            self.private[sub.channel].setdefault(sub.conn.key_id, set()).add(sub)
        else:
            self.public[sub.channel].add(sub)

    def _unindex(self, sub: Subscription) -> None:
        if sub.channel == BOOK:
            for ticker in sub.tickers or ():
                self.book_subs.get(ticker, set()).discard(sub)
        elif sub.channel in PRIVATE:
            self.private[sub.channel].get(sub.conn.key_id, set()).discard(sub)
        else:
            self.public[sub.channel].discard(sub)

    # ----- commands -------------------------------------------------------------------------

    def _command(self, conn: Connection, text: str) -> None:
        # flush engine events first so a snapshot never precedes deltas already applied
        self.publish(self.exchange.drain_events())
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send(_error_frame(0, 1))
            return
        if not isinstance(data, dict):
            conn.send(_error_frame(0, 1))
            return
        cmd_id = data.get("id", 0)
        if not isinstance(cmd_id, int):
            cmd_id = 0
        try:
            cmd = data.get("cmd")
            params = data.get("params")
            if cmd == "list_subscriptions":
                listing = [{"channel": s.channel, "sid": s.sid} for s in conn.subs.values()]
                conn.send_json({"id": cmd_id, "type": "ok", "msg": listing})
                return
            if cmd not in ("subscribe", "unsubscribe", "update_subscription"):
                raise CommandError(5)
            if not isinstance(params, dict):
                raise CommandError(2)
            if cmd == "subscribe":
                self._subscribe(conn, cmd_id, params)
            elif cmd == "unsubscribe":
                self._unsubscribe(conn, cmd_id, params)
            else:
                self._update(conn, cmd_id, params)
        except CommandError as exc:
            conn.send(_error_frame(cmd_id, exc.code, exc.market_ticker))

    def _tickers(self, params: dict[str, Any], *, required: bool) -> list[str] | None:
        tickers: list[str] = []
        one = params.get("market_ticker")
        many = params.get("market_tickers")
        if one is not None:
            if not isinstance(one, str):
                raise CommandError(11)
            tickers.append(one)
        if many is not None:
            if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
                raise CommandError(11)
            tickers.extend(many)
        if not tickers:
            if required:
                raise CommandError(14)
            return None
        for ticker in tickers:
            if ticker not in self.exchange.markets:
                raise CommandError(16, ticker)
        return list(dict.fromkeys(tickers))

    def _subscribe(self, conn: Connection, cmd_id: int, params: dict[str, Any]) -> None:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            raise CommandError(3)
        for channel in channels:
            if channel not in CHANNELS:
                raise CommandError(8)
        tickers = self._tickers(params, required=BOOK in channels)
        for channel in channels:
            sub = conn.by_channel.get(channel)
            new_tickers: list[str]
            if sub is None:
                sid = max(conn.subs, default=0) + 1
                sub = Subscription(conn, sid, channel)
                sub.use_yes_price = bool(params.get("use_yes_price", False))
                if channel in (BOOK, *PUBLIC_FILTERED, *PRIVATE) and tickers is not None:
                    sub.tickers = set(tickers)
                conn.subs[sid] = sub
                conn.by_channel[channel] = sub
                self._index(sub)
                new_tickers = list(tickers or [])
            else:  # re-subscribing merges tickers into the existing subscription
                self._unindex(sub)
                if tickers is None or sub.tickers is None:
                    new_tickers = [] if sub.tickers is None else list(tickers or [])
                    sub.tickers = None if tickers is None else sub.tickers
                else:
                    new_tickers = [t for t in tickers if t not in sub.tickers]
                    sub.tickers |= set(tickers)
                self._index(sub)
            conn.send_json(
                {"id": cmd_id, "type": "subscribed", "msg": {"channel": channel, "sid": sub.sid}}
            )
            if channel == BOOK:
                for ticker in new_tickers:
                    self._send_snapshot(sub, ticker)
            elif channel == "ticker" and params.get("send_initial_snapshot"):
                for ticker in sorted(sub.tickers or self.exchange.markets):
                    self._send_ticker(sub, ticker, self.clock_ms())

    def _unsubscribe(self, conn: Connection, cmd_id: int, params: dict[str, Any]) -> None:
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            raise CommandError(4)
        for sid in sids:
            sub = conn.subs.get(sid) if isinstance(sid, int) else None
            if sub is None:
                raise CommandError(7)
        for sid in sids:
            sub = conn.subs.pop(sid)
            conn.by_channel.pop(sub.channel, None)
            self._unindex(sub)
            conn.send_json(
                {"id": cmd_id, "type": "unsubscribed", "sid": sid, "seq": sub.next_seq()}
            )

    def _update(self, conn: Connection, cmd_id: int, params: dict[str, Any]) -> None:
        sid = params.get("sid")
        sids = params.get("sids")
        if sid is None and isinstance(sids, list):
            if len(sids) != 1:
                raise CommandError(12)
            sid = sids[0]
        if sid is None:
            raise CommandError(12)
        sub = conn.subs.get(sid) if isinstance(sid, int) else None
        if sub is None:
            raise CommandError(7)
        action = params.get("action")
        if action is None:
            raise CommandError(15)
        if action not in ("add_markets", "delete_markets", "get_snapshot"):
            raise CommandError(13)
        tickers = self._tickers(params, required=True) or []
        if action == "get_snapshot":
            if sub.channel != BOOK:
                raise CommandError(13)
            self._ok(sub, cmd_id)
            for ticker in tickers:
                if sub.wants(ticker):
                    self._send_snapshot(sub, ticker)
            return
        self._unindex(sub)
        if action == "add_markets":
            added = [t for t in tickers if sub.tickers is not None and t not in sub.tickers]
            if sub.tickers is not None:
                sub.tickers |= set(tickers)
        else:
            added = []
            if sub.tickers is not None:
                sub.tickers -= set(tickers)
        self._index(sub)
        self._ok(sub, cmd_id)
        if sub.channel == BOOK:
            for ticker in added:
                self._send_snapshot(sub, ticker)

    def _ok(self, sub: Subscription, cmd_id: int) -> None:
        listed = sorted(sub.tickers) if sub.tickers is not None else []
        sub.conn.send_json(
            {
                "id": cmd_id,
                "type": "ok",
                "sid": sub.sid,
                "seq": sub.next_seq(),
                "msg": {"market_tickers": listed},
            }
        )

    # ----- snapshots ------------------------------------------------------------------------

    def _send_snapshot(self, sub: Subscription, ticker: str) -> None:
        market = self.exchange.markets[ticker]
        book = self.exchange.books[ticker]
        msg: dict[str, Any] = {"market_ticker": ticker, "market_id": market.market_id}
        yes = book.yes_levels()
        if sub.use_yes_price:
            no = [(p, book.asks.levels[p].size) for p in book.asks.prices]
        else:
            no = book.no_levels()
        if yes:
            msg["yes_dollars_fp"] = wire.levels_json(yes)
        if no:
            msg["no_dollars_fp"] = wire.levels_json(no)
        sub.snapshot_at[ticker] = self._delta_counter
        self._send_seq(sub, "orderbook_snapshot", msg)

    def _send_seq(self, sub: Subscription, kind: str, msg: dict[str, Any]) -> None:
        seq = sub.next_seq()
        if kind != "orderbook_snapshot" and sub.channel == BOOK and self.faults.take_seq_skip():
            seq = sub.next_seq()
            self.stats["seq_skipped"] += 1
        sub.conn.send(orjson.dumps({"type": kind, "sid": sub.sid, "seq": seq, "msg": msg}))

    def _send_ticker(self, sub: Subscription, ticker: str, now_ms: int) -> None:
        market = self.exchange.markets[ticker]
        msg = wire.ws_ticker_msg(market, self.exchange.books[ticker], now_ms)
        sub.conn.send(orjson.dumps({"type": "ticker", "sid": sub.sid, "msg": msg}))

    # ----- fan-out --------------------------------------------------------------------------

    @property
    def holding(self) -> bool:
        """Messages held back by a fault, to be sent once it is over."""
        return bool(self._held or self._private_held)

    def publish(self, events: Iterable[EngineEvent]) -> None:
        now_ms = self.clock_ms()
        if self._held and not self.faults.book_stalled(now_ms):
            held, self._held = self._held, []
            for number, delta in held:
                self._book_delta(delta, number)
        if self._private_held and not self.faults.private_delayed(now_ms):
            private, self._private_held = self._private_held, []
            for message in private:
                self._send_private(*message)
        for event in events:
            if isinstance(event, BookDelta):
                self._delta_counter += 1
                if self.faults.book_stalled(now_ms):
                    self._held.append((self._delta_counter, event))
                else:
                    self._book_delta(event, self._delta_counter)
            elif isinstance(event, TradeEvent):
                self._public("trade", event.trade.ticker, "trade", wire.ws_trade_msg(event.trade))
            elif isinstance(event, TickerEvent):
                subs = [s for s in self.public["ticker"] if s.wants(event.ticker)]
                for sub in subs:
                    self._send_ticker(sub, event.ticker, now_ms)
            elif isinstance(event, FillEvent):
                fill = event.fill
                self._private("fill", fill.key_id, fill.ticker, "fill", wire.ws_fill_msg(fill))
            elif isinstance(event, OrderEvent):
                order = event.order
                self._private(
                    "user_orders",
                    order.key_id,
                    order.ticker,
                    "user_order",
                    wire.ws_user_order_msg(order),
                )
            elif isinstance(event, PositionEvent):
                msg = wire.ws_position_msg(event.user_id, event.position)
                self._private(
                    "market_positions", event.key_id, event.position.ticker, "market_position", msg
                )
            elif isinstance(event, OrderGroupEvent):
                self._group(event)
            elif isinstance(event, LifecycleEvent) and event.event_type == "event_fee_update":
                self._public(LIFECYCLE, None, "event_fee_update", dict(event.fields))
            elif isinstance(event, LifecycleEvent):
                msg = {
                    "market_ticker": event.ticker,
                    "event_type": event.event_type,
                    **event.fields,
                }
                self._public(LIFECYCLE, None, "market_lifecycle_v2", msg)

    def _book_delta(self, delta: BookDelta, number: int) -> None:
        subs = self.book_subs.get(delta.ticker)
        if not subs:
            return
        market = self.exchange.markets[delta.ticker]
        is_bid = delta.side is BookSide.BID
        base: dict[str, Any] = {
            "market_ticker": delta.ticker,
            "market_id": market.market_id,
            "price_dollars": format_price(delta.price if is_bid else ONE_DOLLAR - delta.price),
            "delta_fp": format_count(delta.delta),
            "side": "yes" if is_bid else "no",
            "ts_ms": delta.ts_ms,
            "ts": wire.rfc3339(delta.ts_ms),
        }
        for sub in list(subs):
            if sub.snapshot_at.get(delta.ticker, 0) >= number:
                continue  # already in the snapshot this subscription got
            msg = base
            if sub.use_yes_price and not is_bid:
                msg = {**base, "price_dollars": format_price(delta.price)}
            if sub.conn.key_id == delta.key_id:
                msg = {
                    **msg,
                    "client_order_id": delta.client_order_id,
                    "subaccount": delta.subaccount,
                }
            self._send_seq(sub, "orderbook_delta", msg)
            self.stats["ws_book_deltas_sent"] += 1
            if not sub.conn.closed:
                sub.conn.delta_ts.append((sub.conn.queued - 1, delta.ts_ms))

    def _public(self, channel: str, ticker: str | None, kind: str, msg: dict[str, Any]) -> None:
        subs = self.public[channel]
        if not subs:
            return
        for sub in list(subs):
            if ticker is None or sub.wants(ticker):
                if channel in SEQUENCED:
                    self._send_seq(sub, kind, msg)
                else:
                    sub.conn.send(orjson.dumps({"type": kind, "sid": sub.sid, "msg": msg}))

    def _private(
        self, channel: str, key_id: str, ticker: str, kind: str, msg: dict[str, Any]
    ) -> None:
        if self.faults.private_delayed(self.clock_ms()):
            if self.private[channel].get(key_id):
                self._private_held.append((channel, key_id, ticker, kind, msg))
            return
        self._send_private(channel, key_id, ticker, kind, msg)

    def _send_private(
        self, channel: str, key_id: str, ticker: str, kind: str, msg: dict[str, Any]
    ) -> None:
        subs = self.private[channel].get(key_id)
        if not subs:
            return
        for sub in list(subs):
            if sub.wants(ticker):
                sub.conn.send(orjson.dumps({"type": kind, "sid": sub.sid, "msg": msg}))

    def _group(self, event: OrderGroupEvent) -> None:
        subs = self.private["order_group_updates"].get(event.key_id)
        if not subs:
            return
        msg: dict[str, Any] = {
            "event_type": event.event_type,
            "order_group_id": event.group_id,
            "ts_ms": event.ts_ms,
        }
        if event.contracts_limit is not None:
            msg["contracts_limit_fp"] = format_count(event.contracts_limit)
        for sub in list(subs):
            self._send_seq(sub, "order_group_updates", msg)
