"""One hop of the latency floor: read each entry of stream IN and append it to stream OUT.

``python -m bench.relay REDIS_URL IN OUT`` — three of these in a chain are "three Redis stream
hops between processes", the part of tick-to-order that no code of dora's can remove. They run on
the event loop dora's processes run on (``DORA_UVLOOP``, as in ``common.runtime``), so the floor
and dora are measured alike.
"""

from __future__ import annotations

import os
import sys

import redis.asyncio as aioredis

from common.runtime import run_loop


async def relay(url: str, source: str, target: str) -> None:
    r = aioredis.Redis.from_url(url)
    last = "$"
    while True:
        response = await r.xread({source: last}, count=100, block=1000)
        for _, entries in response or []:
            for entry_id, fields in entries:
                last = entry_id
                await r.xadd(target, fields, maxlen=10_000, approximate=True)


if __name__ == "__main__":
    run_loop(
        relay(sys.argv[1], sys.argv[2], sys.argv[3]),
        uvloop=os.environ.get("DORA_UVLOOP", "true") != "false",
    )
