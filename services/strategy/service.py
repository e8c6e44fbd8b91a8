"""The strategy process: a thin shell around ``common.quoting.compute_targets``.

It follows the book-update, market and fill streams, and for every market it owns that changed
it reads the latest book and position, computes targets once (a burst of deltas becomes one
computation on the newest book) and publishes them to ``dora:targets:{t}`` and the targets
stream when they differ from the last ones. Every second it recomputes every owned market, so
time-driven rules (wind-down before close, staleness) apply without a book update. Between
computations it remembers which levels of each book others added when (``common.book_memory``):
the freshest quotes are the fair value when the touch has gone stale.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from common.book_memory import NO_MEMORY, BookMemory, remember_book
from common.config_cache import ConfigCache
from common.control import ControlListener
from common.domain import MarketMeta, Targets
from common.errors import SchemaError
from common.messages import ControlCommand, decode_event, encode_event
from common.quoting import QuotingParams, compute_targets, without_own_orders
from common.redis_codec import (
    decode_book,
    decode_market,
    decode_order,
    decode_position,
    encode_targets,
)
from common.restore import wait_until_restored
from common.runtime import Context, note_lag, service_main, stop_tasks
from common.settings import Settings
from common.sharding import owns
from common.stream_read import xread
from common.streams import STREAM_MAXLEN
from common.trace import now_us

READ_BLOCK_MS = 100
READ_COUNT = 5_000
FULL_PASS_MS = 1_000
SWEEP_PER_STEP = 25
SWEEP_SLACK_MS = 500  # how late a sweep may run while book changes keep every step busy
CONFIG_REFRESH_MS = 5_000


class StrategyService:
    name = "strategy"

    def __init__(self, settings: Settings, params: QuotingParams | None = None) -> None:
        self.settings = settings
        self.params = params or QuotingParams()
        if settings.shard_count > 1:
            self.name = f"strategy-{settings.shard_index}"
        self.configs: ConfigCache | None = None
        self.meta: dict[str, MarketMeta] = {}
        self.memory: dict[str, BookMemory] = {}  # ticker -> what the others' book did lately
        self.last: dict[str, dict[str, str]] = {}
        self.trace: dict[str, tuple[int, int, int]] = {}  # ticker -> oldest unanswered frame
        self.stream_ids: dict[str, str] = {}
        self.reload = asyncio.Event()
        self.last_full_ms: float | None = None  # None: a full pass is due
        self.swept_ms: dict[str, float] = {}  # ticker -> when it was last recomputed
        self.control_task: asyncio.Task[None] | None = None

    def owned(self, ticker: str) -> bool:
        return owns(ticker, self.settings.shard_index, self.settings.shard_count)

    async def start(self, ctx: Context) -> None:
        # The restore marker means the persisted state and the config mirror are in Redis.
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        self.configs = ConfigCache(ctx.keys, ctx.log)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        # Start at the end of each stream: a full pass covers everything already there.
        self.stream_ids = {ctx.keys.stream(s): "$" for s in ("md", "fills")}
        for stream in self.stream_ids:
            last = await ctx.redis.xrevrange(stream, count=1)
            self.stream_ids[stream] = last[0][0] if last else "0-0"
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, self._on_control)
        self.control_task = asyncio.create_task(listener.run(), name="control")
        ctx.log.info(
            "strategy_ready",
            markets=len(self.configs.enabled()),
            shard=f"{self.settings.shard_index}/{self.settings.shard_count}",
        )

    async def _on_control(self, command: ControlCommand) -> None:
        if command.cmd == "reload":
            self.reload.set()

    async def step(self, ctx: Context) -> None:
        assert self.configs is not None
        now_mono = ctx.clock.monotonic_ms()
        if self.reload.is_set() or ctx.clock.now_ms() - self.configs.loaded_ms > CONFIG_REFRESH_MS:
            self.reload.clear()
            if await self.configs.refresh(ctx.redis, ctx.clock.now_ms()):
                self.last_full_ms = None  # config changed: recompute everything now
        touched, meta_touched = await self._read_events(ctx)
        if self.last_full_ms is None:
            self.swept_ms.clear()  # config changed: every market is due now
            self.last_full_ms = now_mono
        # Every market is recomputed at least once per FULL_PASS_MS (time-driven rules such as
        # the wind-down apply without book updates), a few per step so that a sweep of hundreds
        # of markets never holds up the book updates waiting behind it.
        owned = {t for t in self.configs.markets if self.owned(t)} | {
            t for t in self.last if self.owned(t)
        }
        due = sorted(
            (self.swept_ms.get(t, -1.0), t)
            for t in owned - touched
            if t not in self.swept_ms or now_mono - self.swept_ms[t] >= FULL_PASS_MS
        )
        # A step that has book changes to answer sweeps only markets already overdue (the sweep
        # would delay the answers); a quiet one sweeps whatever is due.
        if touched:
            due = [(at, t) for at, t in due if now_mono - at >= FULL_PASS_MS + SWEEP_SLACK_MS]
        sweep = {t for _, t in due[:SWEEP_PER_STEP]}
        for ticker in touched | sweep:
            self.swept_ms[ticker] = now_mono
        # What the book changed goes out first; the sweep's recomputations after it.
        if touched:
            await self._compute(ctx, sorted(touched), meta_touched)
        if sweep:
            await self._compute(ctx, sorted(sweep), sweep)
        ctx.status["markets"] = len(self.last)

    async def _read_events(self, ctx: Context) -> tuple[set[str], set[str]]:
        touched: set[str] = set()
        meta_touched: set[str] = set()
        response = await xread(
            ctx.redis,
            self.stream_ids,
            count=READ_COUNT,
            block=READ_BLOCK_MS,
            cluster=ctx.keys.cluster,
        )
        read_us = now_us()
        for stream, entries in response or []:
            note_lag(ctx, "md_lag_ms" if stream.endswith(":md") else "fills_lag_ms", entries[0][0])
            for entry_id, fields in entries:
                self.stream_ids[stream] = entry_id
                try:
                    kind, payload = decode_event(fields)
                except SchemaError as exc:
                    ctx.log.warning("bad_stream_entry", stream=stream, reason=str(exc))
                    continue
                ticker = payload.get("ticker")
                if not isinstance(ticker, str) or not self.owned(ticker):
                    continue
                touched.add(ticker)
                if kind == "market":
                    meta_touched.add(ticker)
                elif kind == "book" and payload.get("pub_us"):
                    # the oldest frame not yet answered: where tick-to-order latency starts
                    self.trace.setdefault(
                        ticker, (int(payload["recv_us"]), int(payload["pub_us"]), read_us)
                    )
        return touched, meta_touched

    async def _compute(self, ctx: Context, tickers: list[str], meta_touched: set[str]) -> None:
        assert self.configs is not None
        keys = ctx.keys
        pipe = ctx.redis.pipeline(transaction=False)
        for ticker in tickers:
            pipe.hgetall(keys.book(ticker))
            pipe.hgetall(keys.pos(ticker))
            pipe.hgetall(keys.orders(ticker))
            if ticker in meta_touched or ticker not in self.meta:
                pipe.hgetall(keys.market(ticker))
            else:  # a keyed placeholder (a cluster pipeline routes only keyed commands)
                pipe.exists(keys.market(ticker))
        results = await pipe.execute()
        now_ms = ctx.clock.now_ms()
        out = ctx.redis.pipeline(transaction=False)
        published = 0
        for i, ticker in enumerate(tickers):
            book_fields, pos_fields, order_fields, market_fields = results[4 * i : 4 * i + 4]
            if isinstance(market_fields, dict) and market_fields:
                try:
                    self.meta[ticker] = decode_market(ticker, market_fields)
                except SchemaError as exc:
                    ctx.log.warning("bad_market_meta", market=ticker, reason=str(exc))
                    self.meta.pop(ticker, None)
            targets = self._targets(ctx, ticker, book_fields, pos_fields, order_fields, now_ms)
            fields = encode_targets(targets)
            comparable = {k: v for k, v in fields.items() if k not in ("computed_ms", "book_ms")}
            trace = self.trace.pop(ticker, None)
            if self.last.get(ticker) == comparable:
                continue
            self.last[ticker] = comparable
            out.hset(keys.targets(ticker), mapping=fields)
            event: dict[str, Any] = {"ticker": ticker, **fields}
            if trace is not None:
                event["trace"] = [*trace, now_us()]
            out.xadd(
                keys.stream("targets", ticker),
                encode_event("targets", event),
                maxlen=STREAM_MAXLEN["targets"],
                approximate=True,
            )
            published += 1
        if published:
            await out.execute()

    def _targets(
        self,
        ctx: Context,
        ticker: str,
        book_fields: dict[str, Any],
        pos_fields: dict[str, Any],
        order_fields: dict[str, Any],
        now_ms: int,
    ) -> Targets:
        assert self.configs is not None
        config = self.configs.market(ticker)
        if not book_fields:
            return Targets(ticker, None, None, "no_book", now_ms)
        try:
            state = decode_book(ticker, book_fields)
        except SchemaError as exc:
            ctx.log.warning("bad_book", market=ticker, reason=str(exc))
            return Targets(ticker, None, None, "bad_book", now_ms)
        position = decode_position(ticker, pos_fields)
        own_orders = []  # quote against the rest of the market, not against ourselves
        for value in order_fields.values():
            with contextlib.suppress(SchemaError):
                own_orders.append(decode_order(value))
        others = without_own_orders(state.book, own_orders)
        memory = remember_book(self.memory.get(ticker, NO_MEMORY), others, now_ms)
        self.memory[ticker] = memory
        return compute_targets(
            others,  # our own orders are already out of it
            state.stale,
            position,
            config,
            self.meta.get(ticker),
            now_ms,
            self.params,
            book_ms=state.received_ms,
            memory=memory,
        )

    async def stop(self, ctx: Context) -> None:
        if self.control_task is not None:
            await stop_tasks([self.control_task])


def main() -> int:
    return service_main(StrategyService)
