"""One of the processes of the shared-budget test: hammers the simulator through the shared
Redis rate budget for a while and prints what it did as one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from common.domain import Side
from common.kalshi import KalshiClient, OrderRequest, make_client_order_id, signer_from_pem
from common.kalshi.errors import ExchangeError
from common.kalshi.ratelimit import READ, WRITE, RedisRateBudget


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--key-path", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--tier", default="basic")
    parser.add_argument("--ticker", required=True)
    parser.add_argument("--duration-s", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=4)
    args = parser.parse_args()
    signer = signer_from_pem(args.key_id, await asyncio.to_thread(Path(args.key_path).read_bytes))
    redis = aioredis.Redis.from_url(args.redis_url, decode_responses=True)
    bucket_keys = {bucket: f"dora:ratelimit:{args.key_id}:{bucket}" for bucket in (READ, WRITE)}
    budget = RedisRateBudget(redis, bucket_keys, args.tier)
    client = KalshiClient.create(args.url, signer, budget=budget)
    deadline = time.monotonic() + args.duration_s
    counts = {"reads": 0, "creates": 0, "cancels": 0, "errors": 0}
    seq = itertools.count()
    pid = os.getpid()

    async def writer() -> None:
        while time.monotonic() < deadline:
            n = next(seq)
            price = 100 + 100 * (n % 30)
            request = OrderRequest(
                args.ticker,
                Side.BID,
                price,
                100,
                make_client_order_id(f"hammer-{pid}", args.ticker, Side.BID, n),
            )
            try:
                order = await client.place_order(request)
                counts["creates"] += 1
                await client.cancel_order(order.order_id or "", args.ticker)
                counts["cancels"] += 1
            except ExchangeError:
                counts["errors"] += 1

    async def reader() -> None:
        while time.monotonic() < deadline:
            try:
                await client.get_open_orders(args.ticker)
                counts["reads"] += 1
            except ExchangeError:
                counts["errors"] += 1

    tasks = [writer() for _ in range(args.tasks)] + [reader() for _ in range(args.tasks)]
    await asyncio.gather(*tasks)
    counts["client_429s"] = client.transport.stats.rate_limited
    await client.aclose()
    await redis.aclose()
    print(orjson.dumps(counts).decode())


if __name__ == "__main__":
    asyncio.run(main())
