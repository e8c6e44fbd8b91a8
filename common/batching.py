"""Redis commands from many concurrent tasks, sent as one pipeline per turn of the event loop.

The executor runs a pass per market side, and a burst of targets starts dozens of them at
once: each re-reads its market's book, records an order before sending it and records the
answer. One round trip each is one socket write and one read each, on both ends; under churn
those syscalls were the executor's largest cost. A ``Batcher`` gathers the commands queued in
the same turn of the loop into one pipeline. Each caller still awaits its own results before it
goes on, so an order is still recorded before it is sent; only the round trip is shared. On
one Redis over TCP the pipelines go out on a connection of the batcher's own
(``common.direct_redis``: a third of redis-py's cost per round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import redis.asyncio as aioredis

from common.direct_redis import direct_for, run_pipeline
from common.log import get_logger

log = get_logger("batching")


class Batcher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.direct = direct_for(redis)  # None: redis-py's own pipelines
        self._pipe: Any = None  # the pipeline being filled this turn
        self._waiters: list[tuple[int, int, asyncio.Future[list[Any]]]] = []
        self._meanwhile: list[Callable[[], None]] = []  # this turn's work for while Redis answers
        self._sending: set[asyncio.Task[None]] = set()
        self.round_trips = 0  # pipelines sent

    async def execute(
        self, queue: Callable[[Any], object], meanwhile: Callable[[], None] | None = None
    ) -> list[Any]:
        """Queue this caller's commands (``queue(pipe)``) beside everyone else's of this turn of
        the loop and return this caller's results. The first error among them is raised; an
        error of another caller's command is not. ``meanwhile``: called once the pipeline is
        written, while Redis answers (its errors are only logged)."""
        if self._pipe is None:
            self._pipe = self.redis.pipeline(transaction=False)
            # The task's first step runs at the next turn of the loop, as a callback would, and
            # takes what this turn queued; it sends at once (a callback that then started a
            # task cost every round trip one more turn before its write)
            task = asyncio.create_task(self._send_turn())
            self._sending.add(task)  # keep a reference until it is done
            task.add_done_callback(self._sending.discard)
        stack = queued(self._pipe)
        start = len(stack)
        try:
            queue(self._pipe)
        except BaseException:
            del stack[start:]  # none of a failed caller's commands are sent
            raise
        end = len(stack)
        if end == start:
            return []
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((start, end, future))
        if meanwhile is not None:
            self._meanwhile.append(meanwhile)
        return await future

    @property
    def filling(self) -> bool:
        """Commands were queued this turn and are not sent yet."""
        return self._pipe is not None

    async def _send_turn(self) -> None:
        pipe, waiters, meanwhile = self._pipe, self._waiters, self._meanwhile
        self._pipe, self._waiters, self._meanwhile = None, [], []
        if not waiters:
            return
        self.round_trips += 1
        told = partial(_each, meanwhile) if meanwhile else None
        try:
            results = await run_pipeline(pipe, self.direct, raise_on_error=False, on_sent=told)
        except asyncio.CancelledError:
            for _, _, future in waiters:
                future.cancel()
            raise
        except Exception as exc:  # the connection failed: every caller hears of it
            for _, _, future in waiters:
                if not future.done():
                    future.set_exception(exc)
            return
        for start, end, future in waiters:
            if future.done():  # its caller was cancelled meanwhile
                continue
            mine = results[start:end]
            error = next((r for r in mine if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(mine)

    async def aclose(self) -> None:
        """Wait for the pipelines queued or sent (a clean stop loses no record)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def close(self) -> None:
        """Close the batcher's own connection (at the end of a stop; a later call opens it
        again)."""
        if self.direct is not None:
            await self.direct.aclose()


def _each(calls: list[Callable[[], None]]) -> None:
    for call in calls:
        try:
            call()
        except Exception as exc:  # the work it would have saved is done later anyway
            log.warning("meanwhile_failed", error=f"{type(exc).__name__}: {exc}")


def queued(pipe: Any) -> list[Any]:
    """A pipeline's queued commands: ``command_stack`` of one Redis's pipeline, the execution
    strategy's queue of a cluster pipeline (redis-py 8.1)."""
    stack = getattr(pipe, "command_stack", None)
    if stack is None:
        stack = pipe._execution_strategy._command_queue
    assert isinstance(stack, list)
    return stack
