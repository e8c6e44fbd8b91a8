"""10,000 markets (issue 19.2): every position stored as its own item, a halt durable among them,
and all of it back after Redis loses its data.

On the single-item layout the positions item passed DynamoDB's 400 KB limit near 3,600 markets;
the batch carrying the halt was then retried forever: the halt never became durable and nothing
after it was stored.
"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from common.domain import Fill, RiskState, Side
from common.dynamo import Dynamo
from common.events import pnl_event
from common.keys import Keys
from common.redis_codec import decode_position, encode_risk
from common.settings import Settings
from common.streams import append
from services.fills.ledger import apply_fill
from tests.persister.conftest import make_harness

K = Keys()
TS = 1_767_225_600_000
MARKETS = 10_000

pytestmark = pytest.mark.slow


def ticker(n: int) -> str:
    return f"KXSOMEEVENT-26NOV25-M{n:05d}"  # 26 characters, as long as real daily tickers


async def test_ten_thousand_markets_are_stored_one_item_each_and_restored(
    settings: Settings, aredis: aioredis.Redis, db: Dynamo
) -> None:
    persister = make_harness(settings, aredis, db, read_count=1_000, state_interval_ms=60_000)
    await persister.start()  # marks Redis restored: fills may apply
    pipe_started = time.monotonic()
    for n in range(MARKETS):
        side = Side.BID if n % 2 else Side.ASK
        fill = Fill(f"fill-{n}", f"o-{n}", ticker(n), side, 4000 + n % 50, 100 + n % 7, 7, True, TS)
        assert await apply_fill(aredis, K, fill) is not None
    halted = RiskState(True, "daily loss limit", TS, -5, day="2026-01-01", last_check_ms=TS)
    await aredis.hset(K.risk, mapping=encode_risk(halted))
    await append(aredis, K, "pnl", "risk", pnl_event(halted, TS))
    applied_s = time.monotonic() - pipe_started

    started = time.monotonic()
    for _ in range(60):
        await persister.step()
        if persister.service.counters["acked"] >= MARKETS + 1:
            break
    took_s = time.monotonic() - started
    print(f"\n{MARKETS} fills applied in {applied_s:.1f}s, stored in {took_s:.1f}s")
    assert persister.service.counters["acked"] == MARKETS + 1
    stored_risk = persister.db.state.get_risk()
    assert stored_risk is not None and stored_risk.risk.halted  # the halt is durable
    records = persister.db.positions.get_all()
    assert len(records) == MARKETS and persister.service.counters["positions_written"] == MARKETS
    pages = db.client.get_paginator("scan").paginate(TableName="dora_trade_log", Select="COUNT")
    assert sum(page["Count"] for page in pages) == MARKETS

    ours = {
        ticker(n): decode_position(ticker(n), await aredis.hgetall(K.pos(ticker(n))))
        for n in range(MARKETS)
    }
    await aredis.flushall()  # Redis loses its data
    await persister.step()  # the persister notices and restores
    assert await aredis.exists(K.restored)
    for n in range(0, MARKETS, 97):
        t = ticker(n)
        assert decode_position(t, await aredis.hgetall(K.pos(t))) == ours[t]
    assert await aredis.scard(K.fill_ids) == MARKETS  # none of them will be applied again
    assert await aredis.hget(K.risk, "halted") == "1"
    for n in range(0, MARKETS, 1_000):  # a fill delivered again after the restore: once only
        again = Fill(f"fill-{n}", f"o-{n}", ticker(n), Side.BID, 4000, 100, 7, True, TS)
        assert await apply_fill(aredis, K, again) is None
