"""marketdata: live YES books and market facts for every enabled market.

The WebSocket (``common.kalshi.ws``) keeps a book per market from snapshot + deltas and flags a
book stale on a seq gap or a silent socket; this process writes each changed book to
``dora:book:{t}`` and announces it on the md stream, coalescing a burst of deltas into one write
per market. Market facts (status, close time, tick grid, fee type) go to ``dora:market:{t}``,
from REST at start and every 30 s, and from lifecycle events at once: a pause, a close-date
change or a determination makes the market unquotable immediately. While the socket is down the
books are polled over REST at ``loop_interval_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

from common.book import BookState, YesBook
from common.config_cache import ConfigCache
from common.connect import kalshi_client, load_signer
from common.control import ControlListener
from common.domain import MarketMeta, MarketStatus
from common.events import book_event
from common.grid import GridError, PriceGrid
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.ws import (
    BookStale,
    BookUpdated,
    Connected,
    Disconnected,
    KalshiWebSocket,
    LifecycleEvent,
    WsEvent,
)
from common.messages import ControlCommand, encode_event
from common.redis_codec import encode_book, encode_market
from common.restore import wait_until_restored
from common.runtime import Context, service_main, stop_tasks
from common.settings import Settings
from common.streams import STREAM_MAXLEN
from common.trace import now_us

META_REFRESH_MS = 30_000
CONFIG_REFRESH_MS = 5_000
REST_FALLBACK_AFTER_MS = 2_000
FLUSH_WAIT_S = 0.05
TOP_LEVELS = 5  # a book change below these levels updates the hash without an md event

# Kalshi lifecycle event -> the market status it implies (API.md §9)
LIFECYCLE_STATUS = {"determined": MarketStatus.DETERMINED, "settled": MarketStatus.FINALIZED}


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
        self.meta: dict[str, MarketMeta] = {}
        self.dirty: set[str] = set()
        self.first_recv_us: dict[str, int] = {}  # oldest unflushed frame per market (tracing)
        self.stale_reason: dict[str, str] = {}
        self.published_top: dict[str, Any] = {}  # ticker -> top levels + staleness last announced
        self.meta_dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.reload = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.ws_down = False
        self.disconnected_since: float | None = None
        self.last_meta_ms = 0.0
        self.last_poll_ms = 0.0
        self.counts = {
            "book_writes": 0,
            "deep_only": 0,
            "stale": 0,
            "lifecycle": 0,
            "rest_polls": 0,
        }

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, ctx: Context) -> None:
        # The restore marker means the persisted state and the config mirror are in Redis.
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        self.configs = ConfigCache(ctx.keys, ctx.log)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        if self.client is None:
            self.client = await kalshi_client(self.settings, redis=ctx.redis, clock=ctx.clock)
        tickers = self.configs.enabled()
        await self._refresh_meta(ctx, tickers)
        if self.ws is None:
            signer = await asyncio.to_thread(load_signer, self.settings)
            self.ws = KalshiWebSocket(
                self.settings.ws_url,
                signer,
                tickers=tickers,
                clock=ctx.clock,
                on_event=self._on_ws_event,
                lifecycle=True,
            )
        for ticker in tickers:
            self.stale_reason[ticker] = "subscribing"
            self.dirty.add(ticker)
        await self.ws.start()
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, self._on_control)
        self.tasks.append(asyncio.create_task(listener.run(), name="control"))
        ctx.log.info("marketdata_ready", markets=len(tickers))

    async def stop(self, ctx: Context) -> None:
        await stop_tasks(self.tasks)
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
        elif isinstance(event, LifecycleEvent):
            self._on_lifecycle(event)
        elif isinstance(event, Disconnected):
            self.ws_down = True
            for ticker in self.ws.tickers if self.ws else ():
                self.stale_reason.setdefault(ticker, f"disconnected: {event.reason}")
                self.dirty.add(ticker)
        elif isinstance(event, Connected):
            self.ws_down = False
        else:
            return
        self.wake.set()

    def _on_lifecycle(self, event: LifecycleEvent) -> None:
        meta = self.meta.get(event.ticker)
        if meta is None:
            self.meta_dirty.add(event.ticker)  # learn about it over REST
            return
        fields: dict[str, Any] = event.fields
        kind = event.event_type
        if kind == "deactivated":
            paused = fields.get("is_deactivated", True)
            meta = replace(meta, status=MarketStatus.INACTIVE if paused else MarketStatus.ACTIVE)
        elif kind == "activated":
            meta = replace(meta, status=MarketStatus.ACTIVE)
        elif kind == "close_date_updated" and isinstance(fields.get("close_ts"), int | float):
            meta = replace(meta, close_ms=int(fields["close_ts"]) * 1000)
        elif kind in LIFECYCLE_STATUS:
            meta = replace(meta, status=LIFECYCLE_STATUS[kind])
        elif kind == "price_level_structure_updated" and fields.get("price_ranges"):
            try:
                meta = replace(meta, grid=PriceGrid.from_price_ranges(fields["price_ranges"]))
            except GridError:
                self.meta_dirty.add(event.ticker)
        else:
            return
        self.counts["lifecycle"] += 1
        self.meta[event.ticker] = meta
        self.meta_dirty.add(event.ticker)

    # ---- the loop ----------------------------------------------------------------------------

    async def step(self, ctx: Context) -> None:
        assert self.configs is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), FLUSH_WAIT_S * 10)
        self.wake.clear()
        now = ctx.clock.monotonic_ms()
        if not self.ws_down:
            self.disconnected_since = None
        elif self.disconnected_since is None:
            self.disconnected_since = now
        if self.reload.is_set() or ctx.clock.now_ms() - self.configs.loaded_ms > CONFIG_REFRESH_MS:
            self.reload.clear()
            await self._follow_config(ctx)
        if now - self.last_meta_ms > META_REFRESH_MS:
            self.last_meta_ms = now
            await self._refresh_meta(ctx, self.configs.enabled())
        elif self.meta_dirty:
            await self._write_meta(ctx)
        poll_due = now - self.last_poll_ms >= self.configs.global_config.loop_interval_ms
        down_for = 0.0 if self.disconnected_since is None else now - self.disconnected_since
        if poll_due and down_for >= REST_FALLBACK_AFTER_MS:
            self.last_poll_ms = now
            await self._poll_books(ctx)
        await self._flush_books(ctx)
        ctx.status.update(
            self.counts, markets=len(self.meta), ws_connected=self.disconnected_since is None
        )

    async def _flush_books(self, ctx: Context) -> None:
        if not self.dirty or self.ws is None:
            return
        dirty, self.dirty = self.dirty, set()
        now = ctx.clock.now_ms()
        pub_us = now_us() if ctx.settings.trace_latency else 0
        pipe = ctx.redis.pipeline(transaction=False)
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
            recv_us = self.first_recv_us.pop(ticker, 0)
            top = (book.depth(TOP_LEVELS), reason)
            if self.published_top.get(ticker) == top:
                # Only levels below the top changed: the hash has them, but nothing that quotes
                # from the top needs waking (deep churn would otherwise cost a computation each).
                self.counts["deep_only"] += 1
                continue
            self.published_top[ticker] = top
            pipe.xadd(
                ctx.keys.stream("md"),
                encode_event("book", book_event(ticker, seq, exchange_ms, now, recv_us, pub_us)),
                maxlen=STREAM_MAXLEN["md"],
                approximate=True,
            )
        await pipe.execute()
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
                ctx.keys.stream("md"),
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
        if added:
            await self._refresh_meta(ctx, added)
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

    async def _refresh_meta(self, ctx: Context, tickers: list[str]) -> None:
        """Every market's facts from REST: each hash is rewritten, but only a market whose
        facts changed is announced on the md stream. Announcing all of them woke the strategy
        for every market at once every 30 s (500 recomputations in one step, a 200 ms lag)."""
        assert self.client is not None
        unchanged: set[str] = set()
        for start in range(0, len(tickers), 100):
            chunk = tickers[start : start + 100]
            try:
                metas = await self.client.get_markets(tickers=chunk)
            except ExchangeError as exc:
                ctx.metrics.count("api_errors")
                ctx.log.warning("market_refresh_failed", error=str(exc), markets=len(chunk))
                continue
            for meta in metas:
                known = self.meta.get(meta.ticker)
                same = known is not None and replace(known, updated_ms=meta.updated_ms) == meta
                if same and meta.ticker not in self.meta_dirty:
                    unchanged.add(meta.ticker)
                self.meta[meta.ticker] = meta
                self.meta_dirty.add(meta.ticker)
        await self._write_meta(ctx, unannounced=unchanged)

    async def _write_meta(self, ctx: Context, unannounced: set[str] | None = None) -> None:
        dirty, self.meta_dirty = self.meta_dirty, set()
        missing = [t for t in dirty if t not in self.meta]
        if missing:
            with contextlib.suppress(ExchangeError):
                assert self.client is not None
                for meta in await self.client.get_markets(tickers=missing):
                    self.meta[meta.ticker] = meta
        pipe = ctx.redis.pipeline(transaction=False)
        now = ctx.clock.now_ms()
        for ticker in dirty:
            known = self.meta.get(ticker)
            if known is None:
                continue
            pipe.hset(
                ctx.keys.market(ticker), mapping=encode_market(replace(known, updated_ms=now))
            )
            if unannounced and ticker in unannounced:
                continue
            pipe.xadd(
                ctx.keys.stream("md"),
                encode_event("market", {"ticker": ticker, "status": known.status.value}),
                maxlen=STREAM_MAXLEN["md"],
                approximate=True,
            )
        await pipe.execute()


def main() -> int:
    return service_main(MarketdataService, needs_kalshi=True)
