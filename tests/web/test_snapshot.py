"""The dashboard's read model: the numbers ``dora status`` shows, and tolerance of bad data."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from bench.synthetic import World, churn, seed
from cli.status_view import gather
from common.keys import Keys
from services.web.snapshot import ViewBuilder, build_view, read_raw

NOW_MS = 1_796_400_000_000


async def test_every_market_row_has_the_numbers_dora_status_shows(
    aredis: aioredis.Redis, keys: Keys
) -> None:
    world = World(30, seed=3)
    await seed(aredis, keys, world, NOW_MS)
    for step in range(20):  # fills, moved books: positions and PnL away from zero
        await churn(aredis, keys, world, NOW_MS + step * 100)
    view = build_view(await read_raw(aredis, keys, NOW_MS))
    status = await gather(aredis, keys)
    ours = {row["ticker"]: row for row in view["markets"]}
    assert set(ours) == {m["ticker"] for m in status["markets"]} == set(world.tickers)
    assert any(row["position"] for row in ours.values())
    assert any(row["unrealized_pnl"] for row in ours.values())
    for market in status["markets"]:
        row = ours[market["ticker"]]
        for name in ("position", "realized_pnl", "unrealized_pnl", "best_bid", "best_ask"):
            mine = row[{"best_bid": "bid", "best_ask": "ask"}.get(name, name)]
            assert mine == market[name], (market["ticker"], name)
        assert row["pnl"] == market["realized_pnl"] + market["unrealized_pnl"]
        assert {s: q["price"] for s, q in row["quotes"].items()} == {
            s: q["price"] for s, q in market["quotes"].items()
        }
        assert row["reason"] == market["why"]
    assert view["risk"] == {k: status["risk"][k] for k in view["risk"]}
    assert [f["fill_id"] for f in view["fills"]][:8] == [
        f["fill_id"] for f in status["recent_fills"]
    ]


async def test_one_bad_hash_spoils_only_its_own_row(aredis: aioredis.Redis, keys: Keys) -> None:
    world = World(3)
    await seed(aredis, keys, world, NOW_MS)
    bad, good = world.tickers[0], world.tickers[1]
    await aredis.hset(keys.pos(bad), "position", "not-a-number")
    await aredis.hset(keys.cfg_market(good), "max_inventory_yes", "-1")
    await aredis.hset(keys.orders(good), "broken", "{not json")
    await aredis.hset(keys.risk, "daily_pnl", "x")
    await aredis.set(keys.hb("fills"), "garbage")
    view = build_view(await read_raw(aredis, keys, NOW_MS))
    rows = {row["ticker"]: row for row in view["markets"]}
    assert rows[bad]["position"] is None and "position" in rows[bad]["error"]
    assert rows[good]["cap_yes"] is None and "max_inventory_yes" in rows[good]["error"]
    assert rows[good]["position"] == 0 and set(rows[good]["quotes"]) == {"bid", "ask"}
    assert rows[world.tickers[2]]["error"] == ""
    assert "daily_pnl" in view["risk"]["error"]
    assert view["processes"]["fills"]["error"] == "heartbeat does not decode"
    assert orjson.dumps(view)  # the page gets it whole


async def test_missing_data_shows_as_absent_never_invented(
    aredis: aioredis.Redis, keys: Keys
) -> None:
    await aredis.sadd(keys.cfg_markets, "NEW-1")
    view = build_view(await read_raw(aredis, keys, NOW_MS))
    (row,) = view["markets"]
    assert row["bid"] is None and row["ask"] is None and row["quotes"] == {}
    assert row["enabled"] is False and row["target_bid"] is None
    assert view["exchange"] is None and view["events"] is None
    assert view["limits"]["max_event_loss"] is None
    assert all(not p["alive"] for p in view["processes"].values())


async def test_event_limits_and_exchange_state_appear_when_recorded(
    aredis: aioredis.Redis, keys: Keys
) -> None:
    await aredis.hset(keys.cfg_global, "max_event_loss", "50.00")
    events = {"EV-1": {"worst_loss": 12_000_000}, "EV-2": {"worst_loss": 3, "limit": 9_000_000}}
    await aredis.hset(keys.risk, "events", orjson.dumps(events).decode())
    await aredis.hset(keys.exchange, mapping={"trading_active": "1", "next_pause": "Thu 03:00 ET"})
    view = build_view(await read_raw(aredis, keys, NOW_MS))
    assert view["limits"]["max_event_loss"] == 50_000_000
    assert view["events"] == [
        {"event": "EV-1", "worst_loss": 12_000_000, "limit": 50_000_000},
        {"event": "EV-2", "worst_loss": 3, "limit": 9_000_000},
    ]
    assert view["exchange"] == {"trading_active": "1", "next_pause": "Thu 03:00 ET"}


async def test_the_builder_reuses_unchanged_rows_and_the_slow_keys_between_full_reads(
    aredis: aioredis.Redis, keys: Keys
) -> None:
    world = World(20)
    await seed(aredis, keys, world, NOW_MS)
    builder = ViewBuilder()
    first = builder.build(await read_raw(aredis, keys, NOW_MS))
    moved = world.tickers[3]
    await aredis.hset(keys.book(moved), "best_bid", "100")
    await aredis.hset(keys.cfg_market(world.tickers[5]), "quote_size", "2.00")
    second = builder.build(await read_raw(aredis, keys, NOW_MS, builder.slow))
    changed = [b for a, b in zip(first["markets"], second["markets"], strict=True) if a is not b]
    assert [row["ticker"] for row in changed] == [moved] and changed[0]["bid"] == 100
    full = builder.build(await read_raw(aredis, keys, NOW_MS))  # the slow keys read again
    rows = {row["ticker"]: row for row in full["markets"]}
    assert rows[world.tickers[5]]["quote_size"] == 200
    assert full["markets"] == build_view(await read_raw(aredis, keys, NOW_MS))["markets"]


async def test_each_shards_strategy_and_executor_show_as_processes(aredis: aioredis.Redis) -> None:
    """With shards each strategy and executor beats under its own name (``executor-1``): the
    dashboard and ``dora status`` list those, not a dead ``executor``."""
    keys = Keys("dora:", shard_count=2)
    for name in ("strategy-0", "strategy-1", "executor-0", "executor-1", "risk"):
        await aredis.set(keys.hb(name), orjson.dumps({"pid": 7, "ts_ms": NOW_MS}).decode())
    processes = build_view(await read_raw(aredis, keys, NOW_MS))["processes"]
    assert {n for n, p in processes.items() if p["alive"]} == {
        "strategy-0",
        "strategy-1",
        "executor-0",
        "executor-1",
        "risk",
    }
    assert "executor" not in processes
    status = (await gather(aredis, keys))["processes"]
    assert status["executor-1"]["alive"] and "executor" not in status


async def test_a_key_of_the_wrong_type_spoils_only_its_own_row_or_panel(
    aredis: aioredis.Redis, keys: Keys
) -> None:
    """A person's ``SET`` where dora keeps a hash (WRONGTYPE) failed the whole pipeline: the
    dashboard's start was retried forever and its view froze. Now the value is named."""
    world = World(4)
    await seed(aredis, keys, world, NOW_MS)
    pos_bad, targets_bad, market_bad, good = world.tickers
    for key, value in (
        (keys.pos(pos_bad), "300"),
        (keys.targets(targets_bad), "x"),
        (keys.market(market_bad), "closed"),
        (keys.risk, "halted"),
        (keys.exchange, "open"),
        (keys.hb("fills"), None),
    ):
        await aredis.delete(key)
        if value is None:
            await aredis.hset(key, "ts_ms", "1")
        else:
            await aredis.set(key, value)
    builder = ViewBuilder()
    view = builder.build(await read_raw(aredis, keys, NOW_MS))
    rows = {row["ticker"]: row for row in view["markets"]}
    assert rows[pos_bad]["position"] is None and rows[pos_bad]["pnl"] is None
    for ticker, key in (
        (pos_bad, keys.pos(pos_bad)),
        (targets_bad, keys.targets(targets_bad)),
        (market_bad, keys.market(market_bad)),
    ):
        assert rows[ticker]["corrupt"][0].startswith(f"{key}: WRONGTYPE"), rows[ticker]
        assert (
            rows[ticker]["error"].startswith(key) and rows[ticker]["corrupt"][0] in view["errors"]
        )
    assert rows[good]["corrupt"] == [] and rows[good]["error"] == ""
    assert rows[good]["bid"] is not None and rows[targets_bad]["position"] is not None
    assert view["risk"]["halted"] is None and view["risk"]["error"].startswith(keys.risk)
    assert view["processes"]["fills"] == {
        "alive": False,
        "error": view["processes"]["fills"]["error"],
    }
    assert view["processes"]["fills"]["error"].startswith(keys.hb("fills"))
    assert any(e.startswith(f"{keys.exchange}: ") for e in view["errors"])
    assert market_bad not in builder.slow  # its facts are read again next tick
    assert orjson.dumps(view)
