"""The exchange's order updates (``user_orders``) as ``user_order`` events on the fills stream
for the executor: an update whose status dora does not know is looked up over REST first."""

from __future__ import annotations

from typing import Any

from common.domain import Order, OrderStatus
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.runtime import Context
from common.streams import queue_append


async def update_event(
    ctx: Context, client: KalshiClient | None, order: Order, counts: dict[str, int]
) -> dict[str, Any]:
    """An order update's ``user_order`` event for the executor (an update whose status dora
    does not know is looked up first)."""
    counts["order_updates"] += 1
    if order.status is OrderStatus.UNKNOWN and order.order_id:
        # the exchange does not know (or dora does not know the status it sent): ask it
        order = await look_up(ctx, client, order, counts)
    return {
        "ticker": order.ticker,
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "status": order.status.value,
        "price": order.price,
        "filled": order.filled,
        "remaining": order.remaining,
        "exchange_ms": order.exchange_ms,  # the exchange's time of the change (0: not said)
    }


async def append_updates(ctx: Context, updates: list[dict[str, Any]]) -> None:
    """Order updates onto the fills stream, in order, in one round trip."""
    if not updates:
        return
    pipe = ctx.redis.pipeline(transaction=False)
    for update in updates:
        queue_append(pipe, ctx.keys, "fills", "user_order", update)
    await pipe.execute()


async def look_up(
    ctx: Context, client: KalshiClient | None, order: Order, counts: dict[str, int]
) -> Order:
    """The order as the exchange's REST answers it; unknown still when it cannot say (the
    executor then resolves it by its own lookup, as any order in doubt)."""
    assert client is not None and order.order_id is not None
    counts["order_lookups"] += 1
    try:
        found = await client.get_order(order.order_id)
    except ExchangeError as exc:
        ctx.log.warning("order_lookup_failed", market=order.ticker, error=str(exc)[:200])
        return order
    ctx.log.info("order_looked_up", market=order.ticker, status=found.status.value)
    return found
