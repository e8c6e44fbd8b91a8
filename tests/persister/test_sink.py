from decimal import Decimal

import orjson
import redis.asyncio as aioredis
from botocore.exceptions import EndpointConnectionError

from common.domain import Fill, Order, OrderStatus, Position, RiskState, Side
from common.dynamo import Dynamo
from common.events import day_closed_event, decision_event, fill_event, order_event, pnl_event
from common.keys import Keys
from common.position_record import PositionRecord
from common.redis_codec import encode_risk
from common.settings import Settings
from common.streams import PERSISTER_GROUP, append
from tests.persister.conftest import Harness, make_harness

K = Keys()
TS = 1_767_225_600_000
TRADES = "dora_trade_log"
DECISIONS = "dora_decision_log"


def order(i: int) -> dict:
    o = Order("KXA", Side.BID, 5600, 1000, f"c-{i}", f"o-{i}", OrderStatus.RESTING)
    return order_event(o, "placed", TS + i)


def fill(i: int) -> dict:
    f = Fill(f"f-{i}", f"o-{i}", "KXA", Side.BID, 5600, 100, 10, False, TS + i)
    return fill_event(f, Position("KXA", position=100 * (i + 1)))


async def pending(redis: aioredis.Redis, stream: str) -> int:
    return int((await redis.xpending(K.stream(stream), PERSISTER_GROUP))["pending"])


async def test_events_become_rows_and_are_acknowledged(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    for i in range(30):
        await append(aredis, K, "orders", "order", order(i))
        await append(aredis, K, "fills", "fill", fill(i))
        await append(
            aredis, K, "decisions", "decision", decision_event("KXA", TS + i, {}, 0, {}, [], [])
        )
    await persister.step(3)
    assert persister.count(TRADES) == 60 and persister.count(DECISIONS) == 30
    for stream in ("orders", "fills", "decisions"):
        assert await pending(aredis, stream) == 0
    # a replay (a producer retry, a reclaim) adds no row
    await append(aredis, K, "fills", "fill", fill(3))
    await append(aredis, K, "orders", "order", order(3))
    await persister.step(2)
    assert persister.count(TRADES) == 60
    lag = orjson.loads(await aredis.get(K.persister_lag))
    assert lag["backlog"] == 0 and set(lag["streams"]) == {"orders", "fills", "decisions", "pnl"}


async def test_nothing_is_acknowledged_until_dynamodb_accepts_it(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    real_write = persister.db.logs.write
    calls = []

    def down(rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        raise EndpointConnectionError(endpoint_url="http://dynamodb")

    persister.db.logs.write = down  # type: ignore[method-assign]
    for i in range(10):
        await append(aredis, K, "orders", "order", order(i))
    await persister.step()
    assert calls == [10] and await pending(aredis, "orders") == 10
    assert persister.ctx.status["dynamodb"] == "failing"
    for i in range(10, 20):  # more arrive meanwhile: they wait in Redis, unread
        await append(aredis, K, "orders", "order", order(i))
    persister.service.backoff.until_ms = 0
    await persister.step()
    assert calls == [10, 10]  # the same batch again; nothing new read
    persister.db.logs.write = real_write  # type: ignore[method-assign]
    persister.service.backoff.until_ms = 0
    await persister.step(3)
    assert persister.count(TRADES) == 20 and await pending(aredis, "orders") == 0
    assert persister.ctx.status["dynamodb"] == "ok"


async def test_a_malformed_event_is_logged_and_acknowledged(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    await aredis.xadd(K.stream("orders"), {"type": "order", "data": "{not json"})
    await append(aredis, K, "orders", "order", {"event": "placed"})
    await append(aredis, K, "orders", "order", order(1))
    await append(aredis, K, "pnl", "pnl", {**pnl_event(RiskState(), TS), "day": "x" * 3000})
    await persister.step()
    assert persister.count(TRADES) == 1 and await pending(aredis, "orders") == 0
    assert await pending(aredis, "pnl") == 0
    assert persister.service.counters["bad_events"] == 3


async def test_entries_of_a_dead_consumer_are_reclaimed(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    for i in range(5):
        await append(aredis, K, "fills", "fill", fill(i))
    # another persister read them and died before storing them
    await aredis.xreadgroup(PERSISTER_GROUP, "dead-1", {K.stream("fills"): ">"}, count=10)
    await persister.step()
    assert persister.count(TRADES) == 0  # not idle long enough yet
    import asyncio

    await asyncio.sleep(0.3)
    persister.service.sink.next_claim_ms = 0
    await persister.step()
    assert persister.count(TRADES) == 5 and await pending(aredis, "fills") == 0


async def test_a_halt_is_stored_before_its_event_is_acknowledged(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    await persister.step()
    halted = RiskState(True, "fat finger", TS, -5, 0, 0, 0, 0, "2026-01-01", TS)
    await aredis.hset(K.risk, mapping=encode_risk(halted))
    await append(aredis, K, "pnl", "risk", pnl_event(halted, TS + 1))
    persister.service.next_state_ms = float("inf")  # only the event may cause the write
    await persister.service._store_batch(persister.ctx)
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.halted and stored.risk.reason == "fat finger"
    assert await pending(aredis, "pnl") == 0
    snapshot = persister.db.state.get_pnl_snapshot("2026-01-01")
    assert snapshot is not None and snapshot["trading_halted"] is True


async def test_a_day_closed_at_its_roll_is_stored_as_the_days_final_snapshot(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """Risk sends the day that ended at each roll: its last recorded state, with the totals it
    ran between; the persister stores it as that day's snapshot in dora_state, for good."""
    await persister.start()
    last = RiskState(
        daily_pnl=-2_000_000, day="2026-01-01", last_check_ms=TS, day_start_pnl=3_000_000
    )
    await append(aredis, K, "pnl", "pnl", pnl_event(last, TS))
    await append(aredis, K, "pnl", "day_closed", day_closed_event(last, TS + 7_200_000))
    await persister.step(2)
    snapshot = persister.db.state.get_pnl_snapshot("2026-01-01")
    assert snapshot is not None and snapshot["closed_ms"] == TS + 7_200_000
    assert snapshot["daily_pnl"] == Decimal("-2") and snapshot["day_end_total"] == Decimal("1")
    assert await pending(aredis, "pnl") == 0


def recorded_fill(i: int, ticker: str = "KXA", version: int | None = None) -> dict:
    """A fill event as fills writes it now: with the market's whole record after it."""
    f = Fill(f"f-{ticker}-{i}", f"o-{i}", ticker, Side.BID, 5600, 100, 10, False, TS + i)
    after = Position(ticker, position=100 * (i + 1), cost=560_000 * (i + 1), last_fill_ms=TS + i)
    record = PositionRecord(after, version or i + 1, ((f.fill_id, f.ts_ms),))
    return fill_event(f, after, record.payload())


async def test_only_the_markets_a_batch_changed_are_written_each_its_newest(
    settings: Settings, aredis: aioredis.Redis, db: Dynamo
) -> None:
    """Issue 19.2: one item per market, written only when it changed (no scan of every
    position, no rewrite of markets that did not move)."""
    persister = make_harness(settings, aredis, db, state_interval_ms=60_000)
    await persister.start()
    await persister.step()
    puts: list[str] = []
    real = persister.db.positions.put

    def put(record: PositionRecord, now_ms: int) -> bool:
        puts.append(record.ticker)
        return real(record, now_ms)

    persister.db.positions.put = put  # type: ignore[method-assign]
    for i in range(3):
        await append(aredis, K, "fills", "fill", recorded_fill(i))
    await append(aredis, K, "fills", "fill", recorded_fill(0, "KXB"))
    await persister.step()
    assert sorted(puts) == ["KXA", "KXB"]  # one write per market, not one per fill
    stored = {r.ticker: r for r in persister.db.positions.get_all()}
    assert stored["KXA"].position.position == 300 and stored["KXA"].version == 3
    risk = RiskState(daily_pnl=-3, day="2026-01-01", last_check_ms=TS)
    await aredis.hset(K.risk, mapping=encode_risk(risk))
    await append(aredis, K, "pnl", "pnl", pnl_event(risk, TS))
    await persister.step()
    assert sorted(puts) == ["KXA", "KXB"]  # a PnL event writes no position
    stored_risk = persister.db.state.get_risk()
    assert stored_risk is not None and stored_risk.risk.daily_pnl == -3
    # a reclaimed, older event never steps a market back
    await append(aredis, K, "fills", "fill", recorded_fill(0))
    await persister.step()
    assert {r.ticker: r.version for r in persister.db.positions.get_all()}["KXA"] == 3


async def test_an_item_dynamodb_refuses_is_parked_and_nothing_else_waits(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """Issue 19.2: the single positions item passed 400 KB near 3,600 markets and its batch, which
    carried a halt, was retried forever. Now the refused item is parked with an alert; the halt
    is durable, the trade log and the other markets are stored, the batch is acknowledged."""
    await persister.start()
    await persister.step()
    refused = "KXHUGE"
    huge = recorded_fill(0, refused)  # a record over DynamoDB's 400 KB item limit
    huge["record"]["recent_fills"] = [[f"{n:0195d}", TS] for n in range(2_100)]
    halted = RiskState(True, "fat finger", TS, -5, 0, 0, 0, 0, "2026-01-01", TS)
    await aredis.hset(K.risk, mapping=encode_risk(halted))
    await append(aredis, K, "pnl", "risk", pnl_event(halted, TS + 1))
    await append(aredis, K, "fills", "fill", huge)
    await append(aredis, K, "fills", "fill", recorded_fill(0, "KXB"))
    await append(aredis, K, "orders", "order", order(1))
    await persister.step(2)
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.halted  # the halt is durable
    assert [r.ticker for r in persister.db.positions.get_all()] == ["KXB"]
    assert persister.count(TRADES) == 3  # both fills and the order
    assert await pending(aredis, "fills") == 0 and await pending(aredis, "pnl") == 0
    parked = await aredis.hgetall(K.persister_parked)
    assert (
        list(parked) == [f"positions#{refused}"]
        and "ValidationException" in parked[f"positions#{refused}"]
    )
    persister.service.next_lag_ms = 0
    await persister.step()
    assert persister.ctx.status["parked"] == 1  # in the heartbeat too
    await append(aredis, K, "fills", "fill", recorded_fill(1, "KXB"))  # the rest goes on
    await persister.step(2)
    assert {r.ticker: r.version for r in persister.db.positions.get_all()} == {"KXB": 2}
