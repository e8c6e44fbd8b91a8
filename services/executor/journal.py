"""What the executor writes to Redis about orders: the working orders and the trade log.

An order's new state and its trade-log event go in one round trip, in the pipeline the passes
share (``common.batching``). The read loop changes orders in memory only; ``flush`` writes those
changes (and the trade-log events the read loop left) before the side's next pass decides.
"""

from __future__ import annotations

from typing import Any

from common.batching import Batcher
from common.domain import Order, Side
from common.events import order_event
from common.runtime import Context
from common.streams import append, queue_append
from services.executor.working import WorkingOrders


class OrderJournal:
    def __init__(self, ctx: Context, working: WorkingOrders, batch: Batcher) -> None:
        self.ctx = ctx
        self.working = working
        self.batch = batch
        self.unlogged: dict[str, list[dict[str, Any]]] = {}  # events for the market's next flush

    async def record(
        self,
        order: Order,
        event: str,
        reason: str = "",
        logged: Order | None = None,
        cancelled: int | None = None,
    ) -> None:
        """Save ``order`` and append its trade-log event (of ``logged``, the exchange's answer,
        when given; ``cancelled``: what a cancel took off the book) in one round trip."""
        ctx, working = self.ctx, self.working
        payload = order_event(logged or order, event, ctx.clock.now_ms(), reason, cancelled)

        def queue(pipe: Any) -> None:
            working.queue_save(pipe, order)
            queue_append(pipe, ctx.keys, "orders", "order", payload)

        await self.batch.execute(queue)

    async def save(self, order: Order) -> None:
        """Save ``order`` alone (a new order, before its request leaves)."""
        working = self.working
        await self.batch.execute(lambda pipe: working.queue_save(pipe, order))

    async def log(
        self, order: Order, event: str, reason: str = "", cancelled: int | None = None
    ) -> None:
        """The trade-log event alone (the order was saved already)."""
        ctx = self.ctx
        await append(
            ctx.redis,
            ctx.keys,
            "orders",
            "order",
            order_event(order, event, ctx.clock.now_ms(), reason, cancelled),
        )

    def log_later(self, order: Order, event: str, reason: str) -> None:
        """The trade-log event of a change the read loop made in memory: written with the
        market's next ``flush``."""
        payload = order_event(order, event, self.ctx.clock.now_ms(), reason)
        self.unlogged.setdefault(order.ticker, []).append(payload)

    async def flush(self, ticker: str | None = None, side: Side | None = None) -> None:
        """Write the read loop's in-memory changes of ``ticker``'s ``side`` orders (every
        market's with None; only the side's pass writes its orders, so one order's writes stay
        in order) and the market's trade-log events, one round trip."""
        ctx, working, unlogged = self.ctx, self.working, self.unlogged

        def queue(pipe: Any) -> None:
            working.queue(pipe, ticker, side)
            for t in [ticker] if ticker is not None else list(unlogged):
                for event in unlogged.pop(t, []):
                    queue_append(pipe, ctx.keys, "orders", "order", event)

        await self.batch.execute(queue)
