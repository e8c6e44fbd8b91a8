"""fills: executions and order updates from Kalshi into positions, PnL and the fills stream.

The WebSocket ``fill`` channel is the fastest truth; a REST backfill since the last fill runs at
start, after every reconnect and every 30 s, so a fill missed while the socket was down (or this
process was) is still applied. ``services.fills.ledger`` applies each fill exactly once. Exchange
order updates (``user_orders``) go on the fills stream as ``user_order`` events for the executor.
"""

from __future__ import annotations

import asyncio
import contextlib

from common.connect import kalshi_client, load_signer
from common.domain import Fill, Order, OrderStatus
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
from common.restore import wait_until_restored
from common.runtime import Context, service_main
from common.settings import Settings
from common.streams import append
from services.fills.ledger import apply_fill, apply_settlement

BACKFILL_EVERY_MS = 5_000
REST_LAG_MS = 3_000  # what REST may not show yet
BACKFILL_OVERLAP_MS = 5_000  # fills are listed by whole seconds and may land late


class FillsService:
    name = "fills"

    def __init__(
        self,
        settings: Settings,
        client: KalshiClient | None = None,
        ws: KalshiWebSocket | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.ws = ws
        self.queue: asyncio.Queue[WsEvent] = asyncio.Queue()
        self.backfill_due = True
        self.last_backfill_ms = 0.0
        self.counts = {
            "fills": 0,
            "duplicates": 0,
            "backfilled": 0,
            "order_updates": 0,
            "order_lookups": 0,
            "settlements": 0,
        }
        self.retry: list[WsEvent] = []  # received but not yet applied (Redis away): kept, in order
        # what each fill costs the balance: the trade fee plus Kalshi's rounding (common/fees.py)
        self.rounding = RoundingFee.for_member(settings.direct_member)

    async def start(self, ctx: Context) -> None:
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        if self.client is None:
            self.client = await kalshi_client(self.settings, redis=ctx.redis, clock=ctx.clock)
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
        await self._backfill(ctx)  # what happened while we were away

    async def stop(self, ctx: Context) -> None:
        if self.ws is not None:
            await self.ws.close()
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
                self.retry.append(await asyncio.wait_for(self.queue.get(), 0.5))
        while not self.queue.empty():
            self.retry.append(self.queue.get_nowait())
        while self.retry:
            try:
                await self._on_event(ctx, self.retry[0])
            except Exception:
                # Redis (say) is away: keep the event and everything after it, ask REST too.
                self.backfill_due = True
                raise
            self.retry.pop(0)
        now = ctx.clock.monotonic_ms()
        if self.backfill_due or now - self.last_backfill_ms >= BACKFILL_EVERY_MS:
            await self._backfill(ctx)
        ctx.status.update(self.counts)

    async def _on_event(self, ctx: Context, event: WsEvent) -> None:
        if isinstance(event, FillEvent):
            await self._apply(ctx, event.fill)
        elif isinstance(event, UserOrderEvent):
            await self._order_update(ctx, event.order)
        elif isinstance(event, Connected) and event.reconnects:
            self.backfill_due = True  # the socket was down: ask REST what we missed
        elif isinstance(event, FeedGap):
            self.backfill_due = True  # a private subscription was gone a while: the same

    async def _apply(self, ctx: Context, fill: Fill) -> None:
        applied = await apply_fill(ctx.redis, ctx.keys, fill, self.rounding)
        if applied is None:
            self.counts["duplicates"] += 1
            return
        self.counts["fills"] += 1
        ctx.metrics.count("fills_count")
        ctx.log.info(
            "fill",
            market=fill.ticker,
            side=fill.side.value,
            price=fill.price,
            count=fill.count,
            fee=fill.fee,
            position=applied.position.position,
            fill_id=fill.fill_id,
        )

    async def _order_update(self, ctx: Context, order: Order) -> None:
        self.counts["order_updates"] += 1
        if order.status is OrderStatus.UNKNOWN and order.order_id:
            # the exchange does not know (or dora does not know the status it sent): ask it
            order = await self._look_up(ctx, order)
        await append(
            ctx.redis,
            ctx.keys,
            "fills",
            "user_order",
            {
                "ticker": order.ticker,
                "order_id": order.order_id,
                "client_order_id": order.client_order_id,
                "status": order.status.value,
                "price": order.price,
                "filled": order.filled,
                "remaining": order.remaining,
            },
        )

    async def _look_up(self, ctx: Context, order: Order) -> Order:
        """The order as the exchange's REST answers it; unknown still when it cannot say (the
        executor then resolves it by its own lookup, as any order in doubt)."""
        assert self.client is not None and order.order_id is not None
        self.counts["order_lookups"] += 1
        try:
            found = await self.client.get_order(order.order_id)
        except ExchangeError as exc:
            ctx.log.warning("order_lookup_failed", market=order.ticker, error=str(exc)[:200])
            return order
        ctx.log.info("order_looked_up", market=order.ticker, status=found.status.value)
        return found

    async def _backfill(self, ctx: Context) -> None:
        """Apply every fill and settlement REST knows since the last point REST fully covered
        (not since the newest fill: one missed while Redis was away must still be found)."""
        assert self.client is not None
        self.last_backfill_ms = ctx.clock.monotonic_ms()
        started_ms = ctx.clock.now_ms()
        meta = await ctx.redis.hgetall(ctx.keys.fills_meta)
        covered = int(meta.get("backfilled_to_ms") or 0) or int(meta.get("last_fill_ms") or 0)
        since = max(0, covered - BACKFILL_OVERLAP_MS) if covered else None
        settled_to = int(meta.get("settled_to_ms") or 0)
        try:
            fills = await self.client.get_fills(since)
            settlements = await self.client.get_settlements(
                settled_to - BACKFILL_OVERLAP_MS if settled_to else None
            )
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning("backfill_failed", error=str(exc))
            return
        before = self.counts["fills"]
        for fill in fills:
            await self._apply(ctx, fill)
        for settlement in settlements:
            closed = await apply_settlement(ctx.redis, ctx.keys, settlement)
            if closed is not None:
                self.counts["settlements"] += 1
                ctx.log.info(
                    "settled",
                    market=settlement.ticker,
                    result=settlement.result,
                    realized_pnl=closed.realized_pnl,
                )
        # REST may lag the exchange by a moment: only claim what is safely behind us.
        await ctx.redis.hset(
            ctx.keys.fills_meta,
            mapping={
                "backfilled_to_ms": str(max(covered, started_ms - REST_LAG_MS)),
                "settled_to_ms": str(max(settled_to, started_ms - REST_LAG_MS)),
            },
        )
        self.backfill_due = False
        added = self.counts["fills"] - before
        self.counts["backfilled"] += added
        if added:
            ctx.log.info("backfilled", fills=added, since_ms=since)


def main() -> int:
    return service_main(FillsService, needs_kalshi=True)
