"""fills: executions and order updates from Kalshi into positions, PnL and the fills stream.

The WebSocket ``fill`` channel is the fastest truth; a REST backfill since the point REST last
fully covered runs at start, after every reconnect and every few seconds, so a fill missed while
the socket was down (or this process was) is still applied. ``services.fills.ledger`` applies each
fill exactly once. Exchange order updates (``user_orders``) go on the fills stream as
``user_order`` events for the executor. What the socket delivered is applied in runs (a run of
fills in one transaction, a run of order updates in one pipeline), never a round trip per event:
at hundreds of markets the events otherwise queued here for seconds, and the exchange held
executions neither the positions nor the executor's worst case had yet. Only the configured subaccount's fills and orders count:
the socket also carries the account's other subaccounts.

Redis losing its data: while ``dora:restored`` is missing nothing is applied (the events wait);
once the persister has restored, the backfill runs from the restored cursor and positions are set
from the exchange where they still differ (``exchange_sync``); then ``dora:positions:synced``
tells the executor it may add risk again. The same happens at every start.

Redis losing the writes of its last second (the AOF tail, ``services.fills.mark``): the loss is
logged (``redis_lost_acknowledged_fills``), ``dora:positions:synced`` is cleared (the executor
adds no risk), the fills of the last seconds are applied again from memory, and the same sync as
after a restore runs at once; once it is done the marker is set again (``fills_healed``).

The backfill itself, and its cursor of exchange time only, is ``services.fills.backfill``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from redis.exceptions import ResponseError

from common.clock_guard import ClockGuard
from common.connect import kalshi_client, load_signer
from common.domain import Fill
from common.errors import SchemaError
from common.fees import RoundingFee
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.ws import (
    Connected,
    FeedGap,
    FillEvent,
    KalshiWebSocket,
    UserOrderEvent,
    WsEvent,
)
from common.restore import current_restore, mark_positions_synced, wait_until_restored
from common.runtime import Context, service_main
from common.settings import Settings
from services.fills.backfill import backfill
from services.fills.exchange_sync import sync_from_exchange
from services.fills.ledger import NotRestored, apply_fills
from services.fills.mark import CHECK_S, FillsMark, read_restore_and_mark
from services.fills.order_updates import append_updates, update_event
from services.fills.repair import drop_unreadable_positions

BACKFILL_EVERY_MS = 5_000
RESTORE_POLL_S = 0.5
MAX_RUN = 200  # socket events (or backfilled fills) applied together at most


class FillsService:
    name = "fills"

    def __init__(
        self,
        settings: Settings,
        client: KalshiClient | None = None,
        ws: KalshiWebSocket | None = None,
        *,
        check_clock: bool = True,
    ) -> None:
        self.settings = settings
        self.client = client
        self.ws = ws
        self.check_clock = check_clock
        self.subaccount = settings.kalshi_subaccount
        self.queue: asyncio.Queue[WsEvent] = asyncio.Queue()
        self.backfill_due = True
        self.last_backfill_ms = 0.0
        self.backfilling: asyncio.Task[None] | None = None  # the periodic backfill, when running
        self.restore_seen: int | None = None  # the restore whose data we last synced
        self.mark = FillsMark()  # Redis losing acknowledged writes (services/fills/mark.py)
        self.healing = False  # such a loss is being healed: positions not synced yet
        self.next_recover_ms = 0.0
        self.counts = {
            "fills": 0,
            "duplicates": 0,
            "backfilled": 0,
            "order_updates": 0,
            "settlements": 0,
            "other_subaccount": 0,
            "skipped_items": 0,
            "set_from_exchange": 0,
            "order_lookups": 0,
        }
        self.retry: list[WsEvent] = []  # received but not yet applied (Redis away): kept, in order
        # what each fill costs the balance: the trade fee plus Kalshi's rounding (common/fees.py)
        self.rounding = RoundingFee.for_member(settings.direct_member)

    async def start(self, ctx: Context) -> None:
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        if self.client is None:
            self.client = await kalshi_client(self.settings, redis=ctx.redis, clock=ctx.clock)
        if self.check_clock:
            await ClockGuard(self.client, self.settings, ctx.log, ctx.clock).check_at_start()
        if self.ws is None:
            signer = await asyncio.to_thread(load_signer, self.settings)
            self.ws = KalshiWebSocket(
                self.settings.ws_url,
                signer,
                clock=ctx.clock,
                lifecycle=False,
                private=True,
                use_yes_price=self.settings.ws_use_yes_price,
                on_event=self.queue.put_nowait,
            )
        await self.ws.start()
        await self._recover(ctx)  # what happened while we were away; positions from the exchange

    async def stop(self, ctx: Context) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.backfilling is not None:
            with contextlib.suppress(Exception):
                await self.backfilling
        # Apply what the socket already delivered before leaving (REST covers anything else).
        while not self.queue.empty():
            self.retry.append(self.queue.get_nowait())
        for event in self.retry:
            with contextlib.suppress(Exception):
                await self._on_event(ctx, event)
        if self.client is not None:
            await self.client.aclose()

    async def step(self, ctx: Context) -> None:
        if not self.retry:
            with contextlib.suppress(TimeoutError):
                self.retry.append(await asyncio.wait_for(self.queue.get(), CHECK_S))
        while not self.queue.empty():
            self.retry.append(self.queue.get_nowait())
        restored, _ = await read_restore_and_mark(ctx.redis, ctx.keys, self.mark)
        if restored is None:
            await self._wait_for_restore(ctx)
            return
        if self.mark.lost and restored == self.restore_seen:
            await self._lost_writes(ctx)
        now = ctx.clock.monotonic_ms()
        if restored != self.restore_seen and now >= self.next_recover_ms:
            if not self.healing:
                ctx.log.warning("positions_not_synced_resyncing", restore_ts_ms=restored)
            self.next_recover_ms = now + BACKFILL_EVERY_MS  # not again at once if it fails
            await self._recover(ctx)
        try:
            while self.retry:
                try:
                    done = await self._apply_run(ctx, self.retry)
                except NotRestored:
                    raise
                except Exception as exc:
                    if isinstance(exc, ResponseError | SchemaError) and await self._repair(ctx):
                        continue  # a record corrupted by hand is gone: the run again
                    # Redis (say) is away: keep the run and everything after it, ask REST too.
                    self.backfill_due = True
                    raise
                del self.retry[:done]
            self._start_backfill(ctx)
        except NotRestored:
            await self._wait_for_restore(ctx)
            return
        ctx.status.update(self.counts)
        ctx.status["backlog"] = len(self.retry) + self.queue.qsize()  # events not applied yet

    def _start_backfill(self, ctx: Context) -> None:
        """Start the REST backfill when due, beside the socket's events, not in their way: a
        listing takes seconds on a busy exchange, and the fills the socket delivered meanwhile
        waited behind it (the REST backfill then applied them first, seconds late)."""
        if self.backfilling is not None and not self.backfilling.done():
            return
        now = ctx.clock.monotonic_ms()
        if self.backfill_due or now - self.last_backfill_ms >= BACKFILL_EVERY_MS:
            self.backfilling = asyncio.create_task(self._backfill_beside(ctx))

    async def _backfill_beside(self, ctx: Context) -> None:
        try:
            await self._backfill(ctx)
        except NotRestored:
            self.backfill_due = True  # the step finds the restore marker missing and waits
        except Exception as exc:  # Redis away (say): the next step's backfill tries again
            self.backfill_due = True
            if isinstance(exc, ResponseError | SchemaError) and await self._repair(ctx):
                return
            ctx.log.warning("backfill_failed", error=f"{type(exc).__name__}: {exc}")

    async def _repair(self, ctx: Context) -> bool:
        """Position records that do not read are dropped and synced again with the exchange at
        once (``services.fills.repair``); False when there were none."""
        if not await drop_unreadable_positions(ctx.redis, ctx.keys, ctx.log):
            return False
        self.restore_seen, self.healing, self.next_recover_ms = None, True, 0.0
        return True

    async def _lost_writes(self, ctx: Context) -> None:
        """Redis lost fills transactions it had acknowledged: no risk is added (the executor
        waits on ``dora:positions:synced``) until the lost fills are back; those of the last
        seconds are applied again now, the step's sync (as after a restore) follows at once."""
        mark = self.mark
        await ctx.redis.delete(ctx.keys.positions_synced)  # first: should it fail, found again
        ctx.log.warning("redis_lost_acknowledged_fills", ours=mark.held, acknowledged=mark.expected)
        mark.lost = ""
        self.restore_seen, self.healing, self.next_recover_ms = None, True, 0.0
        ctx.status["healing_lost_fills"] = True
        await self._apply(ctx, mark.to_replay(ctx.clock.monotonic_ms()), "replay")

    async def _wait_for_restore(self, ctx: Context) -> None:
        """Redis lost its data: apply nothing (the events wait) until the persister restored."""
        if self.restore_seen is not None:
            ctx.log.error("redis_data_lost_waiting_for_restore", waiting_events=len(self.retry))
            self.restore_seen = None
        self.backfill_due = True
        ctx.status["waiting_for_restore"] = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stopping.wait(), RESTORE_POLL_S)

    async def _recover(self, ctx: Context) -> None:
        """Backfill, set positions from the exchange where they differ, then say so. An
        exchange error leaves the sync undone (tried again at the next step)."""
        assert self.client is not None
        restored = await current_restore(ctx.redis, ctx.keys)
        if restored is None:
            return
        try:
            await self._backfill(ctx, raise_errors=True)
            corrected = await sync_from_exchange(
                ctx.redis,
                ctx.keys,
                self.client,
                lambda: self._backfill(ctx, raise_errors=True),
                ctx.log,
                ctx.clock.now_ms,
            )
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning("positions_sync_failed", error=str(exc))
            return
        except NotRestored:
            return
        self.counts["set_from_exchange"] += len(corrected)
        await mark_positions_synced(ctx.redis, ctx.keys, restored, ctx.clock.now_ms(), corrected)
        self.restore_seen = restored
        ctx.status["waiting_for_restore"] = False
        ctx.log.info("positions_synced_with_exchange", corrected=len(corrected))
        if self.healing:
            self.healing, ctx.status["healing_lost_fills"] = False, False
            ctx.log.info("fills_healed", corrected=len(corrected))

    def _ours(self, subaccount: int | None) -> bool:
        """Whether an event of the socket is of our subaccount (not said: the primary, 0)."""
        if (subaccount or 0) == self.subaccount:
            return True
        self.counts["other_subaccount"] += 1
        return False

    async def _apply_run(self, ctx: Context, events: list[WsEvent]) -> int:
        """Apply the run of fills and order updates at the head of ``events`` together, in
        their order: the fills in one transaction with the order updates between them (or the
        updates alone in one pipeline), so the socket's events never queue up behind a round
        trip each (at hundreds of markets they did, by seconds, and the exchange held executions
        dora had not posted). Returns how many events were taken."""
        if not isinstance(events[0], FillEvent | UserOrderEvent):
            await self._on_event(ctx, events[0])
            return 1
        run = list(
            itertools.takewhile(
                lambda e: isinstance(e, FillEvent | UserOrderEvent), events[:MAX_RUN]
            )
        )
        fills: list[Fill] = []
        updates: list[tuple[int, dict[str, Any]]] = []  # (the fill it came before, its event)
        for event in run:
            if isinstance(event, FillEvent) and self._ours(event.fill.subaccount):
                fills.append(event.fill)
            elif isinstance(event, UserOrderEvent) and self._ours(event.order.subaccount):
                updates.append(
                    (len(fills), await update_event(ctx, self.client, event.order, self.counts))
                )
        if fills:
            await self._apply_batch(ctx, fills, "ws", updates)
        else:
            await append_updates(ctx, [update for _, update in updates])
        return len(run)

    async def _on_event(self, ctx: Context, event: WsEvent) -> None:
        if isinstance(event, FillEvent):
            if self._ours(event.fill.subaccount):
                await self._apply(ctx, [event.fill], "ws")
        elif isinstance(event, UserOrderEvent):
            if self._ours(event.order.subaccount):
                await append_updates(
                    ctx, [await update_event(ctx, self.client, event.order, self.counts)]
                )
        elif isinstance(event, Connected) and event.reconnects:
            self.backfill_due = True  # the socket was down: ask REST what we missed
        elif isinstance(event, FeedGap):
            self.backfill_due = True  # a private subscription was gone a while: the same

    async def _apply(self, ctx: Context, fills: list[Fill], source: str = "rest") -> None:
        """Apply ``fills`` in batches of ``MAX_RUN``."""
        for start in range(0, len(fills), MAX_RUN):
            await self._apply_batch(ctx, fills[start : start + MAX_RUN], source)

    async def _apply_batch(
        self,
        ctx: Context,
        fills: list[Fill],
        source: str,
        updates: list[tuple[int, dict[str, Any]]] | None = None,
    ) -> None:
        """One transaction: ``fills`` and the order updates between them; each fill applied is
        logged with where it came from and how long after the execution it was posted."""
        applied = await apply_fills(
            ctx.redis, ctx.keys, fills, self.rounding, updates or (), mark=self.mark
        )
        now_ms, mono_ms = ctx.clock.now_ms(), ctx.clock.monotonic_ms()
        for fill, result in zip(fills, applied, strict=True):
            if result is None:
                self.counts["duplicates"] += 1
                continue
            self.mark.applied(fill, mono_ms)
            self.counts["fills"] += 1
            ctx.metrics.count("fills_count")
            ctx.metrics.observe_ms("fill_post_lag_ms", now_ms - fill.ts_ms)
            ctx.log.info(
                "fill",
                market=fill.ticker,
                side=fill.side.value,
                price=fill.price,
                count=fill.count,
                fee=fill.fee,
                position=result.position.position,
                fill_id=fill.fill_id,
                source=source,
                lag_ms=now_ms - fill.ts_ms,  # from the execution to its posting
            )

    async def _backfill(self, ctx: Context, raise_errors: bool = False) -> None:
        """The REST backfill (``services.fills.backfill``); an exchange error asks for the next
        one at once and is raised with ``raise_errors``, else counted and logged."""
        assert self.client is not None
        self.last_backfill_ms = ctx.clock.monotonic_ms()
        self.backfill_due = False  # a reconnect from here on asks for the next one
        try:
            await backfill(
                ctx,
                self.client,
                lambda fills: self._apply(ctx, fills),
                self.mark,
                self.counts,
                self.last_backfill_ms,
            )
        except ExchangeError as exc:
            self.backfill_due = True
            if raise_errors:
                raise
            ctx.metrics.count("api_errors")
            ctx.log.warning("backfill_failed", error=str(exc))


def main() -> int:
    return service_main(FillsService, needs_kalshi=True)
