"""Tick-to-order latency tracing (for ``make bench``; off unless ``DORA_TRACE_LATENCY=true``).

The clock starts when marketdata receives the WebSocket frame of a book change (``recv_us`` in
the md event), rides along the strategy's targets (``origin_us``: the oldest frame the targets
answer) into the executor, which sets ``ORIGIN_US`` for its market pass; the Kalshi client's
request hook then records ``now - origin`` at the moment each order request is sent. Samples go
to the Redis list ``dora:trace:tick_to_order_us`` (capped).
"""

from __future__ import annotations

import time
from contextvars import ContextVar

import httpx
import redis.asyncio as aioredis

from common.schema import Keys

ORIGIN_US: ContextVar[int | None] = ContextVar("dora_origin_us", default=None)
MAX_SAMPLES = 200_000
ORDER_PATH = "/portfolio/events/orders"


def now_us() -> int:
    return time.time_ns() // 1000


def samples_key(keys: Keys) -> str:
    return f"{keys.prefix}trace:tick_to_order_us"


class TickToOrder:
    """Collects samples in memory (the hook runs on the hot path) and flushes them to Redis."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    async def on_request(self, request: httpx.Request) -> None:
        origin = ORIGIN_US.get()
        if (
            origin is not None
            and request.method in ("POST", "DELETE")
            and ORDER_PATH in request.url.path
        ):
            self.pending.append(now_us() - origin)

    async def flush(self, redis: aioredis.Redis, keys: Keys) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        pipe = redis.pipeline(transaction=False)
        pipe.rpush(samples_key(keys), *batch)
        pipe.ltrim(samples_key(keys), -MAX_SAMPLES, -1)
        await pipe.execute()
