"""The executor's loop: read the streams, keep the background work going, schedule the passes.

Each step reads the targets and fills streams (blocking briefly), hands every entry to the
``Inbox`` (memory only), and starts a pass for every market side that is due. Each side of a
market has at most one pass at a time (two requests about one order must not race), but the bid
never waits for the ask's answer: the worst case is per side. Beside the reads, not in them: the
trading gate (Redis's data, the clock), risk refresh and feed check every ``RISK_REFRESH_MS``, a
reconcile every ``RECONCILE_EVERY_MS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from common.errors import SchemaError
from common.messages import decode_event
from common.runtime import Context, note_lag
from common.stream_read import BurstRead, xread
from common.trace import STAMPS, TickToOrder
from services.executor.gate import TradingGate
from services.executor.groups import OrderGroups
from services.executor.inbox import Inbox
from services.executor.journal import OrderJournal
from services.executor.market_pass import MarketPass
from services.executor.reconcile import Reconciler
from services.executor.safety import Safety
from services.executor.state import SIDES, PassKey, Schedule
from services.executor.working import WorkingOrders

READ_BLOCK_MS = 50
READ_COUNT = 2_000
RECONCILE_EVERY_MS = 2_000
RISK_REFRESH_MS = 250
STARTING_REFRESH_MS = 50  # while it waits to quote at start: the feeds' first heartbeats
POSITIONS_REFRESH_MS = 1_000  # a read per market: not on every 250 ms risk refresh
MAX_CONCURRENT_MARKETS = 64
YIELDS_FOR_THE_BATCH = 3  # turns of the loop the read waits, at most, for the passes' batch


class Loop:
    def __init__(
        self,
        ctx: Context,
        *,
        working: WorkingOrders,
        journal: OrderJournal,
        reconciler: Reconciler,
        groups: OrderGroups,
        safety: Safety,
        inbox: Inbox,
        market_pass: MarketPass,
        schedule: Schedule,
        tracer: TickToOrder | None,
        gate: TradingGate | None = None,
    ) -> None:
        self.ctx = ctx
        self.gate = gate
        self.working = working
        self.journal = journal
        self.reconciler = reconciler
        self.groups = groups
        self.safety = safety
        self.inbox = inbox
        self.market_pass = market_pass
        self.schedule = schedule
        self.tracer = tracer
        self.stream_ids: dict[str, str] = {}  # where each stream's reading goes on
        self.burst = BurstRead(ctx.redis, count=READ_COUNT, block=READ_BLOCK_MS)
        self.limiter = asyncio.Semaphore(MAX_CONCURRENT_MARKETS)
        self.housekeeping: asyncio.Task[None] | None = None  # None: not yet started
        self.reconciling: asyncio.Task[None] | None = None  # None: none running

    async def read_from_now(self) -> None:
        """Read the streams from their newest entry on (what came before is in the hashes)."""
        ctx = self.ctx
        for stream in ("targets", "fills"):
            key = ctx.keys.stream(stream)
            last = await ctx.redis.xrevrange(key, count=1)
            self.stream_ids[key] = last[0][0] if last else "0-0"

    def background(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.housekeeping, self.reconciling) if t is not None]

    async def step(self) -> None:
        ctx, schedule = self.ctx, self.schedule
        now = ctx.clock.monotonic_ms()
        # At start the quotes wait for the feeds' heartbeats and the risk's first check: looked
        # for more often then, so quoting starts as soon as they are there.
        every_ms = (
            STARTING_REFRESH_MS if self.safety.pulled.reason == "starting" else RISK_REFRESH_MS
        )
        if now - schedule.last_risk_ms >= every_ms and (
            self.housekeeping is None or self.housekeeping.done()
        ):
            # Beside the read loop, not in it: targets arriving meanwhile are read at once.
            schedule.last_risk_ms = now
            full = now - schedule.last_positions_ms >= POSITIONS_REFRESH_MS
            if full:
                schedule.last_positions_ms = now
            self.housekeeping = asyncio.create_task(self._housekeeping(full))
        if now - schedule.last_reconcile_ms >= RECONCILE_EVERY_MS and self.reconciling is None:
            schedule.last_reconcile_ms = now
            self.reconciling = asyncio.create_task(self._reconcile_safely())
        schedule.mark_all(self.groups.cooled_down())
        if ctx.keys.cluster:
            response = await xread(
                ctx.redis, self.stream_ids, count=READ_COUNT, block=READ_BLOCK_MS, cluster=True
            )
        else:  # the strategy's whole publish at once, not its first market alone
            response = await self.burst.read(self.stream_ids)
        for stream, entries in response or []:
            note_lag(
                ctx,
                "targets_lag_ms" if stream.endswith(":targets") else "fills_lag_ms",
                entries[0][0],
            )
            for entry_id, fields in entries:
                self.stream_ids[stream] = entry_id
                try:
                    kind, payload = decode_event(fields)
                    self.inbox.on_event(kind, payload)
                except (SchemaError, KeyError, TypeError, ValueError) as exc:
                    ctx.log.warning("bad_stream_entry", stream=stream, reason=str(exc))
        if self.start_passes():
            # The passes first: each decides and queues its ledger step, and the batch is on its
            # way to Redis before the next read is built and sent (that read had cost every
            # tick's passes ~0.4 ms of the loop on a busy box before they could start).
            await asyncio.sleep(0)
            for _ in range(YIELDS_FOR_THE_BATCH):
                if not self.market_pass.batch.filling:
                    break
                await asyncio.sleep(0)

    def start_passes(self) -> int:
        """A pass for every side that is due and not already in one; a side whose pass is
        running stays due and starts again the moment that pass ends. How many started."""
        schedule = self.schedule
        for ticker in schedule.dirty:
            schedule.due.update((ticker, side) for side in SIDES)
        schedule.dirty.clear()
        started = 0
        for key in [k for k in schedule.due if k not in schedule.inflight]:
            schedule.due.discard(key)
            schedule.inflight[key] = asyncio.create_task(self._pass(key))
            started += 1
        return started

    async def _pass(self, key: PassKey) -> None:
        ctx, schedule = self.ctx, self.schedule
        ticker, side = key
        STAMPS.set(schedule.trace.pop(key, None))  # this task's requests carry them
        cancelled = False
        try:
            async with self.limiter:
                started = ctx.clock.monotonic_ms()
                # Before deciding: write what the read loop changed in memory, then ask the
                # exchange about the side's orders that fills say are done.
                await self.journal.flush(ticker, side)
                await self.reconciler.resolve_waiting(ticker, side)
                if await self.market_pass.run(ticker, side):
                    ctx.metrics.observe_ms("loop_latency_ms", ctx.clock.monotonic_ms() - started)
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception:
            ctx.log.exception("market_pass_failed", market=ticker, side=side.value)
        finally:
            schedule.inflight.pop(key, None)
            if key in schedule.due and not (cancelled or schedule.closing):
                # Targets or fills read while this pass ran are answered now, not at the next
                # read. (What the pass itself marked, a refused amend say, waits for that read:
                # no tight loop against the exchange.) Only this side: every other due side is
                # in a pass of its own, which does the same when it ends.
                schedule.due.discard(key)
                schedule.inflight[key] = asyncio.create_task(self._pass(key))

    async def _housekeeping(self, full: bool) -> None:
        ctx = self.ctx
        # the heartbeat's count of working orders: a walk over every order, so not per step
        ctx.status["working"] = len(self.working.all_live())
        # Each on its own: the feed check must judge the risk state even when reading it failed
        # (an old risk state pulls the quotes).
        parts: tuple[Callable[[], Awaitable[None]], ...] = (
            *((self.gate.refresh,) if self.gate is not None else ()),
            lambda: self.safety.refresh_risk(full),
            self.safety.keeper.repair,
            self.safety.check_feeds,
        )
        for part in parts:
            try:
                await part()
            except Exception as exc:  # Redis away: the next round tries again
                ctx.log.warning("housekeeping_failed", error=f"{type(exc).__name__}: {exc}")
        if self.tracer is not None:
            try:
                await self.tracer.flush(ctx.redis, ctx.keys)
            except Exception as exc:
                ctx.log.warning("housekeeping_failed", error=f"{type(exc).__name__}: {exc}")

    async def _reconcile_safely(self) -> None:
        try:
            await self.reconciler.reconcile()
        except Exception as exc:
            self.ctx.log.warning("reconcile_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.reconciling = None
