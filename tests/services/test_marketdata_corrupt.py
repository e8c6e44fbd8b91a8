"""A ``dora:book:{t}`` or ``dora:market:{t}`` replaced by hand with a value of the wrong type:
the write of that market's key raised WRONGTYPE after the pipeline ran, so every step that
published it failed and the step backoff (up to seconds) held back every other market's books.
Marketdata derives these keys from the exchange: the bad key is deleted (logged) and written
whole by the next write, and the other markets are published as usual."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.book import YesBook
from common.clock import Clock
from common.domain import MarketMeta, MarketStatus
from common.grid import PriceGrid
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_book, decode_market
from common.runtime import Context
from common.settings import Settings
from services.marketdata.facts import MarketFacts
from services.marketdata.service import MarketdataService
from tests.services.test_marketdata import StubSocket

K = Keys()
BAD, GOOD = "KX-A", "KX-B"


async def test_a_book_key_of_the_wrong_type_is_written_again_and_the_others_go_out(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    ws = StubSocket()
    service = MarketdataService(settings, ws=ws)  # type: ignore[arg-type]
    ctx = Context("marketdata", settings, aredis, K, Clock(), get_logger("marketdata"))
    for ticker in (BAD, GOOD):
        ws.books[ticker] = YesBook(((4000, 100),), ((4400, 100),))
    await aredis.set(K.book(BAD), "garbage")
    service.dirty = {BAD, GOOD}
    await service._flush_books(ctx)  # raised WRONGTYPE
    assert decode_book(GOOD, await aredis.hgetall(K.book(GOOD))).book.best_bid == 4000
    assert not await aredis.exists(K.book(BAD)) and service.dirty == {BAD}
    await service._flush_books(ctx)
    assert decode_book(BAD, await aredis.hgetall(K.book(BAD))).book.best_ask == 4400
    assert service.dirty == set()


async def test_a_market_key_of_the_wrong_type_is_written_again(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    ctx = Context("marketdata", settings, aredis, K, Clock(), get_logger("marketdata"))
    facts = MarketFacts(ctx, None, None)  # type: ignore[arg-type]
    for ticker in (BAD, GOOD):
        facts.meta[ticker] = MarketMeta(ticker, MarketStatus.ACTIVE, 0, PriceGrid.linear_cent())
    await aredis.set(K.market(BAD), "closed")
    facts.dirty = {BAD, GOOD}
    await facts.write()
    assert decode_market(GOOD, await aredis.hgetall(K.market(GOOD))).status is MarketStatus.ACTIVE
    assert facts.dirty == {BAD}
    await facts.write()
    assert decode_market(BAD, await aredis.hgetall(K.market(BAD))).status is MarketStatus.ACTIVE
