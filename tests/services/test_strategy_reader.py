"""The strategy's stream reader stops when cancelled, even when the cancellation reaches it as
an error of redis-py's own (a blocking read's timeout handling can turn one into another): the
reader took that for "Redis away", slept and read again, for ever, and a stop (or a test's
teardown, once for 300 s on a loaded box) waited on it."""

from __future__ import annotations

import asyncio
from typing import Any

from services.strategy.reader import Batch, StreamReader


class SwallowingReader(StreamReader):
    def __init__(self) -> None:
        self.reads = 0
        log = type("Log", (), {"warning": lambda *a, **k: None})()
        ctx: Any = type("Ctx", (), {"log": log})()
        super().__init__(ctx, {"s": "$"}, fused=False, count=10, block_ms=100)

    async def read_once(self) -> Batch:
        self.reads += 1
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ConnectionError("Connection closed by server.") from None
        return Batch([], {}, 0)


async def test_a_cancel_turned_into_an_error_still_stops_the_reader() -> None:
    reader = SwallowingReader()
    task = asyncio.create_task(reader.run())
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done and reader.reads == 1
