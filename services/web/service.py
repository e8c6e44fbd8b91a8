"""web: the operator's dashboard, a seventh process (DESIGN.md §1).

It reads what the other processes write (Redis; history from DynamoDB, read-only) and serves it
to browsers from ``DORA_WEB_HOST:DORA_WEB_PORT`` (127.0.0.1:8765 by default). Each tick reads
every market in one pipeline and pushes what changed to every open page; with a page open it
ticks every ``ACTIVE_TICK_MS``, with none every ``IDLE_TICK_MS`` (the history keeps growing, the
box is spared). The controls write only what ``dora`` commands write (``services/web/controls``).

Same lifecycle as the others (``common/runtime.py``): heartbeat ``dora:hb:web``, JSON logs,
SIGTERM drains (open pages are told to reconnect, the listener closes), a port that is taken
is retried with backoff rather than ending the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web

from common.clock import utc_date
from common.dynamo.history import daily_pnl_snapshots, fills_of_day
from common.errors import SchemaError
from common.messages import decode_event
from common.runtime import Context, Deferred, service_main, stop_tasks
from common.settings import Settings
from services.web.app import make_app
from services.web.auth import Auth
from services.web.hub import Deltas
from services.web.snapshot import ViewBuilder, read_raw
from services.web.state import WebState

ACTIVE_TICK_MS = 500
IDLE_TICK_MS = 5_000
SLOW_KEYS_EVERY_MS = 2_000  # markets' config and exchange facts are re-read this often
DAY_BACKFILL_ENTRIES = 20_000  # a day of the risk process's 5 s snapshots is ~17,300
PNL_READ_COUNT = 1_000
PAST_DAYS = 7


async def build(ctx: Context) -> WebService:
    """The service with its state and its (not yet listening) HTTP server."""
    state = WebState(
        settings=ctx.settings,
        redis=ctx.redis,
        keys=ctx.keys,
        clock=ctx.clock,
        log=ctx.log,
        auth=Auth(ctx.settings.web_token),
    )
    runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    return WebService(ctx.settings, state, runner)


class WebService:
    name = "web"

    def __init__(self, settings: Settings, state: WebState, runner: web.AppRunner) -> None:
        self.settings = settings
        self.state = state
        self.runner = runner
        self.deltas = Deltas()
        self.builder = ViewBuilder()
        self.slow_read_ms = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.full_cache: tuple[int, bytes] | None = None

    async def start(self, ctx: Context) -> None:
        state = self.state
        if not state.auth.enabled:
            ctx.log.warning("read_only", reason="DORA_WEB_TOKEN is not set: no control can act")
        if state.day_pnl.last_id == "0-0":  # not read yet (a retried start has read it)
            await self._backfill_day(ctx, state)
        await self.tick(ctx, state)
        site = web.TCPSite(self.runner, self.settings.web_host, self.settings.web_port)
        await site.start()  # a taken port raises: start is retried with backoff
        if not self.tasks:
            self.tasks.append(asyncio.create_task(self._stored_history(ctx, state), name="history"))
        ctx.log.info(
            "listening",
            url=f"http://{self.settings.web_host}:{self.settings.web_port}/",
            controls=state.auth.enabled,
        )

    async def step(self, ctx: Context) -> None:
        state = self.state
        started = ctx.clock.monotonic_ms()
        state.hub.wake.clear()
        await self.tick(ctx, state)
        interval_ms = ACTIVE_TICK_MS if state.hub.clients else IDLE_TICK_MS
        wait_s = max(0.0, interval_ms - (ctx.clock.monotonic_ms() - started)) / 1000
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(ctx.stopping, state.hub.wake), wait_s)

    async def stop(self, ctx: Context) -> None:
        self.state.hub.close()
        await stop_tasks(self.tasks)
        await self.runner.cleanup()

    # ---- one tick ------------------------------------------------------------------------------

    async def tick(self, ctx: Context, state: WebState) -> None:
        started = time.perf_counter()
        now_ms = ctx.clock.now_ms()
        slow = None
        if now_ms - self.slow_read_ms < SLOW_KEYS_EVERY_MS and not state.reread_config:
            slow = self.builder.slow
        else:
            self.slow_read_ms, state.reread_config = now_ms, False
        view = self.builder.build(await read_raw(ctx.redis, ctx.keys, now_ms, slow))
        points = await self._follow_pnl(ctx, state)
        state.markets.sample(now_ms, view["markets"])
        state.view = view
        extra = {
            "pnl_day": state.day_pnl.day,
            "pnl_points": points,
            "past_days": state.past_days,
            "history_note": state.history_note,
        }
        delta, full = self.deltas.update(view, extra, state.full)
        seq = self.deltas.seq

        def full_message() -> bytes:
            if self.full_cache is None or self.full_cache[0] != seq:
                self.full_cache = (seq, full())
            return self.full_cache[1]

        state.full_message = full_message
        state.hub.publish(delta)
        ctx.status.update(
            clients=state.hub.clients,
            markets=len(view["markets"]),
            tick_ms=round((time.perf_counter() - started) * 1000, 1),
            ticks=self.deltas.seq,
            delta_bytes_total=ctx.status.get("delta_bytes_total", 0) + len(delta),
        )

    async def _follow_pnl(self, ctx: Context, state: WebState) -> list[dict[str, Any]]:
        """The risk process's new ``pnl`` events since the last tick, as chart points."""
        entries = await ctx.redis.xrange(
            ctx.keys.stream("pnl"), min=f"({state.day_pnl.last_id}", count=PNL_READ_COUNT
        )
        return self._add_pnl(state, entries)

    def _add_pnl(self, state: WebState, entries: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        points = []
        for entry_id, fields in entries:
            state.day_pnl.last_id = entry_id
            with contextlib.suppress(SchemaError):
                kind, payload = decode_event(fields)
                if kind == "pnl" and (point := state.day_pnl.add(entry_id, payload)) is not None:
                    points.append(point)
        return points

    async def _backfill_day(self, ctx: Context, state: WebState) -> None:
        """The day's curve so far, from the pnl stream (newest entries, oldest first)."""
        entries = await ctx.redis.xrevrange(ctx.keys.stream("pnl"), count=DAY_BACKFILL_ENTRIES)
        self._add_pnl(state, list(reversed(entries)))

    async def _stored_history(self, ctx: Context, state: WebState) -> None:
        """Per-market history of today's fills and the past days' PnL, from DynamoDB. Missing
        tables or an unreachable DynamoDB leave the dashboard without them, and say so."""
        today = utc_date(ctx.clock.now_ms())
        try:
            db = await state.dynamo()
            fills = await asyncio.to_thread(fills_of_day, db.client, db.names, today)
            state.markets.seed_fills(
                (f.ts_ms, f.ticker, f.position_after, f.realized_pnl_after) for f in fills
            )
            day = state.day_pnl.day or today
            state.past_days = await asyncio.to_thread(daily_pnl_snapshots, db.state, day, PAST_DAYS)
            state.history_note = f"{len(fills)} fills of {today} (UTC) from DynamoDB"
        except Exception as exc:
            ctx.log.warning("stored_history_unavailable", error=f"{type(exc).__name__}: {exc}")
            state.history_note = f"no DynamoDB history: {type(exc).__name__}"


async def _first(*events: asyncio.Event) -> None:
    """Return when any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def main() -> int:
    return service_main(lambda settings: Deferred("web", build), cold=True)
