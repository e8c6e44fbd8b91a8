"""One pipeline per turn of the event loop, each caller its own results (a real redis-server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.batching import Batcher


async def commands_processed(r: aioredis.Redis) -> int:
    return int((await r.info("stats"))["total_commands_processed"])


async def test_concurrent_callers_share_one_round_trip(aredis: aioredis.Redis) -> None:
    batch = Batcher(aredis)

    async def caller(i: int) -> list[Any]:
        return await batch.execute(lambda pipe: (pipe.set(f"k{i}", i), pipe.get(f"k{i}")))

    results = await asyncio.gather(*(caller(i) for i in range(30)))
    assert [r[1] for r in results] == [str(i) for i in range(30)]
    assert batch.round_trips == 1
    # a caller that goes on after its answer starts the next pipeline
    assert await batch.execute(lambda pipe: pipe.get("k7")) == ["7"]
    assert batch.round_trips == 2


async def test_an_error_reaches_only_its_own_caller(aredis: aioredis.Redis) -> None:
    batch = Batcher(aredis)
    await aredis.set("text", "not a number")
    results: list[Any] = await asyncio.gather(
        batch.execute(lambda pipe: pipe.incr("counter")),
        batch.execute(lambda pipe: (pipe.set("x", 1), pipe.incr("text"))),
        return_exceptions=True,
    )
    assert results[0] == [1]
    assert isinstance(results[1], ResponseError)
    assert await aredis.get("x") == "1"  # what came before the error in its own batch ran
    assert batch.round_trips == 1


async def test_a_caller_that_fails_to_queue_sends_nothing(aredis: aioredis.Redis) -> None:
    batch = Batcher(aredis)

    def half_then_fail(pipe: Any) -> None:
        pipe.set("half", 1)
        raise ValueError("bad payload")

    other = asyncio.ensure_future(batch.execute(lambda pipe: pipe.set("other", 1)))
    await asyncio.sleep(0)  # the other caller has queued its command
    with pytest.raises(ValueError, match="bad payload"):
        await batch.execute(half_then_fail)
    assert await other == [True]
    assert await aredis.get("half") is None
    assert await aredis.get("other") == "1"


async def test_nothing_queued_costs_no_round_trip(aredis: aioredis.Redis) -> None:
    batch = Batcher(aredis)
    before = await commands_processed(aredis)
    assert await batch.execute(lambda pipe: None) == []
    await asyncio.sleep(0.01)
    assert batch.round_trips == 0
    assert await commands_processed(aredis) == before + 1  # only the INFO of this test


async def test_a_cancelled_caller_does_not_break_the_others(aredis: aioredis.Redis) -> None:
    batch = Batcher(aredis)
    doomed = asyncio.ensure_future(batch.execute(lambda pipe: pipe.set("doomed", 1)))
    kept = asyncio.ensure_future(batch.execute(lambda pipe: pipe.set("kept", 1)))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await kept == [True]
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await batch.aclose()


async def test_a_lost_connection_reaches_every_caller() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    batch = Batcher(dead)
    results = await asyncio.gather(
        batch.execute(lambda pipe: pipe.get("a")),
        batch.execute(lambda pipe: pipe.get("b")),
        return_exceptions=True,
    )
    assert all(
        isinstance(r, ConnectionError | OSError) or "connect" in str(r).lower() for r in results
    )
    await dead.aclose()


async def test_work_for_meanwhile_runs_once_the_pipeline_is_written(
    aredis: aioredis.Redis,
) -> None:
    """What a caller does while Redis answers (the executor signs the request its ledger step
    clears) runs after the write: Redis has the pipeline's commands when it runs. One that
    fails only costs itself."""
    batch = Batcher(aredis)
    assert batch.direct is not None  # a real Redis over TCP: the batcher's own connection
    seen: list[str] = []

    def sign() -> None:
        seen.append("signed")

    def broken() -> None:
        raise RuntimeError("no key")

    results = await asyncio.gather(
        batch.execute(lambda pipe: pipe.set("m", 1), meanwhile=sign),
        batch.execute(lambda pipe: pipe.get("m"), meanwhile=broken),
    )
    assert results == [[True], ["1"]]
    assert seen == ["signed"]
    assert batch.round_trips == 1
    await batch.close()
