"""risk: the slow, independent safety loop (every ``risk_interval_ms``, default 5 s).

Each check:

- daily PnL = total PnL now (net realized + open positions marked to the mid) minus the total at
  the start of the trading day (``pnl_day_start_hour_utc``); at or below ``-max_daily_loss`` it
  halts trading (the durable halt of DESIGN.md §3);
- total exposure: positions plus the worst case of every working order;
- positions in Redis against the exchange's: the same difference in a market at three checks in
  a row halts with its reason (one check's difference can be a fill still in flight; in a busy
  market a different fill can be in flight at every check, so a changing difference is not one
  that persists, while a lost fill leaves the same offset however many fills follow it);
- heartbeats: an executor silent for ``executor_silence_ms`` gets every order cancelled directly
  at the exchange, as does any order still resting while halted;
- ``dora:risk`` and the pnl stream carry the result.

It also listens to the control channel: on ``halt`` with no live executor it cancels at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from common.alerts import Alerter
from common.config_cache import ConfigCache
from common.connect import kalshi_client
from common.control import ControlListener
from common.domain import Order, Position, RiskState
from common.errors import SchemaError
from common.events import pnl_event
from common.halt import record_heard_halt, set_halt
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.keys import SERVICES
from common.messages import ControlCommand
from common.numbers import format_count, money_to_dollars_display
from common.redis_codec import (
    decode_book,
    decode_heartbeat,
    decode_order,
    decode_position,
    decode_risk,
    encode_risk,
)
from common.restore import wait_until_restored
from common.risk import total_pnl, unrealized_pnl, worst_case_exposure
from common.runtime import Context, service_main, stop_tasks
from common.settings import Settings
from common.streams import append

# A difference must persist this many checks: fills and settlements missed by the WebSocket are
# found by the fills process's REST backfill every 5 s.
MISMATCH_CHECKS_TO_HALT = 3


def trading_day(now_ms: int, start_hour_utc: int) -> str:
    """The trading day ``now_ms`` belongs to, when days start at ``start_hour_utc``."""
    moment = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(hours=start_hour_utc)
    return moment.strftime("%Y-%m-%d")


class RiskService:
    name = "risk"

    def __init__(self, settings: Settings, client: KalshiClient | None = None) -> None:
        self.settings = settings
        self.client = client
        self.configs: ConfigCache | None = None
        self.last_check_ms = 0.0
        self.mismatches: dict[str, tuple[int, int]] = {}  # ticker -> (theirs - ours, checks)
        self.executor_down_cancelled = False
        self.tasks: list[asyncio.Task[None]] = []
        self.counts = {"checks": 0, "emergency_cancels": 0}
        self.alerter: Alerter | None = None
        self.started_ms = 0
        self.executor_seen = False  # its heartbeat seen since this process started
        self.alerted_halt_ms = -1
        self.error_totals: dict[str, int] = {}
        self.error_window: deque[tuple[int, int]] = deque()

    async def start(self, ctx: Context) -> None:
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        if self.client is None:
            self.client = await kalshi_client(self.settings, redis=ctx.redis, clock=ctx.clock)
        self.configs = ConfigCache(ctx.keys, ctx.log)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        self.alerter = Alerter(self.settings, ctx.log, ctx.clock)
        self.started_ms = ctx.clock.now_ms()
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, lambda c: self._on_control(ctx, c))
        self.tasks.append(asyncio.create_task(listener.run(), name="control"))

    async def stop(self, ctx: Context) -> None:
        await stop_tasks(self.tasks)
        if self.client is not None:
            await self.client.aclose()

    async def _on_control(self, ctx: Context, command: ControlCommand) -> None:
        if command.cmd == "halt":
            reason = command.reason or "halt via control channel"
            await record_heard_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms())
            if not await ctx.redis.exists(ctx.keys.hb("executor")):
                await self._emergency_cancel(ctx, "halt with no live executor")
        elif command.cmd == "reload" and self.configs is not None:
            await self.configs.refresh(ctx.redis, ctx.clock.now_ms())

    async def step(self, ctx: Context) -> None:
        now = ctx.clock.monotonic_ms()
        if self.last_check_ms and now - self.last_check_ms < self.settings.risk_interval_ms:
            await asyncio.sleep(
                min(0.2, (self.settings.risk_interval_ms - (now - self.last_check_ms)) / 1000)
            )
            return
        self.last_check_ms = now
        await self.check(ctx)

    async def check(self, ctx: Context) -> RiskState:
        assert self.configs is not None
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        now_ms = ctx.clock.now_ms()
        positions = await self._positions(ctx)
        marks = await self._marks(ctx, [p.ticker for p in positions if p.position])
        orders = await self._working_orders(ctx)
        state = decode_risk(await ctx.redis.hgetall(ctx.keys.risk))
        total = total_pnl(positions, marks)
        day = trading_day(now_ms, self.settings.pnl_day_start_hour_utc)
        if state.day != day:
            if state.day:
                ctx.log.info(
                    "new_trading_day", day=day, previous=state.day, previous_pnl=state.daily_pnl
                )
            state = replace(state, day=day, day_start_pnl=total)
        state = replace(
            state,
            daily_pnl=total - state.day_start_pnl,
            realized_pnl=sum(p.realized_pnl for p in positions),
            unrealized_pnl=unrealized_pnl(positions, marks),
            fees=sum(p.fees for p in positions),
            total_exposure=worst_case_exposure(positions, orders),
            last_check_ms=now_ms,
        )
        fields = encode_risk(state)
        for owned_by_halt in ("halted", "reason", "halted_ms"):
            fields.pop(owned_by_halt)  # the halt is only ever set by set_halt, lifted by resume
        await ctx.redis.hset(ctx.keys.risk, mapping=fields)
        await ctx.redis.hsetnx(ctx.keys.risk, "halted", "0")  # always visible to redis-cli
        await append(ctx.redis, ctx.keys, "pnl", "pnl", pnl_event(state, now_ms))
        limit = self.configs.global_config.max_daily_loss
        if state.daily_pnl <= -limit and not state.halted:
            reason = (
                f"daily loss limit: PnL {money_to_dollars_display(state.daily_pnl)} "
                f"<= -{money_to_dollars_display(limit)}"
            )
            await self._halt(ctx, reason)
            state = replace(state, halted=True, reason=reason)
        await self._reconcile_positions(ctx, positions, state.halted)
        await self._watch_executor(ctx, state.halted)
        ctx.metrics.gauge_money("daily_pnl", state.daily_pnl)
        ctx.metrics.gauge_money("total_exposure", state.total_exposure)
        state = decode_risk(await ctx.redis.hgetall(ctx.keys.risk))
        await self._alerts(ctx, state)
        self.counts["checks"] += 1
        ctx.status.update(
            self.counts,
            daily_pnl=state.daily_pnl,
            exposure=state.total_exposure,
            halted=state.halted,
        )
        return state

    async def _alerts(self, ctx: Context, state: RiskState) -> None:
        """The alerts of the original plan: halted, PnL below threshold, sustained API errors,
        no fills for hours."""
        assert self.alerter is not None and self.configs is not None
        now = ctx.clock.now_ms()
        if state.halted and state.halted_ms != self.alerted_halt_ms:
            self.alerter.clear("trading_halted")  # every new halt is told
            self.alerted_halt_ms = state.halted_ms
            await self.alerter.alert(
                "trading_halted",
                f"trading halted: {state.reason}",
                f"dora stopped trading: {state.reason}. Lift with 'dora resume'.",
            )
        threshold = (
            -self.configs.global_config.max_daily_loss * self.settings.alert_pnl_fraction_pct // 100
        )
        if state.daily_pnl <= threshold:
            await self.alerter.alert(
                "pnl_below_threshold",
                f"daily PnL {money_to_dollars_display(state.daily_pnl)}",
                f"daily PnL {money_to_dollars_display(state.daily_pnl)} is below "
                f"{money_to_dollars_display(threshold)} ({self.settings.alert_pnl_fraction_pct}% of the daily loss limit)",
            )
        else:
            self.alerter.clear("pnl_below_threshold")
        errors = await self._recent_api_errors(ctx, now)
        if errors >= self.settings.alert_api_errors:
            await self.alerter.alert(
                "api_errors_sustained",
                f"{errors} API errors in 5 minutes",
                f"{errors} Kalshi API errors across dora's processes in the last 5 minutes",
            )
        hours = self.settings.alert_no_fills_hours
        if hours and not state.halted and self.configs.enabled():
            last_fill = int(await ctx.redis.hget(ctx.keys.fills_meta, "last_fill_ms") or 0)
            since = max(last_fill, self.started_ms)
            if now - since >= hours * 3_600_000:
                await self.alerter.alert(
                    "no_fills",
                    f"no fills for {hours}h",
                    f"no fill since {since} (ms) while quoting {len(self.configs.enabled())} markets",
                )

    async def _recent_api_errors(self, ctx: Context, now_ms: int) -> int:
        """API errors of every process in the last 5 minutes, from the totals in heartbeats (a
        restarted process starts counting from zero again)."""
        added = 0
        for service in SERVICES:
            raw = await ctx.redis.get(ctx.keys.hb(service))
            total = 0
            with contextlib.suppress(SchemaError, ValueError, TypeError):
                total = int(decode_heartbeat(raw).get("api_errors", 0)) if raw else 0
            if service == "risk":
                total = ctx.metrics.totals.get("api_errors", 0)
            previous = self.error_totals.get(service, 0)
            added += total - previous if total >= previous else total
            self.error_totals[service] = total
        self.error_window.append((now_ms, added))
        while self.error_window and now_ms - self.error_window[0][0] > 300_000:
            self.error_window.popleft()
        return sum(n for _, n in self.error_window)

    async def _halt(self, ctx: Context, reason: str) -> None:
        ctx.log.error("halting", reason=reason)
        await set_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms(), "risk")

    async def _positions(self, ctx: Context) -> list[Position]:
        keys = [k async for k in ctx.redis.scan_iter(match=ctx.keys.pattern("pos"), count=500)]
        if not keys:
            return []
        pipe = ctx.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return [
            decode_position(ctx.keys.ticker_of(key, "pos"), fields)
            for key, fields in zip(keys, await pipe.execute(), strict=True)
        ]

    async def _marks(self, ctx: Context, tickers: list[str]) -> dict[str, int]:
        """Mid prices; a market with a one-sided or missing book is not marked (valued at cost)."""
        if not tickers:
            return {}
        pipe = ctx.redis.pipeline(transaction=False)
        for ticker in tickers:
            pipe.hgetall(ctx.keys.book(ticker))
        marks: dict[str, int] = {}
        for ticker, fields in zip(tickers, await pipe.execute(), strict=True):
            with contextlib.suppress(SchemaError):
                mid_x2 = decode_book(ticker, fields).book.mid_x2 if fields else None
                if mid_x2 is not None:
                    marks[ticker] = mid_x2 // 2
        return marks

    async def _working_orders(self, ctx: Context) -> list[Order]:
        orders: list[Order] = []
        async for key in ctx.redis.scan_iter(match=ctx.keys.pattern("orders"), count=500):
            for value in (await ctx.redis.hgetall(key)).values():
                with contextlib.suppress(SchemaError):
                    orders.append(decode_order(value))
        return orders

    async def _reconcile_positions(
        self, ctx: Context, positions: list[Position], halted: bool
    ) -> None:
        assert self.client is not None
        try:
            theirs = {p.ticker: p.position for p in await self.client.get_positions()}
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning("exchange_positions_failed", error=str(exc))
            return
        ours = {p.ticker: p.position for p in positions}
        differing = {t for t in ours.keys() | theirs.keys() if ours.get(t, 0) != theirs.get(t, 0)}
        mismatches = {}
        for t in differing:
            offset = theirs.get(t, 0) - ours.get(t, 0)
            before, seen = self.mismatches.get(t, (0, 0))
            mismatches[t] = (offset, seen + 1 if offset == before else 1)
        self.mismatches = mismatches
        persistent = sorted(
            t for t, (_, n) in self.mismatches.items() if n >= MISMATCH_CHECKS_TO_HALT
        )
        if persistent and not halted:
            t = persistent[0]
            await self._halt(
                ctx,
                f"position mismatch in {t}: dora {format_count(ours.get(t, 0))}, "
                f"exchange {format_count(theirs.get(t, 0))}"
                + (f" (+{len(persistent) - 1} more)" if len(persistent) > 1 else ""),
            )
        elif differing:
            ctx.log.warning("position_difference", markets=sorted(differing)[:10])

    async def _watch_executor(self, ctx: Context, halted: bool) -> None:
        alive = await ctx.redis.exists(ctx.keys.hb("executor"))
        if alive:
            self.executor_seen = True
            self.executor_down_cancelled = False
            if halted:
                await self._cancel_if_resting(ctx, "orders resting while halted")
            return
        if (
            not self.executor_seen
            and ctx.clock.now_ms() - self.started_ms < self.settings.executor_silence_ms
        ):
            return  # started together: the executor may not have written its first heartbeat
        if not self.executor_down_cancelled:
            await self._emergency_cancel(ctx, "executor silent")
            self.executor_down_cancelled = True
        else:
            await self._cancel_if_resting(ctx, "executor silent")

    async def _cancel_if_resting(self, ctx: Context, why: str) -> None:
        assert self.client is not None
        try:
            resting = await self.client.get_open_orders()
        except ExchangeError as exc:
            ctx.log.warning("open_orders_failed", error=str(exc))
            return
        if resting:
            await self._emergency_cancel(ctx, f"{why}: {len(resting)} resting")

    async def _emergency_cancel(self, ctx: Context, why: str) -> None:
        assert self.client is not None
        self.counts["emergency_cancels"] += 1
        for attempt in range(5):
            try:
                await self.client.cancel_all_orders()
                ctx.log.error("emergency_cancel_all", reason=why)
                return
            except ExchangeError as exc:
                ctx.log.error(
                    "emergency_cancel_failed", reason=why, error=str(exc), attempt=attempt
                )
                await asyncio.sleep(0.2 * 2**attempt)


def main() -> int:
    return service_main(RiskService, needs_kalshi=True)
