"""The strategy process: a thin shell around ``common.quoting.compute_targets``.

It follows the book-update, market and fill streams, and for every market it owns that changed
it reads the latest book and position, computes targets once (a burst of deltas becomes one
computation on the newest book) and publishes them to ``dora:targets:{t}`` and the targets
stream when they differ from the last ones. Every second it recomputes every owned market, so
time-driven rules (wind-down before close, staleness) apply without a book update. Between
computations it remembers which levels of each book others added when (``common.book_memory``):
the freshest quotes are the fair value when the touch has gone stale. It scores its own fills
(``fill`` entries of the fills stream) against the others' mid 10 s later
(``common.markouts``): their markouts are the market's measured toxicity. An external fair value
(``dora:fv:{ticker}``, from the trader's own model) is read with the book and used while it is
at most ``DORA_FV_STALE_MS`` old.

The streams are read by ``reader.StreamReader``: one read always outstanding, each bringing
the state of the markets it names. The targets go out without the step waiting for the answer
(``Publisher``: one publish at a time, in order), so the next book change is computed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from common.book_memory import NO_MEMORY, BookMemory, remember_book
from common.config_cache import ConfigCache
from common.control import ControlListener
from common.direct_redis import run_pipeline
from common.domain import MarketMeta, Side, Targets
from common.errors import SchemaError
from common.markouts import NO_MARKOUTS, Markouts, note_fill, score_due
from common.messages import ControlCommand, decode_event, encode_event
from common.meta_cache import MetaCache
from common.quoting import QuotingParams, compute_targets, without_own_orders
from common.recent_mids import NO_RECENT, Recent, remember_mid
from common.redis_codec import (
    decode_book,
    decode_fv,
    decode_order,
    decode_position,
    encode_targets,
)
from common.restore import wait_until_restored
from common.runtime import Context, note_lag, service_main, stop_tasks
from common.settings import Settings
from common.sharding import owns, strategy_name
from common.streams import STREAM_MAXLEN
from common.trace import now_us
from services.strategy.publisher import Publisher
from services.strategy.reader import (
    UNREADABLE,
    UNREADABLE_REASONS,
    BadValueLog,
    Batch,
    MarketState,
    StreamReader,
    state_of,
)

READ_BLOCK_MS = 100
READ_COUNT = 5_000
FULL_PASS_MS = 1_000
SWEEP_PER_STEP = 25
SWEEP_SLACK_MS = 500  # how late a sweep may run while book changes keep every step busy
SLICE = 5  # markets a sweep computes and publishes together before it looks for book changes
CONFIG_REFRESH_MS = 5_000


class StrategyService:
    name = "strategy"

    def __init__(self, settings: Settings, params: QuotingParams | None = None) -> None:
        self.settings = settings
        # the staleness of an external fair value is a setting (DORA_FV_STALE_MS)
        self.params = replace(params or QuotingParams(), fv_stale_ms=settings.fv_stale_ms)
        self.name = strategy_name(settings.shard_index, settings.shard_count)
        self.configs: ConfigCache | None = None
        self.meta: dict[str, MarketMeta] = {}
        self.decoded = MetaCache()  # the sweep reads every market's hash each second
        self.memory: dict[str, BookMemory] = {}  # ticker -> what the others' book did lately
        self.markouts: dict[str, Markouts] = {}  # ticker -> our fills, scored 10 s later
        self.recent: dict[str, Recent] = {}  # ticker -> the others' mid over the last minute
        self.last: dict[str, dict[str, str]] = {}
        self.trace: dict[str, tuple[int, int, int]] = {}  # ticker -> oldest unanswered frame
        self.stream_ids: dict[str, str] = {}
        self.reload = asyncio.Event()
        self.last_full_ms: float | None = None  # None: a full pass is due
        self.swept_ms: dict[str, float] = {}  # ticker -> when it was last recomputed
        self.control_task: asyncio.Task[None] | None = None
        self.reader: StreamReader | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.publisher: Publisher | None = None
        self.prefetched: dict[str, MarketState] = {}  # what this step's reads brought
        self.bad_values: BadValueLog | None = None

    def owned(self, ticker: str) -> bool:
        return owns(ticker, self.settings.shard_index, self.settings.shard_count)

    async def start(self, ctx: Context) -> None:
        # The restore marker means the persisted state and the config mirror are in Redis.
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        self.configs = ConfigCache(ctx.keys, ctx.log)
        self.bad_values = BadValueLog(ctx.log)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        # Start at the end of each stream: a full pass covers everything already there.
        self.stream_ids = {ctx.keys.stream(s): "$" for s in ("md", "fills")}
        for stream in self.stream_ids:
            last = await ctx.redis.xrevrange(stream, count=1)
            self.stream_ids[stream] = last[0][0] if last else "0-0"
        self.publisher = Publisher(ctx, self.last)
        await self.publisher.connect()
        # the state comes with each read (reader.py) on a single strategy and one Redis; shards
        # and a cluster (the script reads keys it does not declare) read it apart
        self.reader = StreamReader(
            ctx,
            self.stream_ids,
            fused=self.settings.shard_count == 1 and not ctx.keys.cluster,
            count=READ_COUNT,
            block_ms=READ_BLOCK_MS,
        )
        self.reader_task = asyncio.create_task(self.reader.run(), name="stream_reader")
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
        try:
            touched, meta_touched = await self._read_events(ctx)
            # What the book changed goes out first; the sweep's recomputations after it.
            if touched:
                await self._compute(ctx, sorted(touched), meta_touched, self.prefetched)
        finally:
            assert self.reader is not None
            self.reader.answer()  # the next read goes out behind the publish
        await asyncio.sleep(0)  # ... and before the sweep below computes anything
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
        sweep = [t for _, t in due[:SWEEP_PER_STEP]]
        for ticker in touched:
            self.swept_ms[ticker] = now_mono
        for start in range(0, len(sweep), SLICE):
            if start and self.reader.batches:
                # A book change was read meanwhile: it is answered first (the next step), the
                # rest of the sweep stays due (a slice a step at least: never starved). A whole
                # sweep at once held the loop for 3-8 ms.
                break
            part = sweep[start : start + SLICE]
            for ticker in part:
                self.swept_ms[ticker] = now_mono
            await self._compute(ctx, part, set(part), {})
        ctx.status["markets"] = len(self.last)

    async def _read_events(self, ctx: Context) -> tuple[set[str], set[str]]:
        touched: set[str] = set()
        meta_touched: set[str] = set()
        assert self.reader is not None
        self.prefetched = {}
        for batch in await self.reader.take(READ_BLOCK_MS / 1000):
            self.prefetched.update(batch.states)  # a later read's state is the fresher
            self._note_entries(ctx, batch, touched, meta_touched)
        return touched, meta_touched

    def _note_entries(
        self, ctx: Context, batch: Batch, touched: set[str], meta_touched: set[str]
    ) -> None:
        read_us = batch.read_us
        for stream, entries in batch.response:
            note_lag(ctx, "md_lag_ms" if stream.endswith(":md") else "fills_lag_ms", entries[0][0])
            for _, fields in entries:
                try:
                    kind, payload = decode_event(fields)
                except SchemaError as exc:
                    ctx.log.warning("bad_stream_entry", stream=stream, reason=str(exc))
                    continue
                ticker = payload.get("ticker")
                if not isinstance(ticker, str) or not self.owned(ticker):
                    continue
                touched.add(ticker)
                if kind == "fill":
                    self._note_fill(ticker, payload)
                elif kind == "market":
                    meta_touched.add(ticker)
                elif kind == "book" and payload.get("pub_us"):
                    # the oldest frame not yet answered: where tick-to-order latency starts
                    self.trace.setdefault(
                        ticker, (int(payload["recv_us"]), int(payload["pub_us"]), read_us)
                    )

    def _note_fill(self, ticker: str, payload: dict[str, Any]) -> None:
        """One of our fills, for the markouts: the others' mid as last seen is its mid before."""
        try:
            signed = Side(payload["side"]).sign * int(payload["count"])
            ts_ms = int(payload["ts_ms"])
            price = int(payload["price"])
        except (KeyError, TypeError, ValueError):
            return
        mids = self.memory.get(ticker, NO_MEMORY).mids_x2
        before = self.markouts.get(ticker, NO_MARKOUTS)
        last = mids[-1][1] if mids else None
        self.markouts[ticker] = note_fill(before, ts_ms, signed, last, price)

    async def _compute(
        self,
        ctx: Context,
        tickers: list[str],
        meta_touched: set[str],
        known: dict[str, MarketState],
    ) -> None:
        """Compute and publish the targets of ``tickers``, from the state ``known`` (read with
        the streams) where it has what is needed, else read now."""
        assert self.configs is not None and self.publisher is not None
        keys = ctx.keys
        states: dict[str, MarketState] = {}
        for ticker in tickers:
            state = known.get(ticker)
            if state is not None and (
                state.market is not None or (ticker not in meta_touched and ticker in self.meta)
            ):
                states[ticker] = state
        missing = [t for t in tickers if t not in states]

        def reads(pipe: Any) -> None:
            for ticker in missing:
                pipe.hgetall(keys.book(ticker))
                pipe.hgetall(keys.pos(ticker))
                pipe.hgetall(keys.orders(ticker))
                pipe.hgetall(keys.fv(ticker))
                if ticker in meta_touched or ticker not in self.meta:
                    pipe.hgetall(keys.market(ticker))
                else:  # a keyed placeholder (a cluster pipeline routes only keyed commands)
                    pipe.exists(keys.market(ticker))

        if missing:
            pipe = ctx.redis.pipeline(transaction=False)
            reads(pipe)
            # on the publisher's own connection where there is one (hiredis: a third of
            # redis-py's cost to parse a sweep's reads). WRONGTYPE: that market's alone
            results = await run_pipeline(pipe, self.publisher.direct, raise_on_error=False)
            for i, ticker in enumerate(missing):
                book, pos, orders, fv, market = results[5 * i : 5 * i + 5]
                states[ticker] = state_of(book, pos, orders, market, fv)
        now_ms = ctx.clock.now_ms()
        out = ctx.redis.pipeline(transaction=False)
        published: list[str] = []
        for ticker in tickers:
            state = states[ticker]
            book_fields, pos_fields, order_fields = state.book, state.pos, state.orders
            fv_fields = state.fv
            market_fields = state.market
            said = self.bad_values
            assert said is not None
            for what, why in state.bad.items():  # keys of the wrong type (state_of)
                said.warn(UNREADABLE[what], ticker, why)
            if "market" in state.bad:  # its facts are not known: it is not quoted
                self.meta.pop(ticker, None)
            if market_fields:
                try:
                    self.meta[ticker] = self.decoded.decode(ticker, market_fields)
                except SchemaError as exc:
                    said.warn("bad_market_meta", ticker, str(exc))
                    self.meta.pop(ticker, None)
            targets = self._targets(
                ctx, ticker, book_fields, pos_fields, order_fields, fv_fields, now_ms, state.bad
            )
            if not state.bad and targets.reason not in UNREADABLE_REASONS:
                said.read_whole(ticker)
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
            published.append(ticker)
        if published:
            self.publisher.send(out, published)
            await asyncio.sleep(0)  # the publish is written before anything else this step reads

    def _targets(
        self,
        ctx: Context,
        ticker: str,
        book_fields: dict[str, Any],
        pos_fields: dict[str, Any],
        order_fields: dict[str, Any],
        fv_fields: dict[str, Any],
        now_ms: int,
        bad: Mapping[str, str],
    ) -> Targets:
        """A market whose book, position or own orders do not read is not quoted: the reason
        (``bad_book``, ``bad_position``, ``bad_orders``) is in its targets, the detail logged."""
        assert self.configs is not None
        config = self.configs.market(ticker)
        for what in ("book", "pos", "orders"):
            if what in bad:
                return Targets(ticker, None, None, UNREADABLE[what], now_ms)
        if not book_fields:
            return Targets(ticker, None, None, "no_book", now_ms)
        try:
            state = decode_book(ticker, book_fields)
        except SchemaError as exc:
            assert self.bad_values is not None
            self.bad_values.warn("bad_book", ticker, str(exc))
            return Targets(ticker, None, None, "bad_book", now_ms)
        try:
            position = decode_position(ticker, pos_fields)
        except SchemaError as exc:
            assert self.bad_values is not None
            self.bad_values.warn("bad_position", ticker, str(exc))
            return Targets(ticker, None, None, "bad_position", now_ms)
        own_orders = []  # quote against the rest of the market, not against ourselves
        for value in order_fields.values():
            with contextlib.suppress(SchemaError):
                own_orders.append(decode_order(value))
        others = without_own_orders(state.book, own_orders)
        memory = remember_book(self.memory.get(ticker, NO_MEMORY), others, now_ms)
        self.memory[ticker] = memory
        markouts = score_due(self.markouts.get(ticker, NO_MARKOUTS), now_ms, others.mid_x2)
        self.markouts[ticker] = markouts
        recent = remember_mid(self.recent.get(ticker, NO_RECENT), now_ms, others.mid_x2)
        self.recent[ticker] = recent
        try:
            external = decode_fv(fv_fields)
        except SchemaError as exc:
            ctx.log.warning("bad_fair_value", market=ticker, reason=str(exc))
            external = None
        return compute_targets(
            others,  # our own orders are already out of it
            state.stale,
            position,
            config,
            self.meta.get(ticker),
            now_ms,
            self.params,
            book_ms=state.received_ms,
            recent=recent,
            memory=memory,
            external=external,
            markouts=markouts,
        )

    async def stop(self, ctx: Context) -> None:
        await stop_tasks([t for t in (self.control_task, self.reader_task) if t is not None])
        if self.publisher is not None:
            await self.publisher.drain()  # what the last step computed
        if self.reader is not None:
            await self.reader.aclose()


def main() -> int:
    return service_main(StrategyService)
