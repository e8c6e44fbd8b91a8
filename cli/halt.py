"""``dora halt [--reason R]``: stop all trading now (DESIGN.md §3).

A ``dora:risk`` of the wrong type (a person's ``SET``) is replaced by the halt, keeping the
trading day from the risk process's last record (``common.risk_record``); the line says so.

The executor cancels every resting order when it hears the halt, and the risk process does when
no executor is alive. With neither running (both heartbeats gone) nobody would, so the command
cancels at the exchange itself, as ``dora cancel-all`` does, when a Kalshi key is configured
here; without one it says to run ``dora cancel-all`` where one is. The halt is recorded either way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import redis.asyncio as aioredis

from cli.support import with_redis
from common.clock import Clock
from common.halt import Announced, set_halt
from common.keys import Keys
from common.settings import Settings

HELP = "stop all trading: no new orders, every resting order cancelled; lasts until 'dora resume'"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="operator halt", help="why (shown by 'dora status')")


async def anyone_cancels(redis: aioredis.Redis, keys: Keys) -> bool:
    """Is an executor (any shard) or the risk process alive to cancel on the halt? One key per
    call: heartbeats are in different cluster slots."""
    for key in (*keys.hb_all("executor"), keys.hb("executor"), keys.hb("risk")):
        if await redis.exists(key):
            return True
    return False


def run(args: argparse.Namespace) -> int:
    reason = str(args.reason).strip()[:500] or "operator halt"

    async def work(
        redis: aioredis.Redis, keys: Keys, settings: Settings
    ) -> tuple[Announced, bool, Settings]:
        announced = await set_halt(redis, keys, reason, Clock().now_ms(), "cli")
        return announced, await anyone_cancels(redis, keys), settings

    halted, heard, settings = with_redis(work)
    print(f"halted: {reason} ({halted.told()}; the halt is durable until 'dora resume')")
    if heard:
        return 0
    return cancel_here(settings)


def cancel_here(settings: Settings) -> int:
    """No process alive to cancel: do it here, as ``dora cancel-all`` does."""
    if not settings.kalshi_key_id or not settings.key_source:
        print(
            "dora halt: no executor or risk process is running to cancel resting orders, and no "
            "Kalshi key is set here: run 'dora cancel-all' where one is",
            file=sys.stderr,
        )
        return 0
    from cli.cancel_all import Progress
    from common.commands import cancel_all_resting
    from common.errors import DoraError
    from common.kalshi.errors import ExchangeError

    print("no executor or risk process is running: cancelling at the exchange from here")
    try:
        result = asyncio.run(cancel_all_resting(settings, on_retry=Progress()))
    except (ExchangeError, DoraError, OSError) as exc:
        print(
            f"dora halt: the halt is recorded, but cancelling at the exchange failed: {exc}; "
            "run 'dora cancel-all'",
            file=sys.stderr,
        )
        return 1
    print(result.message)
    return 0 if result.clean else 1
