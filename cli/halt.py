"""``dora halt [--reason R]``: stop all trading now (DESIGN.md §3)."""

from __future__ import annotations

import argparse

import redis.asyncio as aioredis

from cli.support import with_redis
from common.clock import Clock
from common.halt import set_halt
from common.keys import Keys
from common.settings import Settings

HELP = "stop all trading: no new orders, every resting order cancelled; lasts until 'dora resume'"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="operator halt", help="why (shown by 'dora status')")


def run(args: argparse.Namespace) -> int:
    reason = str(args.reason).strip()[:500] or "operator halt"

    async def work(redis: aioredis.Redis, keys: Keys, settings: Settings) -> int:
        return await set_halt(redis, keys, reason, Clock().now_ms(), "cli")

    heard = with_redis(work)
    print(
        f"halted: {reason} ({heard} process(es) notified; the halt is durable until 'dora resume')"
    )
    return 0
