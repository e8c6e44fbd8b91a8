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


async def test_a_burst_of_book_changes_is_heard_in_one_read(aredis: Any, settings: Any) -> None:
    """Redis answers a blocked XREAD at the first XADD that feeds it: of marketdata's flush (one
    pipeline of several markets' books) the strategy heard the first market alone, and every
    other one waited for it to wake, read again and be answered (half the ticks on the latency
    bench). The script pipelined behind the read runs after the whole burst: its entries are
    the batch."""
    from common.clock import Clock
    from common.keys import Keys
    from common.log import get_logger
    from common.messages import decode_event, encode_event
    from common.runtime import Context

    k = Keys()
    ctx = Context("strategy", settings, aredis, k, Clock(), get_logger("strategy"))
    tickers = [f"KX-{i}" for i in range(5)]
    for ticker in tickers:
        await aredis.hset(k.book(ticker), mapping={"seq": "1"})
    reader = StreamReader(ctx, {k.stream("md"): "0-0"}, fused=True, count=100, block_ms=5_000)
    read = asyncio.create_task(reader.read_once())
    await asyncio.sleep(0.2)  # the read is waiting in Redis
    pipe = aredis.pipeline(transaction=False)
    for ticker in tickers:
        pipe.xadd(k.stream("md"), encode_event("book", {"ticker": ticker}))
    await pipe.execute()
    batch = await asyncio.wait_for(read, 5)
    ((_, entries),) = batch.response
    assert [decode_event(fields)[1]["ticker"] for _, fields in entries] == tickers
    assert sorted(batch.states) == tickers and batch.states["KX-3"].book == {"seq": "1"}
    assert reader.stream_ids[k.stream("md")] == entries[-1][0]
