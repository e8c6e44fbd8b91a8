import asyncio

import orjson
import pytest
import redis.asyncio as aioredis

from common.domain import Position, RiskState
from common.dynamo import Dynamo
from common.keys import Keys
from common.position_record import PositionRecord
from common.redis_codec import decode_market_config, decode_position, decode_risk, encode_position
from common.restore import wait_until_restored
from common.settings import Settings, load_settings
from tests.persister.conftest import Harness, make_harness
from tests.support.procs import free_port

K = Keys()
TS = 1_767_225_600_000
HALT = RiskState(True, "daily loss limit", TS, -100_000_000, day="2026-01-01")


def persist_some_state(db: Dynamo) -> dict[str, Position]:
    positions = {
        "KXA": Position("KXA", 500, 2_800_000, 10, 2, TS),
        "KXB": Position("KXB", -200, -900_000, -3, 1, TS + 9),
    }
    for n, position in enumerate(positions.values()):
        fills = ((f"fill-{position.ticker}", position.last_fill_ms),)
        db.positions.put(PositionRecord(position, n + 1, fills), TS)
    db.state.put_risk(HALT, TS + 9, TS)
    db.config.update_market("KXA", {"enabled": True}, "2026-01-01T00:00:00Z")
    return positions


async def test_an_empty_redis_gets_the_persisted_state_back_before_anyone_trades(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    positions = persist_some_state(persister.db)
    stopping = asyncio.Event()
    waiter = asyncio.create_task(wait_until_restored(aredis, K, stopping, poll_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # nobody trades yet
    await persister.start()
    assert await asyncio.wait_for(waiter, 2) is True
    for ticker, position in positions.items():
        assert decode_position(ticker, await aredis.hgetall(K.pos(ticker))) == position
    risk = decode_risk(await aredis.hgetall(K.risk))
    assert risk.halted and risk.reason == "daily loss limit" and risk.daily_pnl == HALT.daily_pnl
    assert await aredis.hget(K.fills_meta, "last_fill_ms") == str(TS + 9)
    assert decode_market_config("KXA", await aredis.hgetall(K.cfg_market("KXA"))).enabled
    marker = orjson.loads(await aredis.get(K.restored))
    assert marker["positions"] == 2 and marker["halted"] is True
    assert marker["risk_restored"] is True  # a dora:risk deleted later is not a fresh install


async def test_a_fresh_install_is_marked_as_having_no_risk_state(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    await persister.start()
    marker = orjson.loads(await aredis.get(K.restored))
    assert marker["risk_restored"] is False and not await aredis.exists(K.risk)


async def test_what_redis_already_holds_is_not_overwritten_except_by_a_halt(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    persist_some_state(persister.db)
    newer = Position("KXA", 900, 5_000_000, 10, 2, TS + 100)
    await aredis.hset(K.pos("KXA"), mapping=encode_position(newer))
    await aredis.hset(K.risk, mapping={"halted": "0", "daily_pnl": "-5"})
    await aredis.hset(K.fills_meta, "last_fill_ms", str(TS + 100))
    await persister.start()
    assert decode_position("KXA", await aredis.hgetall(K.pos("KXA"))) == newer
    risk = decode_risk(await aredis.hgetall(K.risk))
    assert risk.halted and risk.daily_pnl == -5  # the durable halt wins
    assert await aredis.hget(K.fills_meta, "last_fill_ms") == str(TS + 100)


async def test_a_field_written_after_the_loss_does_not_keep_the_stored_risk_state_out(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """The risk process's exchange check writes ``events`` into ``dora:risk`` on its own: landing
    between a FLUSHALL and the restore, it kept the whole stored risk state out (the key was not
    empty), and the risk process then read a key without its trading day as deleted by hand
    and halted trading until a person resumed it (tests/e2e/test_state_recovery.py)."""
    stored = RiskState(False, "", 0, -70_000, day="2026-01-01", last_check_ms=TS, resumed_ms=TS - 5)
    persister.db.state.put_risk(stored, TS, TS)
    await aredis.hset(K.risk, "events", "{}")
    await persister.start()
    fields = await aredis.hgetall(K.risk)
    assert fields["day"] == "2026-01-01" and fields["events"] == "{}"
    risk = decode_risk(fields)
    assert not risk.halted and risk.daily_pnl == -70_000 and risk.resumed_ms == TS - 5


async def test_a_restored_redis_is_left_alone(persister: Harness, aredis: aioredis.Redis) -> None:
    persist_some_state(persister.db)
    await aredis.set(K.restored, "earlier")
    await persister.start()
    assert not await aredis.exists(K.pos("KXA")) and not await aredis.exists(K.risk)


async def test_a_redis_emptied_under_a_running_persister_is_restored_not_mirrored(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    positions = persist_some_state(persister.db)
    await persister.start()
    await persister.step()
    await aredis.flushall()
    await persister.step()
    stored = {r.ticker: r.position for r in persister.db.positions.get_all()}
    assert stored == positions  # not wiped by the empty Redis
    assert await aredis.exists(K.restored) and await aredis.exists(K.pos("KXB"))
    assert decode_risk(await aredis.hgetall(K.risk)).halted
    assert await aredis.xinfo_groups(K.stream("fills"))  # the consumer groups are back


async def test_without_dynamodb_start_fails_and_nothing_is_marked(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    nowhere = load_settings(
        {"DORA_DYNAMODB_ENDPOINT": f"http://127.0.0.1:{free_port()}"}, read_file=False
    )
    db = Dynamo.from_settings(nowhere, max_attempts=1, timeout_s=1)
    harness = make_harness(settings, aredis, db)
    with pytest.raises(Exception, match="connect"):
        await harness.start()
    assert not await aredis.exists(K.restored)


async def test_wait_until_restored_gives_up_when_stopping(aredis: aioredis.Redis) -> None:
    stopping = asyncio.Event()
    stopping.set()
    assert await wait_until_restored(aredis, K, stopping) is False


async def test_the_fills_positions_count_and_the_cursor_come_back_with_them(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """Issue 19.1: fills:seen was neither persisted nor restored, so the backfill applied the
    fills already in the restored positions a second time (-15 against the exchange's -10)."""
    persist_some_state(persister.db)
    settled = PositionRecord(Position("KXS", 0, 0, 7, 1, TS - 50), 4, (("fill-S", TS - 60),))
    tombstone = PositionRecord(
        settled.position, 4, settled.recent_fills, TS - 40, "settle:KXS:" + str(TS - 40)
    )
    persister.db.positions.put(tombstone, TS)
    persister.db.positions.put(PositionRecord(Position("_closed", realized_pnl=7, fees=1), 2), TS)
    persister.db.positions.put_cursor(TS - 1_000, TS - 2_000, TS)
    await persister.start()
    seen = await aredis.smembers(K.fill_ids)
    assert seen == {"fill-KXA", "fill-KXB", "fill-S", f"settle:KXS:{TS - 40}"}
    meta = await aredis.hgetall(K.fills_meta)
    assert meta["backfilled_to_ms"] == str(TS - 1_000) and meta["settled_to_ms"] == str(TS - 2_000)
    assert not await aredis.exists(K.pos("KXS"))  # settled: not in the live set
    assert decode_position("_closed", await aredis.hgetall(K.pos("_closed"))).realized_pnl == 7
    assert await aredis.hget(K.pos("KXB"), "version") == "2"


async def test_the_single_positions_item_is_migrated_by_the_restore(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    from common.dynamo.codec import to_attrs
    from common.dynamo.position_store import position_attrs

    legacy = Position("KXA", 500, 2_800_000, 10, 2, TS)
    attrs = {k: v for k, v in position_attrs(legacy).items() if v is not None}
    persister.db.client.put_item(
        TableName="dora_state", Item=to_attrs({"key": "positions", "positions": {"KXA": attrs}})
    )
    await persister.start()
    assert decode_position("KXA", await aredis.hgetall(K.pos("KXA"))) == legacy
    assert persister.db.positions.legacy_positions() is None  # moved, then deleted
    assert [r.ticker for r in persister.db.positions.get_all()] == ["KXA"]


async def test_a_halt_lifted_by_hand_is_stored_halted_and_comes_back_halted(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """``HSET dora:risk halted 0`` is no resume (DESIGN.md §3): the persister stores the halt as
    still in force, and a Redis that then loses its data comes back halted from DynamoDB."""
    from common.halt import set_halt

    await persister.start()
    await set_halt(aredis, K, "fat finger", TS, "cli")
    await aredis.hset(K.risk, "halted", "0")
    await persister.step()
    stored = persister.db.state.get_risk()
    assert stored is not None and stored.risk.halted and stored.risk.reason == "fat finger"
    await aredis.flushall()
    await persister.step()
    risk = decode_risk(await aredis.hgetall(K.risk))
    assert risk.halted and risk.reason == "fat finger" and risk.halted_ms == TS
    assert await aredis.hget(K.risk, "halted") == "1"


async def test_a_resume_comes_back_resumed_and_an_older_record_still_reads(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """A resume's mark (``resumed_ms``) is stored with the halt, so the restore does not take the
    resumed halt for one in force; a record written before the mark existed ("halted 0" and no
    halt time) restores as not halted."""
    from common.halt import lift_halt, set_halt

    await persister.start()
    await set_halt(aredis, K, "fat finger", TS, "cli")
    await lift_halt(aredis, K, "checked", TS + 5, "cli")
    await persister.step()
    await aredis.flushall()
    await persister.step()
    assert not decode_risk(await aredis.hgetall(K.risk)).halted
    persister.db.client.delete_item(TableName="dora_state", Key={"key": {"S": "risk_state"}})
    persister.db.client.put_item(
        TableName="dora_state",
        Item={"key": {"S": "risk_state"}, "trading_halted": {"BOOL": False}},
    )
    await aredis.flushall()
    await persister.step()
    assert not decode_risk(await aredis.hgetall(K.risk)).halted
    assert await aredis.exists(K.risk)


async def test_a_halt_restored_over_a_resume_redis_holds_is_not_lifted_by_a_hand_edit(
    persister: Harness, aredis: aioredis.Redis
) -> None:
    """The durable halt wins over what Redis holds, its resume mark too: ``halted 0`` written
    by hand afterwards is no resume."""
    persist_some_state(persister.db)
    await aredis.hset(K.risk, mapping={"halted": "0", "resumed_ms": str(TS + 100)})
    await persister.start()
    assert decode_risk(await aredis.hgetall(K.risk)).halted
    await aredis.hset(K.risk, "halted", "0")
    assert decode_risk(await aredis.hgetall(K.risk)).halted
