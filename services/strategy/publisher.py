"""The strategy's publisher: each computation's targets go out without the step waiting."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ResponseError

from common.direct_redis import direct_for, run_pipeline
from common.runtime import Context


class Publisher:
    """Sends each computation's targets (one pipeline) without the step waiting for Redis's
    answer. A pipeline waits only for those still on their way that hold one of its markets (a
    market's targets never overtake each other); the others go at once, on connections of their
    own (on one Redis over TCP: one connection of the publisher's own, through hiredis, which
    answers them in order; ``common.direct_redis``). When a pipeline fails, its markets are
    forgotten as published (``last``): their next computation publishes them again. The sweep's
    reads share that connection (``StrategyService._compute``)."""

    def __init__(self, ctx: Context, last: dict[str, dict[str, str]]) -> None:
        self.ctx = ctx
        self.last = last
        self.inflight: dict[asyncio.Task[None], frozenset[str]] = {}
        self.direct = direct_for(ctx.redis)

    async def connect(self) -> None:
        if self.direct is not None:
            await self.direct.connect()

    def send(self, pipe: Any, tickers: list[str]) -> None:
        if not tickers:
            return
        names = frozenset(tickers)
        before = [task for task, held in self.inflight.items() if not held.isdisjoint(names)]
        task = asyncio.create_task(self._send(before, pipe, tickers))
        self.inflight[task] = names
        task.add_done_callback(lambda done: self.inflight.pop(done, None))

    async def _send(self, before: list[asyncio.Task[None]], pipe: Any, tickers: list[str]) -> None:
        if before:
            await asyncio.wait(before)
        try:
            # per market: HSET dora:targets:T, XADD. A targets key of the wrong type (a person's
            # SET) is this process's own: deleted, and that market published again
            results = await run_pipeline(pipe, self.direct, raise_on_error=False)
            for ticker, written in zip(tickers, results[::2], strict=False):
                if isinstance(written, ResponseError):
                    key = self.ctx.keys.targets(ticker)
                    self.ctx.log.warning(
                        "bad_key_replaced", market=ticker, key=key, reason=str(written)
                    )
                    await self.ctx.redis.delete(key)
                    self.last.pop(ticker, None)
            for i, result in enumerate(results):  # any other error: as before
                if isinstance(result, Exception) and not (
                    i % 2 == 0 and isinstance(result, ResponseError)
                ):
                    raise result
        except Exception as exc:
            for ticker in tickers:
                self.last.pop(ticker, None)
            self.ctx.log.warning(
                "publish_failed", error=f"{type(exc).__name__}: {exc}", markets=len(tickers)
            )

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Wait for what is being sent (at stop)."""
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=timeout_s)
        if self.direct is not None:
            await self.direct.aclose()
