"""fills: executions and order updates from Kalshi into positions, PnL and the fills stream.

The WebSocket ``fill`` channel is the fastest truth; a REST backfill since the last fill runs at
start, after every reconnect and every 30 s, so a fill missed while the socket was down (or this
process was) is still applied. ``services.fills.ledger`` applies each fill exactly once. Exchange
order updates (``user_orders``) go on the fills stream as ``user_order`` events for the executor.
"""

from __future__ import annotations

import asyncio
import contextlib

from common.domain import Fill, Order
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.signing import load_signer
from common.kalshi.ws import Connected, FillEvent, KalshiWebSocket, UserOrderEvent, WsEvent
from common.restore import wait_until_restored
from common.runtime import Context, service_main
from common.settings import Settings
from common.streams import append
from services.fills.ledger import apply_fill

BACKFILL_EVERY_MS = 30_000
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
        self.counts = {"fills": 0, "duplicates": 0, "backfilled": 0, "order_updates": 0}

    async def start(self, ctx: Context) -> None:
        await wait_until_restored(ctx.redis, ctx.keys, ctx.stopping, log=ctx.log)
        if self.client is None:
            self.client = await KalshiClient.from_settings(
                self.settings, redis=ctx.redis, clock=ctx.clock
            )
        if self.ws is None:
            signer = await asyncio.to_thread(load_signer, self.settings)
            self.ws = KalshiWebSocket(
                self.settings.ws_url,
                signer,
                clock=ctx.clock,
                lifecycle=False,
                private=True,
                on_event=self.queue.put_nowait,
            )
        await self.ws.start()
        await self._backfill(ctx)  # what happened while we were away

    async def stop(self, ctx: Context) -> None:
        if self.ws is not None:
            await self.ws.close()
        # Apply what the socket already delivered before leaving.
        while not self.queue.empty():
            with contextlib.suppress(Exception):
                await self._on_event(ctx, self.queue.get_nowait())
        if self.client is not None:
            await self.client.aclose()

    async def step(self, ctx: Context) -> None:
        try:
            event = await asyncio.wait_for(self.queue.get(), 0.5)
            await self._on_event(ctx, event)
            while not self.queue.empty():
                await self._on_event(ctx, self.queue.get_nowait())
        except TimeoutError:
            pass
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

    async def _apply(self, ctx: Context, fill: Fill) -> None:
        applied = await apply_fill(ctx.redis, ctx.keys, fill)
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

    async def _backfill(self, ctx: Context) -> None:
        assert self.client is not None
        self.last_backfill_ms = ctx.clock.monotonic_ms()
        last = int(await ctx.redis.hget(ctx.keys.fills_meta, "last_fill_ms") or 0)
        since = max(0, last - BACKFILL_OVERLAP_MS) if last else None
        try:
            fills = await self.client.get_fills(since)
        except ExchangeError as exc:
            ctx.metrics.count("api_errors")
            ctx.log.warning("backfill_failed", error=str(exc))
            return
        self.backfill_due = False
        before = self.counts["fills"]
        for fill in fills:
            await self._apply(ctx, fill)
        added = self.counts["fills"] - before
        self.counts["backfilled"] += added
        if added:
            ctx.log.info("backfilled", fills=added, since_ms=since)


def main() -> int:
    return service_main(FillsService, needs_kalshi=True)
