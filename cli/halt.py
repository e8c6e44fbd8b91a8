"""``dora halt [--reason R]``: stop all trading now (DESIGN.md §3).

A ``dora:risk`` of the wrong type (a person's ``SET``) is replaced by the halt, keeping the
trading day from the risk process's last record (``common.risk_record``); the line says so.
"""

from __future__ import annotations

import argparse

import redis.asyncio as aioredis

from cli.support import with_redis
from common.clock import Clock
from common.halt import Announced, set_halt
from common.keys import Keys
from common.settings import Settings

HELP = "stop all trading: no new orders, every resting order cancelled; lasts until 'dora resume'"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="operator halt", help="why (shown by 'dora status')")


def run(args: argparse.Namespace) -> int:
    reason = str(args.reason).strip()[:500] or "operator halt"

    async def work(redis: aioredis.Redis, keys: Keys, settings: Settings) -> Announced:
        return await set_halt(redis, keys, reason, Clock().now_ms(), "cli")

    halted = with_redis(work)
    print(f"halted: {reason} ({halted.told()}; the halt is durable until 'dora resume')")
    return 0
