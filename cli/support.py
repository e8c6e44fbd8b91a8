"""What the operator commands share: settings, a Redis client and output files, errors as one
line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from cli.main import CliError
from common.errors import ConfigError
from common.keys import Keys
from common.redis_conn import connect_redis, keys_for
from common.settings import Settings, load_settings

T = TypeVar("T")

# An operator's command gives a DynamoDB endpoint that does not answer two tries of 3 s: the
# processes' default (three of 5 s) kept a person waiting 15 s for the one-line error.
CLI_DYNAMO_ATTEMPTS = 2
CLI_DYNAMO_TIMEOUT_S = 3.0


def cli_settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


# what a Redis that is down or silent raises (RedisClusterException, no node of a cluster
# answering, is not a RedisError); a ResponseError is Redis answering, and is not among them
UNREACHABLE = (RedisError, RedisClusterException, OSError)


def with_redis(work: Callable[[aioredis.Redis, Keys, Settings], Awaitable[T]]) -> T:
    """Run ``work`` with a Redis client; a Redis that cannot be reached is one line, exit 2,
    within seconds: one that accepts but never answers is given one timeout, not four (redis-py
    retries a timed-out command three times, 20 s in all)."""
    settings = cli_settings()

    async def go() -> T:
        redis = connect_redis(
            settings, socket_connect_timeout=3, socket_timeout=5, retry_on_timeout=False
        )
        try:
            return await work(redis, keys_for(settings), settings)
        except ResponseError as exc:  # it answered: "cannot reach" would send a person astray
            raise CliError(
                f"Redis at {settings.redacted()['redis_url']} answered with an error: {exc}"
            ) from None
        except UNREACHABLE as exc:
            raise CliError(
                f"cannot reach Redis at {settings.redacted()['redis_url']}: {exc}"
            ) from None
        finally:
            await redis.aclose()

    return asyncio.run(go())


def check_output_file(flag: str, path: Path) -> None:
    """Refuse an output file that cannot be written before the work starts, not after it."""
    if not path.parent.is_dir():
        raise CliError(f"{flag}: directory {path.parent} does not exist")
    if path.is_dir():
        raise CliError(f"{flag}: {path} is a directory, expected a file name")


def write_output_file(flag: str, path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise CliError(f"{flag}: cannot write {path}: {exc.strerror or exc}") from None
