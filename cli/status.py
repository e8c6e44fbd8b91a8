"""``dora status [--json] [--watch]``: processes, markets (book, our quotes, position, PnL), risk."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cli.status_view import gather, render
from cli.support import UNREACHABLE, with_redis
from common.keys import Keys
from common.settings import Settings

HELP = "show processes, markets (book, our quotes, position, PnL), risk state and recent fills"
CLEAR = "\x1b[2J\x1b[H"
WATCH_INTERVAL_S = 1.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the table"
    )
    parser.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")


def not_answering(redis_url: str, since_s: float, exc: BaseException) -> str:
    """The line a watch shows while Redis is down or silent (it keeps trying)."""
    since = time.strftime("%H:%M:%S UTC", time.gmtime(since_s))
    return f"Redis at {redis_url} not answering since {since}, retrying ({exc})"


def run(args: argparse.Namespace) -> int:
    async def work(redis: aioredis.Redis, keys: Keys, settings: Settings) -> int:
        down_since: float | None = None
        while True:
            try:
                status = await gather(redis, keys)
            except ResponseError:  # it answered: not a Redis to wait for
                raise
            except UNREACHABLE as exc:
                if not args.watch:  # one line from with_redis
                    raise
                # a screen left open outlives a Redis restart: say so and keep trying
                down_since = down_since or time.time()
                line = not_answering(settings.redacted()["redis_url"], down_since, exc)
                if args.json:
                    sys.stderr.write(line + "\n")
                    sys.stderr.flush()
                else:
                    sys.stdout.write(CLEAR + line + "\n")
                    sys.stdout.flush()
                await asyncio.sleep(WATCH_INTERVAL_S)
                continue
            down_since = None
            if args.json:
                sys.stdout.write(orjson.dumps(status).decode() + "\n")
            else:
                if args.watch:
                    sys.stdout.write(CLEAR)
                sys.stdout.write(render(status) + "\n")
            sys.stdout.flush()
            if not args.watch:
                return 0
            await asyncio.sleep(WATCH_INTERVAL_S)

    try:
        return with_redis(work)
    except KeyboardInterrupt:
        return 0
