"""``dora status [--json] [--watch]``: processes, markets (book, our quotes, position, PnL), risk."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson
import redis.asyncio as aioredis

from cli.status_view import gather, render
from cli.support import with_redis
from common.keys import Keys
from common.settings import Settings

HELP = "show processes, markets (book, our quotes, position, PnL), risk state and recent fills"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the table"
    )
    parser.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")


def run(args: argparse.Namespace) -> int:
    async def work(redis: aioredis.Redis, keys: Keys, settings: Settings) -> int:
        while True:
            status = await gather(redis, keys)
            if args.json:
                sys.stdout.write(orjson.dumps(status).decode() + "\n")
            else:
                if args.watch:
                    sys.stdout.write("\x1b[2J\x1b[H")
                sys.stdout.write(render(status) + "\n")
            sys.stdout.flush()
            if not args.watch:
                return 0
            await asyncio.sleep(1.0)

    try:
        return with_redis(work)
    except KeyboardInterrupt:
        return 0
