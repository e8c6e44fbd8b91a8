import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from common.book import YesBook
from common.clock import Clock
from common.config import MarketConfig
from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.kalshi.ws import KalshiWebSocket
from common.kalshi.ws_events import BookUpdated
from common.keys import Keys
from common.log import get_logger
from common.messages import decode_event
from common.redis_codec import decode_book, decode_market, encode_market_config
from common.runtime import Context
from common.settings import Settings
from services.marketdata.owned_keys import execute_owned
from services.marketdata.service import MarketdataService
from tests.support.simfix import StartSim, sim_control
from tests.support.state import mark_restored


async def enable(r: aioredis.Redis, k: Keys, tickers: list[str]) -> None:
    await mark_restored(r, k)
    for t in tickers:
        await r.sadd(k.cfg_markets, t)
        await r.hset(
            k.cfg_market(t), mapping=encode_market_config(MarketConfig(t, enabled=True), 1)
        )


def offline(
    settings: Settings,
    aredis: aioredis.Redis,
    client: KalshiClient,
    signer: Signer,
    tickers: list[str],
) -> tuple[MarketdataService, Context, KalshiWebSocket]:
    """A marketdata service over REST ``client`` whose socket never connects (frames are the
    test's to deliver), with its context; not started. ``enable`` the markets first."""
    dead = KalshiWebSocket("ws://127.0.0.1:9/trade-api/ws/v2", signer, tickers=tickers)
    service = MarketdataService(settings, client=client, ws=dead)
    ctx = Context("marketdata", settings, aredis, Keys(), Clock(), get_logger("marketdata"))
    return service, ctx, dead


@pytest.fixture
async def two_markets(
    settings: Settings, aredis: aioredis.Redis, start_sim: StartSim, signer: Signer
) -> AsyncIterator[tuple[MarketdataService, Context, KalshiWebSocket, list[str]]]:
    """``offline`` on the simulator's first two markets, started; stopped after the test."""
    running = await start_sim(agents=False)
    client = KalshiClient.create(running.rest_url, signer)
    tickers = sorted(m.ticker for m in await client.get_markets())[:2]
    await enable(aredis, Keys(), tickers)
    service, ctx, dead = offline(settings, aredis, client, signer, tickers)
    await service.start(ctx)
    try:
        yield service, ctx, dead, tickers
    finally:
        with contextlib.suppress(Exception):
            await service.stop(ctx)


async def run_until(service: MarketdataService, ctx: Context, done, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        await service.step(ctx)
        if await done():
            return True
    return False


async def test_books_and_lifecycle_reach_redis(
    settings: Settings, aredis: aioredis.Redis, start_sim: StartSim, signer: Signer
) -> None:
    running = await start_sim(agents=True)
    client = KalshiClient.create(running.rest_url, signer)
    tickers = sorted(m.ticker for m in await client.get_markets())[:3]
    k = Keys()
    await enable(aredis, k, tickers)
    ws = KalshiWebSocket(running.ws_url, signer, tickers=tickers, on_event=None)
    service = MarketdataService(settings, client=client, ws=ws)
    ws._on_event = service._on_ws_event
    ctx = Context("marketdata", settings, aredis, k, Clock(), get_logger("marketdata"))
    await service.start(ctx)
    try:

        async def fresh() -> bool:
            books = [await aredis.hgetall(k.book(t)) for t in tickers]
            return all(
                b and not decode_book("x", b).stale and decode_book("x", b).book.is_two_sided
                for b in books
            )

        assert await run_until(service, ctx, fresh, 10), "books never became fresh"
        for t in tickers:
            rest = await client.get_order_book(t)
            ours = decode_book(t, await aredis.hgetall(k.book(t))).book
            assert (
                ours.best_bid == rest.best_bid or ours.best_ask == rest.best_ask
            )  # the flow moves on
        await sim_control(running, "POST", f"/_sim/markets/{tickers[0]}/pause")

        async def paused() -> bool:
            return (
                decode_market(tickers[0], await aredis.hgetall(k.market(tickers[0]))).status
                == "inactive"
            )

        assert await run_until(service, ctx, paused, 2), (
            "a pause did not reach dora:market within 2 s"
        )
        assert await aredis.xlen(k.stream("md")) > 0
    finally:
        await service.stop(ctx)


async def test_rest_polling_when_the_socket_cannot_connect(
    settings: Settings, aredis: aioredis.Redis, start_sim: StartSim, signer: Signer
) -> None:
    running = await start_sim(agents=True)
    client = KalshiClient.create(running.rest_url, signer)
    tickers = sorted(m.ticker for m in await client.get_markets())[:2]
    k = Keys()
    await enable(aredis, k, tickers)
    dead = KalshiWebSocket(
        "ws://127.0.0.1:9/trade-api/ws/v2",
        signer,
        tickers=tickers,
        reconnect_base_s=0.1,
        open_timeout_s=0.5,
    )
    service = MarketdataService(settings, client=client, ws=dead)
    dead._on_event = service._on_ws_event
    ctx = Context("marketdata", settings, aredis, k, Clock(), get_logger("marketdata"))
    await service.start(ctx)
    try:

        async def polled() -> bool:
            fields = [await aredis.hgetall(k.book(t)) for t in tickers]
            return all(f.get("source") == "rest" and f.get("stale") == "0" for f in fields)

        assert await run_until(service, ctx, polled, 10), "no REST fallback books"
    finally:
        with contextlib.suppress(Exception):
            await service.stop(ctx)


async def test_the_periodic_market_refresh_announces_only_what_changed(
    settings: Settings, aredis: aioredis.Redis, start_sim: StartSim, signer: Signer
) -> None:
    """Every 30 s marketdata re-reads every market. Each hash is rewritten, but a market event
    (which makes the strategy recompute that market) goes out only for a market that changed:
    announcing all of them recomputed every market in one step."""
    running = await start_sim(agents=False)
    client = KalshiClient.create(running.rest_url, signer)
    tickers = sorted(m.ticker for m in await client.get_markets())[:3]
    k = Keys()
    await enable(aredis, k, tickers)
    dead = KalshiWebSocket("ws://127.0.0.1:9/trade-api/ws/v2", signer, tickers=tickers)
    service = MarketdataService(settings, client=client, ws=dead)
    ctx = Context("marketdata", settings, aredis, k, Clock(), get_logger("marketdata"))

    async def announced() -> list[str]:
        entries = await aredis.xrange(k.stream("md"))
        return [
            payload["ticker"]
            for kind, payload in (decode_event(fields) for _, fields in entries)
            if kind == "market"
        ]

    await service.start(ctx)
    try:
        assert sorted(await announced()) == tickers  # the first read announces every market
        before = decode_market(tickers[0], await aredis.hgetall(k.market(tickers[0])))
        await asyncio.sleep(0.01)
        await service.facts.refresh(tickers)  # type: ignore[union-attr]
        assert sorted(await announced()) == tickers  # nothing changed: nothing announced
        after = decode_market(tickers[0], await aredis.hgetall(k.market(tickers[0])))
        assert after.updated_ms > before.updated_ms  # but the hash was rewritten
        await sim_control(running, "POST", f"/_sim/markets/{tickers[1]}/pause")
        await service.facts.refresh(tickers)  # type: ignore[union-attr]
        assert sorted(await announced()) == sorted([*tickers, tickers[1]])
        paused = decode_market(tickers[1], await aredis.hgetall(k.market(tickers[1])))
        assert paused.status == "inactive"
    finally:
        with contextlib.suppress(Exception):
            await service.stop(ctx)


class StubSocket:
    """What ``_flush_books`` reads of the socket: books, staleness, seq and exchange time."""

    def __init__(self) -> None:
        self.books: dict[str, YesBook] = {}
        self.stale: dict[str, str] = {}
        self.book_seq: dict[str, int] = {}
        self.book_ms: dict[str, int] = {}

    def yes_book(self, ticker: str) -> YesBook | None:
        return self.books.get(ticker)

    def is_stale(self, ticker: str) -> bool:
        return ticker in self.stale


async def test_a_change_below_the_top_levels_updates_the_hash_without_waking_anyone(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k, ws = Keys(), StubSocket()
    service = MarketdataService(settings, ws=ws)  # type: ignore[arg-type]
    ctx = Context("marketdata", settings, aredis, k, Clock(), get_logger("marketdata"))
    bids = [(5000 - 100 * i, 100) for i in range(8)]
    asks = [(5200 + 100 * i, 100) for i in range(8)]

    async def flush(book: YesBook) -> int:
        ws.books["KX"] = book
        service.dirty.add("KX")
        await service._flush_books(ctx)
        return int(await aredis.xlen(k.stream("md")))

    assert await flush(YesBook(tuple(bids), tuple(asks))) == 1
    deep = [*bids[:7], (bids[7][0], 900)]  # the eighth level only
    assert await flush(YesBook(tuple(deep), tuple(asks))) == 1
    assert decode_book("KX", await aredis.hgetall(k.book("KX"))).book.bids[7] == (4300, 900)
    fifth = [*bids[:4], (bids[4][0], 300), *bids[5:]]  # within the top five: announced
    assert await flush(YesBook(tuple(fifth), tuple(asks))) == 2
    ws.stale["KX"] = "gap"  # same levels, now stale: announced
    assert await flush(YesBook(tuple(fifth), tuple(asks))) == 3
    assert service.counts["deep_only"] == 1


@pytest.mark.parametrize("facts_pending", [False, True])
async def test_a_step_publishes_the_books_before_its_housekeeping(
    aredis: aioredis.Redis,
    two_markets: tuple[MarketdataService, Context, KalshiWebSocket, list[str]],
    facts_pending: bool,
) -> None:
    """A tick does not wait for the step's Redis reads and REST polls: the books go out first,
    unless market facts are waiting to be written (a pause goes out before a book)."""
    service, ctx, _, tickers = two_markets
    k = ctx.keys
    published_first: list[bool] = []

    class Watch:
        async def restored_again(self, *_: object) -> bool:  # the step's first housekeeping
            published_first.append(bool(await aredis.exists(k.book(tickers[0]))))
            return False

    service.restore = Watch()  # type: ignore[assignment]
    await aredis.delete(k.book(tickers[0]))
    service.dirty = {tickers[0]}
    if facts_pending:
        service.facts.dirty.add(tickers[1])  # type: ignore[union-attr]
    service.wake.set()
    await service.step(ctx)
    assert published_first == [not facts_pending]
    assert await aredis.exists(k.book(tickers[0]))  # published within the step either way


@pytest.mark.parametrize("held_by", ["", "facts", "rest_poll"])
async def test_a_book_goes_out_while_the_housekeeping_waits(
    aredis: aioredis.Redis,
    two_markets: tuple[MarketdataService, Context, KalshiWebSocket, list[str]],
    held_by: str,
) -> None:
    """A frame that arrives while the step's housekeeping waits on Redis (or a REST poll) is
    published then, not after the housekeeping; unless a market's facts came meanwhile and are
    not written yet, or the books' REST poll runs (the socket back during it): then the book
    waits for them."""
    service, ctx, dead, tickers = two_markets
    k = ctx.keys
    entered, released = asyncio.Event(), asyncio.Event()

    class SlowWatch:
        async def restored_again(self, *_: object) -> bool:  # a Redis read that takes a while
            entered.set()
            await released.wait()
            return False

    step: asyncio.Task[None] | None = None
    try:
        service.restore = SlowWatch()  # type: ignore[assignment]
        await dead.close()  # no more reconnects to say it is down: the frames come from here
        service.ws_down = False  # the socket is up (the REST poll would write the books)
        service.wake.set()
        step = asyncio.create_task(service.step(ctx))
        await asyncio.wait_for(entered.wait(), 5)
        await aredis.delete(k.book(tickers[0]))
        if held_by == "facts":
            service.facts.dirty.add(tickers[1])  # type: ignore[union-attr]  # a pause, noted
        service.polling = held_by == "rest_poll"  # its books, older than the frame, go first
        service._on_ws_event(BookUpdated(tickers[0], 7, 0))  # then a frame
        await asyncio.sleep(0.3)
        published_meanwhile = bool(await aredis.exists(k.book(tickers[0])))
        released.set()
        await asyncio.wait_for(step, 10)
        assert published_meanwhile is (held_by == "")
        assert await aredis.exists(k.book(tickers[0]))  # after the facts, at the latest
    finally:
        released.set()
        if step is not None:
            with contextlib.suppress(Exception):
                await step


async def test_books_a_failed_flush_did_not_write_go_out_with_the_next(
    aredis: aioredis.Redis,
    two_markets: tuple[MarketdataService, Context, KalshiWebSocket, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis refused a flush (a dropped connection): its books are not forgotten until their
    markets' next frames, they go out with the next flush, announced on the md stream."""
    service, ctx, dead, tickers = two_markets
    k = ctx.keys
    await dead.close()
    await service.step(ctx)  # the first books out
    await aredis.delete(k.book(tickers[0]), k.stream("md"))

    async def refused(*_: object, **__: object) -> set[str]:
        raise ConnectionError("Redis went away")

    monkeypatch.setattr("services.marketdata.service.execute_owned", refused)
    service._on_ws_event(BookUpdated(tickers[0], 7, 0))
    with pytest.raises(ConnectionError):
        await service._flush_books(ctx)
    monkeypatch.setattr("services.marketdata.service.execute_owned", execute_owned)
    await service._flush_books(ctx)
    assert await aredis.exists(k.book(tickers[0]))
    announced = [decode_event(f)[1]["ticker"] for _, f in await aredis.xrange(k.stream("md"))]
    assert tickers[0] in announced
