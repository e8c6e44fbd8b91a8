"""``common.direct_redis``: a pipeline sent on a connection of its own answers as redis-py does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from common.direct_redis import DirectRedis, direct_for
from common.redis_conn import connect_redis
from common.runtime import run_loop
from common.settings import load_settings

SCRIPT = "return {KEYS[1], redis.call('HGETALL', KEYS[1]), tonumber(ARGV[1]) + 1}"


def _queue_everything(pipe: Any, sha: str) -> None:
    pipe.hset("d:h", mapping={"a": "1", "b": "x y"})
    pipe.hgetall("d:h")
    pipe.hgetall("d:missing")
    pipe.xadd("d:s", {"type": "book", "data": '{"ticker":"KX"}'}, id="5-1")
    pipe.xread({"d:s": "0-0"}, count=10)
    pipe.xread({"d:s": "0-0"}, count=10, block=10)
    pipe.xrange("d:s", "-", "+")
    pipe.xrevrange("d:s", count=1)
    pipe.eval(SCRIPT, 1, "d:h", 41)
    pipe.evalsha(sha, 1, "d:h", 1)
    pipe.evalsha("0" * 40, 0)  # NOSCRIPT
    pipe.set("d:str", "v")
    pipe.hgetall("d:str")  # WRONGTYPE
    pipe.hincrby("d:h", "n", 3)
    pipe.exists("d:h", "d:missing")
    pipe.delete("d:gone")


async def test_a_pipeline_answers_what_redis_py_answers(aredis: aioredis.Redis) -> None:
    sha = await aredis.script_load(SCRIPT)
    expected_pipe = aredis.pipeline(transaction=False)
    _queue_everything(expected_pipe, sha)
    expected = await expected_pipe.execute(raise_on_error=False)
    await aredis.flushall()
    sha = await aredis.script_load(SCRIPT)

    direct = direct_for(aredis)
    assert direct is not None
    pipe = aredis.pipeline(transaction=False)
    _queue_everything(pipe, sha)
    got = await direct.execute(pipe, raise_on_error=False)
    await direct.aclose()

    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        if isinstance(theirs, Exception):
            assert type(mine) is type(theirs)
            assert str(mine) == str(theirs)
        else:
            assert mine == theirs
    assert isinstance(got[10], NoScriptError)
    assert got[3] == "5-1" and got[4] == [
        ["d:s", [("5-1", {"type": "book", "data": '{"ticker":"KX"}'})]]
    ]


async def test_the_first_error_is_raised_when_asked(aredis: aioredis.Redis) -> None:
    direct = direct_for(aredis)
    assert direct is not None
    await aredis.set("d:str", "v")
    pipe = aredis.pipeline(transaction=False)
    pipe.hset("d:h", "a", "1")
    pipe.hgetall("d:str")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await direct.execute(pipe)
    assert await aredis.hget("d:h", "a") == "1"  # the rest of the pipeline ran
    await direct.aclose()


async def test_a_cancelled_caller_leaves_its_answer_to_nobody(aredis: aioredis.Redis) -> None:
    """Two pipelines on one connection: the first (a blocking read) is cancelled while Redis
    holds it; its answer, when it comes, is not taken for the second's."""
    direct = direct_for(aredis)
    assert direct is not None
    await aredis.set("d:k", "mine")
    blocked = aredis.pipeline(transaction=False)
    blocked.xread({"d:empty": "$"}, count=1, block=300)
    read = asyncio.create_task(direct.execute(blocked, block_s=0.3))
    await asyncio.sleep(0.05)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    pipe = aredis.pipeline(transaction=False)
    pipe.get("d:k")
    assert await asyncio.wait_for(direct.execute(pipe), 5) == ["mine"]
    await direct.aclose()


async def test_many_callers_at_once_each_get_their_own_answers(aredis: aioredis.Redis) -> None:
    direct = direct_for(aredis)
    assert direct is not None

    async def one(i: int) -> list[Any]:
        pipe = aredis.pipeline(transaction=False)
        pipe.set(f"d:n:{i}", i)
        pipe.incrby(f"d:n:{i}", i)
        return await direct.execute(pipe)

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert results == [[True, 2 * i] for i in range(50)]
    await direct.aclose()


async def test_a_connection_the_server_closed_is_opened_again(aredis: aioredis.Redis) -> None:
    direct = direct_for(aredis)
    assert direct is not None
    pipe = aredis.pipeline(transaction=False)
    pipe.client_setname("dora-direct-test")
    await direct.execute(pipe)
    killed = await aredis.client_kill_filter(_type="normal", skipme=True, laddr=None, user=None)
    assert killed >= 1
    await asyncio.sleep(0.05)
    pipe = aredis.pipeline(transaction=False)
    pipe.ping()
    assert await direct.execute(pipe) == [True]
    await direct.aclose()


async def test_an_acl_user_and_a_database_from_the_url(
    redis_url: str, aredis: aioredis.Redis
) -> None:
    await aredis.acl_setuser(
        "dora-direct", enabled=True, passwords=["+s3cret"], keys="*", commands=["+@all"]
    )
    try:
        url = redis_url.replace("redis://", "redis://dora-direct:s3cret@").rsplit("/", 1)[0] + "/3"
        client = connect_redis(load_settings({"DORA_REDIS_URL": url}, read_file=False))
        direct = direct_for(client)
        assert direct is not None
        pipe = client.pipeline(transaction=False)
        pipe.set("d:in3", "yes")
        await direct.execute(pipe)
        assert await client.get("d:in3") == "yes"  # redis-py reads it from database 3 too
        assert await aredis.get("d:in3") is None  # not in database 0
        bad = DirectRedis({**client.connection_pool.connection_kwargs, "password": "wrong"})
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        with pytest.raises(Exception) as raised:
            await bad.execute(pipe)
        assert "wrong" not in str(raised.value)
        await direct.aclose()
        await client.aclose()
    finally:
        await aredis.acl_deluser("dora-direct")


def test_anything_but_one_redis_over_tcp_keeps_redis_py(fake_redis: aioredis.Redis) -> None:
    assert direct_for(fake_redis) is None
    tls = aioredis.Redis.from_url("rediss://127.0.0.1:1/0")
    assert direct_for(tls) is None
    unix = aioredis.Redis.from_url("unix:///tmp/none.sock")
    assert direct_for(unix) is None
    assert direct_for(aioredis.Redis.from_url("redis://127.0.0.1:1/0")) is not None


def test_on_uvloop_as_the_services_run(redis_url: str) -> None:
    """The services run on uvloop, whose transports are not asyncio's classes."""

    async def main() -> list[Any]:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        direct = direct_for(client)
        assert direct is not None
        pipe = client.pipeline(transaction=False)
        pipe.set("d:uv", "1")
        pipe.get("d:uv")
        try:
            return await direct.execute(pipe)
        finally:
            await direct.aclose()
            await client.aclose()

    assert run_loop(main(), uvloop=True) == [True, "1"]


async def test_on_sent_is_told_once_the_pipeline_is_written(aredis: aioredis.Redis) -> None:
    direct = direct_for(aredis)
    assert direct is not None
    told: list[bool] = []
    blocked = aredis.pipeline(transaction=False)
    blocked.blpop(["d:list"], timeout=1)
    read = asyncio.create_task(
        direct.execute(blocked, block_s=1, on_sent=lambda: told.append(True))
    )
    await asyncio.sleep(0.05)
    assert told == [True] and not read.done()  # written, Redis holds it
    await aredis.rpush("d:list", "x")
    (popped,) = await asyncio.wait_for(read, 5)
    assert list(popped) == ["d:list", "x"]
    assert told == [True]
    await direct.aclose()
