"""``dora resume``: lift the halt (DESIGN.md §3)."""

from __future__ import annotations

import argparse

import redis.asyncio as aioredis

from cli.support import with_redis
from common.clock import Clock
from common.halt import is_halted, lift_halt
from common.keys import Keys
from common.settings import Settings

HELP = "lift the halt so trading can start again"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="operator resume", help="why (kept in the log)")


def run(args: argparse.Namespace) -> int:
    async def work(redis: aioredis.Redis, keys: Keys, settings: Settings) -> tuple[bool, str, int]:
        halted, why = await is_halted(redis, keys)
        heard = await lift_halt(redis, keys, str(args.reason)[:500], Clock().now_ms(), "cli")
        return halted, why, heard

    was_halted, why, heard = with_redis(work)
    if was_halted:
        print(f"resumed (was halted: {why}); {heard} process(es) notified")
    else:
        print(f"resumed (was not halted); {heard} process(es) notified")
    return 0
