"""KalshiWebSocket: live YES books, fills, order updates and lifecycle events (API.md §6).

One authenticated socket (re-signed on every connect) carries an ``orderbook_delta`` subscription
for the wanted markets (``use_yes_price`` as asked: true, Kalshi's announced default, unless
told otherwise), and optionally ``market_lifecycle_v2``, ``fill`` and ``user_orders``. A
``LevelBook`` per market is kept from its snapshot and the deltas after it; what each message
does is in ``ws_messages``.

- ``seq`` is checked per ``sid``. On a book gap every book of that subscription is marked stale
  (``BookStale``), deltas for it are dropped and ``get_snapshot`` is asked for; each snapshot
  makes its book fresh again (``BookUpdated`` with ``resynced=True``). If the snapshots do not
  come within ``snapshot_timeout_s`` the socket is reconnected. A gap elsewhere is a ``FeedGap``.
- Liveness: the server pings every 10 s and we ping too. A socket that sends no frame (data or
  ping) for ``silence_timeout_s`` is dead; with ``book_silence_s`` set, a book subscription that
  sends nothing for that long is a stalled feed. Either way the socket is dropped.
- Reconnect with capped exponential backoff and jitter; everything is resubscribed (sids may
  change) and every book is stale until its new snapshot arrives.

Events go to ``on_event`` (a plain callable, called inline: keep it cheap) or, without one, to
an internal queue read with ``async for event in ws.events()``. The hot path parses with orjson,
touches only the changed book and logs nothing per message; ``yes_book(ticker)`` builds the
immutable view on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import Frame, Opcode

from common.book import LevelBook, YesBook
from common.clock import Clock
from common.kalshi.signing import Signer, auth_headers
from common.kalshi.ws_events import (
    BookStale,
    BookUpdated,
    Connected,
    Disconnected,
    FeedGap,
    FeeUpdate,
    FillEvent,
    LifecycleEvent,
    OrderGroupEvent,
    UserOrderEvent,
    WsError,
    WsEvent,
    WsStats,
)
from common.kalshi.ws_messages import BOOK_CHANNEL, LIFECYCLE_CHANNEL, PRIVATE_CHANNELS, WsMessages
from common.log import get_logger

__all__ = [
    "BOOK_CHANNEL",
    "LIFECYCLE_CHANNEL",
    "PRIVATE_CHANNELS",
    "BookStale",
    "BookUpdated",
    "Connected",
    "Disconnected",
    "FeeUpdate",
    "FeedGap",
    "FillEvent",
    "KalshiWebSocket",
    "LifecycleEvent",
    "OrderGroupEvent",
    "UserOrderEvent",
    "WsError",
    "WsEvent",
    "WsStats",
]


class _TrackedConnection(ClientConnection):
    """Records when the last data frame or server ping arrived (pongs do not count: a socket
    that only answers our pings but says nothing is silent)."""

    last_heard: float = 0.0

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.PING):
            self.last_heard = self.loop.time()


class KalshiWebSocket(WsMessages):
    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        tickers: Iterable[str] = (),
        clock: Clock | None = None,
        on_event: Callable[[WsEvent], None] | None = None,
        lifecycle: bool = True,
        private: bool = False,
        use_yes_price: bool = True,
        silence_timeout_s: float = 15.0,
        ping_interval_s: float = 5.0,
        book_silence_s: float | None = None,
        snapshot_timeout_s: float = 1.0,
        reconnect_base_s: float = 0.25,
        reconnect_max_s: float = 10.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.path = urlsplit(url).path
        self.signer = signer
        self.clock = clock or Clock()
        self.tickers: set[str] = set(tickers)
        self.lifecycle = lifecycle
        self.private = private
        self.use_yes_price = use_yes_price
        self.silence_timeout_s = silence_timeout_s
        self.ping_interval_s = ping_interval_s
        self.book_silence_s = book_silence_s
        self.snapshot_timeout_s = snapshot_timeout_s
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.open_timeout_s = open_timeout_s
        self.stats = WsStats()
        self.connected = asyncio.Event()
        self.books: dict[str, LevelBook] = {}
        self.book_seq: dict[str, int] = {}
        self.book_ms: dict[str, int] = {}
        self.stale: dict[str, str] = {}
        self._on_event = on_event
        self._queue: asyncio.Queue[WsEvent] = asyncio.Queue()
        self._ws: _TrackedConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_id = 0
        self._sid_channel: dict[int, str] = {}
        self._sid_seq: dict[int, int] = {}
        self._book_sid: int | None = None
        self._resync_deadline: float | None = None
        self._last_book_msg = 0.0
        self._drop_reason = ""
        self._tasks: set[asyncio.Task[object]] = set()
        self._log = get_logger("kalshi.ws")

    # ---- public surface --------------------------------------------------------------------

    def yes_book(self, ticker: str) -> YesBook | None:
        book = self.books.get(ticker)
        return None if book is None else book.to_yes_book()

    def is_stale(self, ticker: str) -> bool:
        return ticker in self.stale or ticker not in self.books

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self.run(), name="kalshi-ws")

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2.0)  # never hold up a shutdown
            self._task = None

    async def events(self) -> AsyncIterator[WsEvent]:
        while True:
            yield await self._queue.get()

    async def wait_fresh(self, tickers: Iterable[str], timeout_s: float) -> bool:
        """Wait until every ticker has a fresh book (tests, startup)."""
        wanted = list(tickers)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(self.is_stale(t) for t in wanted):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def add_markets(self, tickers: Iterable[str]) -> None:
        new = [t for t in tickers if t not in self.tickers]
        if not new:
            return
        self.tickers.update(new)
        for ticker in new:
            self._mark_stale(ticker, "subscribing")
        if self._ws is None:
            return
        if self._book_sid is None:
            await self._subscribe_books(new)
        else:
            await self._send(
                "update_subscription",
                {"sid": self._book_sid, "action": "add_markets", "market_tickers": new},
            )

    async def remove_markets(self, tickers: Iterable[str]) -> None:
        gone = [t for t in tickers if t in self.tickers]
        if not gone:
            return
        self.tickers.difference_update(gone)
        for ticker in gone:
            self.books.pop(ticker, None)
            self.stale.pop(ticker, None)
            self.book_seq.pop(ticker, None)
        if self._ws is not None and self._book_sid is not None:
            await self._send(
                "update_subscription",
                {"sid": self._book_sid, "action": "delete_markets", "market_tickers": gone},
            )

    def drop(self, reason: str) -> None:
        """Abort the current socket (the run loop reconnects)."""
        ws = self._ws
        if ws is not None:
            self._drop_reason = reason
            ws.transport.abort()

    # ---- connection loop -------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while not self._closing:
            reason = "closed"
            try:
                headers = auth_headers(self.signer, self.clock.now_ms(), "GET", self.path)
                async with connect(
                    self.url,
                    additional_headers=headers,
                    create_connection=_TrackedConnection,
                    ping_interval=self.ping_interval_s,
                    ping_timeout=self.silence_timeout_s,
                    open_timeout=self.open_timeout_s,
                    close_timeout=1.0,
                    max_size=64 * 1024 * 1024,
                    max_queue=None,
                    compression=None,
                ) as ws:
                    assert isinstance(ws, _TrackedConnection)
                    failures = 0
                    await self._session(ws)
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                reason = (
                    self._drop_reason
                    or f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
                )
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                reason = self._drop_reason or f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                self._log.exception("ws_session_error")
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                self.connected.clear()
            if self._closing:
                break
            failures += 1
            self._after_disconnect(reason)
            delay = min(self.reconnect_max_s, self.reconnect_base_s * 2 ** (failures - 1))
            await asyncio.sleep(delay * (0.5 + random.random() * 0.5))

    def _after_disconnect(self, reason: str) -> None:
        self._drop_reason = ""
        self._log.warning("ws_disconnected", reason=reason)
        self._emit(Disconnected(self.clock.now_ms(), reason))
        for ticker in self.tickers:
            self._mark_stale(ticker, f"disconnected: {reason}")

    async def _session(self, ws: _TrackedConnection) -> None:
        loop = asyncio.get_running_loop()
        self._ws = ws
        self._sid_channel.clear()
        self._sid_seq.clear()
        self._book_sid = None
        self._resync_deadline = None
        ws.last_heard = loop.time()
        self._last_book_msg = loop.time()
        self.stats.connects += 1
        for ticker in self.tickers:
            self._mark_stale(ticker, "connecting")
        if self.tickers:
            await self._subscribe_books(sorted(self.tickers))
        if self.lifecycle:
            await self._send("subscribe", {"channels": [LIFECYCLE_CHANNEL]})
        if self.private:
            await self._send("subscribe", {"channels": list(PRIVATE_CHANNELS)})
        self.connected.set()
        self._emit(Connected(self.clock.now_ms(), self.stats.connects - 1))
        watchdog = asyncio.create_task(self._watchdog(ws))
        try:
            async for raw in ws:
                self._on_message(raw)
        finally:
            watchdog.cancel()
            # its cancellation is its result; a cancellation of ours while we wait stays ours
            await asyncio.gather(watchdog, return_exceptions=True)

    async def _watchdog(self, ws: _TrackedConnection) -> None:
        loop = asyncio.get_running_loop()
        tick = min(0.1, self.snapshot_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            if now - ws.last_heard > self.silence_timeout_s:
                self.stats.silent_drops += 1
                self.drop(f"silent for {self.silence_timeout_s:g}s")
                return
            if (
                self.book_silence_s is not None
                and self._book_sid is not None
                and now - self._last_book_msg > self.book_silence_s
            ):
                self.stats.silent_drops += 1
                self.drop(f"book feed silent for {self.book_silence_s:g}s")
                return
            if self._resync_deadline is not None and now > self._resync_deadline:
                self.drop(f"no snapshot within {self.snapshot_timeout_s:g}s of a gap")
                return

    async def _send(self, cmd: str, params: dict[str, Any]) -> int:
        ws = self._ws
        if ws is None:
            return 0
        self._next_id += 1
        try:
            await ws.send(
                orjson.dumps({"id": self._next_id, "cmd": cmd, "params": params}).decode()
            )
        except ConnectionClosed:
            return 0  # the run loop reconnects and resubscribes
        return self._next_id

    async def _subscribe_books(self, tickers: list[str]) -> None:
        await self._send(
            "subscribe",
            {
                "channels": [BOOK_CHANNEL],
                "market_tickers": tickers,
                "use_yes_price": self.use_yes_price,
            },
        )

    async def _subscribe_channels(self, channels: list[str]) -> int:
        return await self._send("subscribe", {"channels": channels})

    # ---- messages --------------------------------------------------------------------------

    def _emit(self, event: WsEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
        else:
            self._queue.put_nowait(event)

    def _mark_stale(self, ticker: str, reason: str) -> None:
        if ticker not in self.stale:
            self.stale[ticker] = reason
            self._emit(BookStale(ticker, reason))

    def _resync(self, tickers: list[str], reason: str) -> None:
        if not tickers:
            return
        for ticker in tickers:
            self._mark_stale(ticker, reason)
        self.stats.resyncs += 1
        book_sid = self._book_sid
        if book_sid is not None and self._ws is not None:
            if self._resync_deadline is None:
                self._resync_deadline = asyncio.get_running_loop().time() + self.snapshot_timeout_s
            params = {"sid": book_sid, "action": "get_snapshot", "market_tickers": tickers}
            self._send_later(lambda: self._send("update_subscription", params))

    def _send_later(self, send: Callable[[], Coroutine[Any, Any, object]]) -> None:
        """Send a command from a message handler (which cannot wait)."""
        if self._ws is None:
            return  # the next connection subscribes everything anyway
        task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
