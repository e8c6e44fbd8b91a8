"""risk: the independent safety loop, a check every ``risk_interval_ms`` (default 1 s).

Each check:

- daily PnL = total PnL now (net realized + open positions marked on the others' book,
  ``common.marks``) minus the total the trading day started from (``common.trading_day``:
  midnight of ``DORA_TRADING_DAY_TZ``; a roll noticed late starts the new day from the last total
  recorded, so nothing lost meanwhile is forgiven, and the day that ended is sent as a
  ``day_closed`` snapshot); at or below ``-max_daily_loss`` it halts trading (the durable halt of
  DESIGN.md §3) within that check;
- total exposure: positions plus the worst case of every working order;
- ``dora:risk`` (every check), ``dora:marks`` and the pnl stream carry the result.

A check fails closed: an item that does not decode (a corrupt ``dora:pos:*`` hash, say) is
skipped and reported, the rest is checked, and the state says the check failed
(``check_failures``, ``check_error``): the executor adds no risk until a check passes, and after
a few failures in a row an alert goes out. A check that cannot run at all leaves ``dora:risk``
unchanged, and the executor stops adding risk once it is ``risk_stale_ms`` old.
A ``dora:risk`` of the wrong type is replaced by a halt, and one deleted (without its trading day)
is written again from the risk process's last record, the day and the halt kept, and a halt
whose flag was edited to 0 by hand (no resume recorded) gets ``halted 1`` back, with an alert
(``services.risk.risk_key``).

Beside the checks, never holding them up: ``services.risk.watch`` (positions against the
exchange, a silent executor's orders cancelled). It also listens to the control channel: on
``halt`` with no live executor it cancels at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from redis.exceptions import ResponseError

from common.alerts import Alerter
from common.config_cache import ConfigCache
from common.connect import kalshi_client
from common.control import ControlListener
from common.domain import RiskState
from common.errors import SchemaError
from common.events import day_closed_event, pnl_event
from common.halt import record_heard_halt
from common.kalshi.client import KalshiClient
from common.log import get_logger
from common.marks import Mark, SeenBook, is_trading, mark_position
from common.messages import ControlCommand
from common.numbers import money_to_dollars_display
from common.redis_codec import decode_risk, encode_mark, encode_risk
from common.redis_conn import keys_for
from common.restore import is_restored, wait_until_restored
from common.risk import total_pnl, unrealized_pnl, worst_case_exposure
from common.risk_deleted import HALT_FIELDS  # set only by set_halt, lifted only by resume
from common.runtime import Context, service_main, stop_tasks
from common.settings import Settings
from common.sharding import executor_names
from common.streams import queue_append
from common.trading_day import roll_day, trading_day
from services.risk.alerts import RiskAlerts
from services.risk.limits import ExchangeLimits
from services.risk.reading import Snapshot, read_marks, read_snapshot
from services.risk.risk_key import is_wrong_type, put_halt_back, read_risk, replace_risk_key
from services.risk.watch import ExchangeWatch, halt

PNL_EVENT_EVERY_MS = 5_000  # the pnl stream (and so DynamoDB) gets a snapshot this often
WATCH_STUCK_MS = 30_000  # an exchange watch round this long: the dead-man is not being run


class RiskService:
    name = "risk"

    def __init__(self, settings: Settings, client: KalshiClient | None = None) -> None:
        self.settings = settings
        self.client = client
        self.configs = ConfigCache(keys_for(settings), get_logger("risk"))
        self.alerter: Alerter | None = None
        self.alerts: RiskAlerts | None = None
        self.watch: ExchangeWatch | None = None
        self.watching: asyncio.Task[None] | None = None  # the exchange watch's round, if running
        self.watch_problems: list[str] = []  # what the last finished round found
        self.watch_started_ms = 0.0  # monotonic: when the running round began
        self.seen: dict[str, SeenBook] = {}  # each market's book when last read fresh
        self.marked: set[str] = set()  # the markets in dora:marks
        self.failures = 0  # checks in a row that failed
        self.last_check_ms = 0.0
        self.last_event_ms = 0
        self.day_restore: int | None = None  # the restore under which it last wrote the day
        self.tasks: list[asyncio.Task[None]] = []
        self.counts = {"checks": 0, "failed_checks": 0, "emergency_cancels": 0}

    async def start(self, ctx: Context) -> None:
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        if self.client is None:
            self.client = await kalshi_client(self.settings, redis=ctx.redis, clock=ctx.clock)
        await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        started_ms = ctx.clock.now_ms()
        self.alerter = Alerter(self.settings, ctx.log, ctx.clock)
        self.alerts = RiskAlerts(self.alerter, self.configs, started_ms)
        self.watch = ExchangeWatch(
            self.client, started_ms, ExchangeLimits(self.client, self.configs)
        )
        stored = await read_marks(ctx.redis, ctx.keys)
        self.seen = {t: mark.seen for t, mark in stored.items()}
        self.marked = set(stored)
        listener = ControlListener(ctx.redis, ctx.keys, ctx.log, lambda c: self._on_control(ctx, c))
        self.tasks.append(asyncio.create_task(listener.run(), name="control"))

    async def stop(self, ctx: Context) -> None:
        await stop_tasks([*self.tasks, *([self.watching] if self.watching else [])])
        if self.client is not None:
            await self.client.aclose()

    async def _on_control(self, ctx: Context, command: ControlCommand) -> None:
        if command.cmd == "halt":
            reason = command.reason or "halt via control channel"
            try:
                await record_heard_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms())
            except ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                await replace_risk_key(ctx, exc)  # halted all the same
            executors = [ctx.keys.hb(n) for n in executor_names(self.settings.shard_count)]
            if self.watch is not None and not await ctx.redis.exists(*executors):
                await self.watch.emergency_cancel(ctx, "halt with no live executor")
        elif command.cmd == "reload":
            await self.configs.refresh(ctx.redis, ctx.clock.now_ms())

    async def step(self, ctx: Context) -> None:
        now = ctx.clock.monotonic_ms()
        interval = self.settings.risk_interval_ms
        if self.last_check_ms and now - self.last_check_ms < interval:
            await asyncio.sleep(min(0.2, (interval - (now - self.last_check_ms)) / 1000))
            return
        self.last_check_ms = now
        if not await is_restored(ctx.redis, ctx.keys):
            # Redis lost its data: PnL from its empty hashes would be wrong, and a risk state
            # written now would shadow the one the persister restores (dora:risk ages meanwhile:
            # the executor adds nothing)
            ctx.log.warning("redis_data_lost_waiting_for_restore")
            return
        try:
            await self.check(ctx)
        except Exception as exc:  # nothing written: dora:risk ages and the executor stops adding
            self.failures += 1
            self.counts["failed_checks"] += 1
            ctx.log.exception("risk_check_failed", failures=self.failures)
            if self.alerts is not None:
                await self.alerts.failing(self.failures, f"{type(exc).__name__}: {exc}")

    async def check(self, ctx: Context) -> RiskState:
        snap = await read_snapshot(ctx.redis, ctx.keys)
        problems = list(snap.problems)
        try:
            await self.configs.refresh(ctx.redis, ctx.clock.now_ms())
        except Exception as exc:
            problems.append(f"config not refreshed: {type(exc).__name__}: {exc}")
        now_ms = ctx.clock.now_ms()
        marks = self._marks(ctx, snap, now_ms, problems)
        prices = {t: m.price for t, m in marks.items()}
        total = total_pnl(snap.positions, prices)
        restore = None
        try:
            # a wrong type: replaced, halted; deleted: written again from the record
            fields, restore = await read_risk(ctx, self.day_restore)
            previous = decode_risk(fields)
            if await put_halt_back(ctx, fields, previous) and self.alerts is not None:
                await self.alerts.halt_put_back(previous)
        except SchemaError as exc:
            problems.append(f"{ctx.keys.risk} does not decode: {exc}")
            previous = RiskState()
        roll = roll_day(previous, trading_day(now_ms, self.settings.trading_day_tz), total)
        problems += self.watch_problems
        running_ms = ctx.clock.monotonic_ms() - self.watch_started_ms
        if self.watching is not None and not self.watching.done() and running_ms > WATCH_STUCK_MS:
            problems.append(f"exchange watch stuck for {running_ms / 1000:.0f}s")
        self.failures = self.failures + 1 if problems else 0
        state = replace(
            roll.state,
            daily_pnl=total - roll.state.day_start_pnl,
            realized_pnl=sum(p.realized_pnl for p in snap.positions),
            unrealized_pnl=unrealized_pnl(snap.positions, prices),
            fees=sum(p.fees for p in snap.positions),
            total_exposure=worst_case_exposure(snap.positions, snap.all_orders),
            last_check_ms=now_ms,
            check_failures=self.failures,
            check_error="; ".join(problems)[:500],
        )
        await self._write(ctx, state, roll.closed, marks)
        self.day_restore = restore
        if problems:
            self.counts["failed_checks"] += 1
            ctx.log.warning("risk_check_failed", failures=self.failures, problems=problems[:5])
        state = await self._halt_on_loss(ctx, state)
        self._start_watch(ctx, snap, state.halted)
        ctx.metrics.gauge_money("daily_pnl", state.daily_pnl)
        ctx.metrics.gauge_money("total_exposure", state.total_exposure)
        assert self.alerts is not None
        await self.alerts.failing(self.failures, state.check_error)
        await self.alerts.check(ctx, state)
        self.counts["checks"] += 1
        if self.watch is not None:
            self.counts["emergency_cancels"] = self.watch.emergency_cancels
        ctx.status.update(
            self.counts,
            daily_pnl=state.daily_pnl,
            exposure=state.total_exposure,
            halted=state.halted,
            check_failures=self.failures,
        )
        return state

    def _marks(
        self, ctx: Context, snap: Snapshot, now_ms: int, problems: list[str]
    ) -> dict[str, Mark]:
        marks: dict[str, Mark] = {}
        for position in snap.positions:
            ticker = position.ticker
            if not position.position:
                continue
            status, close_ms = snap.closes.get(ticker, (None, 0))
            mark = mark_position(
                position.position,
                snap.books.get(ticker),
                snap.orders.get(ticker, ()),
                is_trading(status, close_ms, now_ms),
                self.seen.get(ticker),
                now_ms,
            )
            if mark is None:
                problems.append(f"no mark for {ticker}: no fresh book seen (valued at cost)")
                continue
            if mark.source in ("book", "liquidation"):
                self.seen[ticker] = mark.seen
            marks[ticker] = mark
        return marks

    async def _write(
        self, ctx: Context, state: RiskState, closed: RiskState | None, marks: dict[str, Mark]
    ) -> None:
        """``dora:risk`` (never its halt fields), the marks, and the pnl stream: one round trip."""
        fields = {k: v for k, v in encode_risk(state).items() if k not in HALT_FIELDS}
        pipe = ctx.redis.pipeline(transaction=False)
        pipe.hset(ctx.keys.risk, mapping=fields)
        pipe.hsetnx(ctx.keys.risk, "halted", "0")  # always visible to redis-cli
        if marks:
            pipe.hset(ctx.keys.marks, mapping={t: encode_mark(m) for t, m in marks.items()})
        gone = self.marked - set(marks)
        if gone:
            pipe.hdel(ctx.keys.marks, *sorted(gone))
        if closed is not None:
            ctx.log.info(
                "new_trading_day", day=state.day, previous=closed.day, previous_pnl=closed.daily_pnl
            )
            queue_append(
                pipe, ctx.keys, "pnl", "day_closed", day_closed_event(closed, state.last_check_ms)
            )
        now_ms = state.last_check_ms
        if closed is not None or now_ms - self.last_event_ms >= PNL_EVENT_EVERY_MS:
            queue_append(pipe, ctx.keys, "pnl", "pnl", pnl_event(state, now_ms))
            self.last_event_ms = now_ms
        await pipe.execute()
        self.marked = set(marks)

    async def _halt_on_loss(self, ctx: Context, state: RiskState) -> RiskState:
        limit = self.configs.global_config.max_daily_loss
        if state.daily_pnl > -limit or state.halted:
            return state
        reason = (
            f"daily loss limit: PnL {money_to_dollars_display(state.daily_pnl)} "
            f"<= -{money_to_dollars_display(limit)}"
        )
        await halt(ctx, reason)
        return replace(state, halted=True, reason=reason, halted_ms=ctx.clock.now_ms())

    def _start_watch(self, ctx: Context, snap: Snapshot, halted: bool) -> None:
        """A round of the exchange watch, beside the checks (unless one is still running)."""
        if self.watch is None or (self.watching is not None and not self.watching.done()):
            return
        watch = self.watch

        async def round_() -> None:
            self.watch_problems = await watch.run(ctx, snap.positions, snap.unreadable, halted)

        self.watch_started_ms = ctx.clock.monotonic_ms()
        self.watching = asyncio.create_task(round_(), name="exchange_watch")


def main() -> int:
    return service_main(RiskService, needs_kalshi=True, cold=True)
