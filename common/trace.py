"""Tick-to-order latency tracing (for ``make bench``; off unless ``DORA_TRACE_LATENCY=true``).

The clock starts when marketdata receives the WebSocket frame of a book change (``recv_us`` in
the md event) and each process adds its own stamps: marketdata when it publishes (``pub_us``),
the strategy when it reads the update and when it publishes the targets it answers (the
targets event's ``trace``: the oldest unanswered frame's stamps), the executor when it reads
the targets. The executor sets ``STAMPS`` for its market pass and the Kalshi client's request
hook adds the moment each order request is sent. A sample is the six stamps (microseconds since
the epoch, one clock: every process runs on this machine), comma-joined, in the Redis list
``dora:trace:tick_to_order_us`` (capped); ``stages`` turns one into the time spent in each hop.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

import redis.asyncio as aioredis

from common.keys import Keys

STAMPS: ContextVar[tuple[int, ...] | None] = ContextVar("dora_trace_stamps", default=None)
STAGES = ("marketdata", "md_hop", "strategy", "targets_hop", "executor")
MAX_SAMPLES = 200_000
ORDER_PATH = "/portfolio/events/orders"


def now_us() -> int:
    return time.time_ns() // 1000


class TickToOrder:
    """Collects samples in memory (the hook runs on the hot path) and flushes them to Redis."""

    def __init__(self) -> None:
        self.pending: list[str] = []

    async def on_request(self, method: str, path: str) -> None:
        stamps = STAMPS.get()
        if stamps is not None and method in ("POST", "PUT", "DELETE") and ORDER_PATH in path:
            self.pending.append(",".join(map(str, (*stamps, now_us()))))

    async def flush(self, redis: aioredis.Redis, keys: Keys) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        pipe = redis.pipeline(transaction=False)
        pipe.rpush(keys.trace_samples, *batch)
        pipe.ltrim(keys.trace_samples, -MAX_SAMPLES, -1)
        await pipe.execute()


def stages(sample: str) -> tuple[int, dict[str, int]] | None:
    """A sample -> (end-to-end microseconds, microseconds per stage); None if malformed."""
    try:
        stamps = [int(x) for x in sample.split(",")]
    except ValueError:
        return None
    if len(stamps) != len(STAGES) + 1 or 0 in stamps:
        return None
    per = {name: stamps[i + 1] - stamps[i] for i, name in enumerate(STAGES)}
    return stamps[-1] - stamps[0], per
