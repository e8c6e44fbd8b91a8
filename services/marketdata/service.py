"""marketdata: live YES books and market facts for every enabled market.

The WebSocket (``common.kalshi.ws``) keeps a book per market from snapshot + deltas and flags a
book stale on a seq gap or a silent socket; this process writes each changed book to
``dora:book:{t}`` and announces it on the md stream, coalescing a burst of deltas into one write
per market. Market facts go to ``dora:market:{t}`` (``facts``: REST every 30 s, lifecycle events
at once, fee changes live, a market dora cannot read kept to itself); the exchange's calendar to
``dora:exchange`` (``calendar``). While the socket is down the books are polled over REST at
``loop_interval_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from common.alerts import Alerter
from common.book import BookState, YesBook
from common.config_cache import ConfigCache
from common.connect import kalshi_client, load_signer
from common.control import ControlListener
from common.direct_redis import DirectRedis, direct_for
from common.events import book_event
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.ws import (
    LIFECYCLE_CHANNEL,
    BookStale,
    BookUpdated,
    Connected,
    Disconnected,
    FeedGap,
    FeeUpdate,
    KalshiWebSocket,
    LifecycleEvent,
    WsEvent,
)
from common.messages import ControlCommand, encode_event
from common.redis_codec import encode_book
from common.restore import RestoreWatch, wait_until_restored
from common.runtime import Context, service_main, stop_tasks
from common.settings import Settings
from common.streams import STREAM_MAXLEN
from common.trace import now_us
from services.marketdata.calendar import ExchangeCalendar
from services.marketdata.facts import META_REFRESH_MS, MarketFacts
from services.marketdata.owned_keys import execute_owned

CONFIG_REFRESH_MS = 5_000
REST_FALLBACK_AFTER_MS = 2_000
FLUSH_WAIT_S = 0.05
TOP_LEVELS = 5  # a book change below these levels updates the hash without an md event


class MarketdataService:
    name = "marketdata"

    def __init__(
        self,
        settings: Settings,
        client: KalshiClient | None = None,
        ws: KalshiWebSocket | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.ws = ws
        self.configs: ConfigCache | None = None
        self.facts: MarketFacts | None = None  # built at start, with the client
        self.calendar: ExchangeCalendar | None = None
        self.dirty: set[str] = set()
        self.first_recv_us: dict[str, int] = {}  # oldest unflushed frame per market (tracing)
        self.direct: DirectRedis | None = None  # the books' writes: a connection of their own
        self.stale_reason: dict[str, str] = {}
        self.published_top: dict[str, Any] = {}  # ticker -> top levels + staleness last announced
        self.wake = asyncio.Event()
        self.reload = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.ws_down = False
        self.disconnected_since: float | None = None
        self.last_meta_ms = 0.0
        self.last_poll_ms = 0.0
        self.restore = RestoreWatch()  # Redis lost its data: write books and facts again
        self.ctx: Context | None = None  # set at start
        self.keeping = False  # the step's housekeeping is running (it may wait on IO)
        self.polling = False  # the REST poll of the books is running (its writes come last)
        self.flushing: asyncio.Task[None] | None = None  # a flush beside the housekeeping
        self.counts = {"book_writes": 0, "deep_only": 0, "stale": 0, "rest_polls": 0}

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        # The restore marker means the persisted state and the config mirror are in Redis.
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        self.direct = direct_for(ctx.redis)
        if self.direct is not None:
            await self.direct.connect()
        await self.restore.prime(ctx.redis, ctx.keys)
        self.configs = ConfigCache(ctx.keys, ctx.log)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        if self.client is None:
            self.client = await kalshi_client(self.settings, redis=ctx.redis, clock=ctx.clock)
        alerter = Alerter(self.settings, ctx.log, ctx.clock)
        self.facts = MarketFacts(ctx, self.client, alerter)
        self.calendar = ExchangeCalendar(ctx, self.client, alerter)
        tickers = self.configs.enabled()
        await self.facts.refresh(tickers)  # what cannot be read is that market's problem
        self.last_meta_ms = ctx.clock.monotonic_ms()
        await self.calendar.poll()
        if self.ws is None:
            signer = await asyncio.to_thread(load_signer, self.settings)
            self.ws = KalshiWebSocket(
                self.settings.ws_url,
                signer,
                tickers=tickers,
                clock=ctx.clock,
                on_event=self._on_ws_event,
                lifecycle=True,
                use_yes_price=self.settings.ws_use_yes_price,
            )
        for ticker in tickers:
            self.stale_reason[ticker] = "subscribing"
            self.dirty.add(ticker)
        await self.ws.start()
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, self._on_control)
        self.tasks.append(asyncio.create_task(listener.run(), name="control"))
        ctx.log.info("marketdata_ready", markets=len(tickers))

    async def stop(self, ctx: Context) -> None:
        await stop_tasks([*self.tasks, *([self.flushing] if self.flushing is not None else [])])
        if self.ws is not None:
            await self.ws.close()
        # Nobody maintains the books now: say so, so nothing quotes on them.
        with contextlib.suppress(Exception):
            pipe = ctx.redis.pipeline(transaction=False)
            for ticker in self.configs.enabled() if self.configs else []:
                pipe.hset(
                    ctx.keys.book(ticker),
                    mapping={"stale": "1", "stale_reason": "marketdata_stopped"},
                )
            await pipe.execute()
        if self.client is not None:
            await self.client.aclose()
        if self.direct is not None:
            await self.direct.aclose()

    async def _on_control(self, command: ControlCommand) -> None:
        if command.cmd == "reload":
            self.reload.set()
            self.wake.set()

    def _on_ws_event(self, event: WsEvent) -> None:
        """Called by the socket for every event: only note what changed (cheap), the step
        writes it."""
        if isinstance(event, BookUpdated):
            self.stale_reason.pop(event.ticker, None)
            self.dirty.add(event.ticker)
            self.first_recv_us.setdefault(event.ticker, now_us())
        elif isinstance(event, BookStale):
            self.stale_reason[event.ticker] = event.reason
            self.dirty.add(event.ticker)
            self.counts["stale"] += 1
        elif isinstance(event, LifecycleEvent) and self.facts is not None:
            self.facts.on_lifecycle(event)
        elif isinstance(event, FeeUpdate) and self.facts is not None:
            self.facts.on_fee_update(event)
        elif isinstance(event, FeedGap) and self.facts is not None:
            if event.channel == LIFECYCLE_CHANNEL:
                self.facts.refresh_all = True  # what the missed messages said: over REST
        elif isinstance(event, Disconnected):
            self.ws_down = True
            if self.calendar is not None:
                self.calendar.poll_soon()  # sockets drop around the exchange's pauses
            for ticker in self.ws.tickers if self.ws else ():
                self.stale_reason.setdefault(ticker, f"disconnected: {event.reason}")
                self.dirty.add(ticker)
        elif isinstance(event, Connected):
            self.ws_down = False
        else:
            return
        self.wake.set()
        self._flush_beside_housekeeping()

    # ---- the loop ----------------------------------------------------------------------------

    async def step(self, ctx: Context) -> None:
        assert self.configs is not None and self.facts is not None and self.calendar is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), FLUSH_WAIT_S * 10)
        self.wake.clear()
        if not self.facts.pending:
            # What the socket brought goes out first: the step's housekeeping below (a Redis
            # read a second, REST polls every few seconds) is nothing a tick should wait for.
            # Not while market facts wait to be written: a pause or a close goes out before
            # the book that would be quoted on.
            await self._flush_books(ctx)
        # The housekeeping awaits Redis and REST: books the socket brings meanwhile go out at
        # once, beside it (_on_ws_event starts the flush), not after it.
        self.keeping = True
        try:
            await self._housekeeping(ctx)
        finally:
            self.keeping = False
        if self.flushing is not None:
            await self.flushing  # never two flushes at once
        if not self.facts.pending:  # facts that came meanwhile: at the next step, books after
            await self._flush_books(ctx)
        ctx.status.update(
            self.counts,
            **self.facts.counts,
            **self.calendar.counts,
            markets=len(self.facts.meta),
            ws_connected=self.disconnected_since is None,
        )

    def _may_flush_beside(self) -> bool:
        """Whether a frame may be flushed while the step's housekeeping waits on Redis or REST.
        Not while market facts are to be read or written (a pause goes out before the book that
        would be quoted on), nor while the socket is down or the REST poll runs (a frame read
        when the socket came back during the poll is newer than the poll's books: it goes out
        after them). Under churn this never comes up: a housekeeping with nothing due never
        waits, so no frame is read during it."""
        return (
            self.keeping
            and not (self.ws_down or self.polling)
            and self.facts is not None
            and not self.facts.pending
        )

    def _flush_beside_housekeeping(self) -> None:
        """A frame came: flush it now, in a task of its own, if the housekeeping waits and no
        such flush runs already (``_may_flush_beside``)."""
        if self.flushing is None and self.ctx is not None and self._may_flush_beside():
            self.flushing = asyncio.get_running_loop().create_task(
                self._flush_while_keeping(self.ctx), name="flush-beside"
            )

    async def _flush_while_keeping(self, ctx: Context) -> None:
        try:
            while self.dirty and self._may_flush_beside():
                await self._flush_books(ctx)
        except Exception as exc:  # Redis away: the step's own flush meets it and says so
            ctx.log.warning("flush_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.flushing = None

    async def _housekeeping(self, ctx: Context) -> None:
        assert self.configs is not None and self.facts is not None and self.calendar is not None
        now = ctx.clock.monotonic_ms()
        if not self.ws_down:
            self.disconnected_since = None
        elif self.disconnected_since is None:
            self.disconnected_since = now
        if await self.restore.restored_again(ctx.redis, ctx.keys, now):
            ctx.log.warning("redis_restored_republishing", markets=len(self.facts.meta))
            self.facts.refresh_all = True  # every market's facts at once, before the books
            self.calendar.poll_soon()  # and the exchange's calendar
            self.dirty.update(self.facts.meta)
            self.published_top.clear()
        if self.reload.is_set() or ctx.clock.now_ms() - self.configs.loaded_ms > CONFIG_REFRESH_MS:
            self.reload.clear()
            await self._follow_config(ctx)
        if now - self.last_meta_ms > META_REFRESH_MS:
            self.last_meta_ms = now
            await self.facts.refresh(self.configs.enabled())
        else:
            await self.facts.refresh_due(self.configs.enabled())
        await self.facts.poll_fee_changes(ctx.clock.now_ms())
        await self.calendar.poll()
        poll_due = now - self.last_poll_ms >= self.configs.global_config.loop_interval_ms
        down_for = 0.0 if self.disconnected_since is None else now - self.disconnected_since
        if poll_due and down_for >= REST_FALLBACK_AFTER_MS:
            self.last_poll_ms = now
            self.polling = True
            try:
                await self._poll_books(ctx)
            finally:
                self.polling = False

    async def _flush_books(self, ctx: Context) -> None:
        if not self.dirty or self.ws is None:
            return
        dirty, self.dirty = self.dirty, set()
        now = ctx.clock.now_ms()
        pub_us = now_us() if ctx.settings.trace_latency else 0
        pipe = ctx.redis.pipeline(transaction=False)
        owned: list[tuple[str, str] | None] = []  # per command: the market's book it writes
        for ticker in dirty:
            book = self.ws.yes_book(ticker) or YesBook()
            reason = self.stale_reason.get(ticker, "")
            if not reason and self.ws.is_stale(ticker):
                reason = self.ws.stale.get(ticker, "no_snapshot")
            seq = self.ws.book_seq.get(ticker, 0)
            exchange_ms = self.ws.book_ms.get(ticker, 0)
            if exchange_ms:  # how far behind the exchange's clock the books are published
                feed_lag = max(0, now - exchange_ms)
                ctx.status["feed_lag_ms"] = max(feed_lag, ctx.status.get("feed_lag_ms", 0))
            state = BookState(ticker, book, seq, exchange_ms, now, bool(reason), reason)
            pipe.hset(ctx.keys.book(ticker), mapping=encode_book(state))
            owned.append((ticker, ctx.keys.book(ticker)))
            recv_us = self.first_recv_us.pop(ticker, 0)
            top = (book.depth(TOP_LEVELS), reason)
            if self.published_top.get(ticker) == top:
                # Only levels below the top changed: the hash has them, but nothing that quotes
                # from the top needs waking (deep churn would otherwise cost a computation each).
                self.counts["deep_only"] += 1
                continue
            self.published_top[ticker] = top
            pipe.xadd(
                ctx.keys.stream("md", ticker),
                encode_event("book", book_event(ticker, seq, exchange_ms, now, recv_us, pub_us)),
                maxlen=STREAM_MAXLEN["md"],
                approximate=True,
            )
            owned.append(None)
        # on a connection of its own, through hiredis (common.direct_redis): the tick's first hop
        try:
            redo = await execute_owned(ctx, pipe, owned, self.direct)
        except Exception:  # not written: these books go out with the next flush, announced
            self.dirty |= dirty
            for ticker in dirty:
                self.published_top.pop(ticker, None)
            raise
        for ticker in redo:  # a key of the wrong type: again
            self.dirty.add(ticker)
            self.published_top.pop(ticker, None)
        self.counts["book_writes"] += len(dirty)

    async def _poll_books(self, ctx: Context) -> None:
        """REST fallback while the socket is down: fresh books from the orderbook endpoint."""
        assert self.client is not None and self.configs is not None
        now = ctx.clock.now_ms()
        pipe = ctx.redis.pipeline(transaction=False)
        for ticker in self.configs.enabled():
            try:
                book = await self.client.get_order_book(ticker)
            except ExchangeError as exc:
                ctx.metrics.count("api_errors")
                ctx.log.warning("rest_book_failed", market=ticker, error=str(exc))
                continue
            state = BookState(ticker, book, 0, now, now, False, "")
            pipe.hset(ctx.keys.book(ticker), mapping={**encode_book(state), "source": "rest"})
            pipe.xadd(
                ctx.keys.stream("md", ticker),
                encode_event("book", book_event(ticker, 0, now, now)),
                maxlen=STREAM_MAXLEN["md"],
                approximate=True,
            )
            self.counts["rest_polls"] += 1
        await pipe.execute()

    async def _follow_config(self, ctx: Context) -> None:
        """Subscribe newly enabled markets, drop disabled ones."""
        assert self.configs is not None and self.ws is not None
        before = set(self.configs.enabled())
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        after = set(self.configs.enabled())
        added, removed = sorted(after - before), sorted(before - after)
        if added and self.facts is not None:
            await self.facts.refresh(added)
            for ticker in added:
                self.stale_reason[ticker] = "subscribing"
                self.dirty.add(ticker)
            await self.ws.add_markets(added)
        if removed:
            await self.ws.remove_markets(removed)
            pipe = ctx.redis.pipeline(transaction=False)
            for ticker in removed:
                pipe.hset(ctx.keys.book(ticker), mapping={"stale": "1", "stale_reason": "disabled"})
            await pipe.execute()
        if added or removed:
            ctx.log.info("markets_changed", added=added, removed=removed)


def main() -> int:
    return service_main(MarketdataService, needs_kalshi=True)
