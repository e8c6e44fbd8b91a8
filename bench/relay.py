"""One hop of the latency floor: read each entry of stream IN and append it to stream OUT.

``python -m bench.relay REDIS_URL IN OUT`` — three of these in a chain are "three Redis stream
hops between processes", the part of tick-to-order that no code of dora's can remove.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis


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
    asyncio.run(relay(sys.argv[1], sys.argv[2], sys.argv[3]))
