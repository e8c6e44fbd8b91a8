"""``dora resume``: lift the halt (DESIGN.md §3).

A ``dora:risk`` of the wrong type (a person's ``SET``) or deleted (``DEL``) is written again
first, as the risk process would at its next check, keeping the trading day from its last record
(``common.risk_record``); with no record of the day it stays halted, one line and exit 2, and a
second resume lifts it.
"""

from __future__ import annotations

import argparse

import redis.asyncio as aioredis

from cli.main import CliError
from cli.support import with_redis
from common.clock import Clock
from common.halt import Announced, ResumeRefused, is_halted, lift_halt
from common.keys import Keys
from common.settings import Settings

HELP = "lift the halt so trading can start again"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="operator resume", help="why (kept in the log)")


def run(args: argparse.Namespace) -> int:
    async def work(redis: aioredis.Redis, keys: Keys, settings: Settings) -> tuple[str, Announced]:
        kind = await redis.type(keys.risk)
        halted, why = (False, "") if kind not in ("hash", "none") else await is_halted(redis, keys)
        try:
            resumed = await lift_halt(redis, keys, str(args.reason)[:500], Clock().now_ms(), "cli")
        except ResumeRefused as exc:
            raise CliError(str(exc)) from None
        return (f"was halted: {why}" if halted else "was not halted"), resumed

    was, resumed = with_redis(work)
    print(f"resumed ({resumed.note() or was}); {resumed.heard} process(es) notified")
    return 0
