"""One position item per market (issue 19.2): versions only go forward, the single item of the
original plan is migrated once, tombstones and the backfill cursor."""

from decimal import Decimal
from typing import Any

import pytest

from common.domain import Position
from common.dynamo.codec import to_attrs
from common.dynamo.position_store import PositionStore, position_attrs
from common.position_record import PositionRecord
from tests.support.moto import Backend


@pytest.fixture
def store(dynamo_backend: Backend) -> PositionStore:
    dynamo_backend.create_tables()
    return dynamo_backend.dynamo().positions


def record(ticker: str, version: int, position: int = 1_050, **kw: Any) -> PositionRecord:
    return PositionRecord(
        Position(ticker, position, 5_880_000, -123_457, 9_999, 1_767_225_600_000),
        version=version,
        recent_fills=(("f-1", 1_767_225_599_000), ("f-2", 1_767_225_600_000)),
        **kw,
    )


def raw(store: PositionStore, key: str) -> dict[str, Any] | None:
    return store._get(key)


def test_a_market_is_its_own_item_with_the_plan_fields_and_its_recent_fills(
    store: PositionStore,
) -> None:
    assert store.put(record("KXA", 3), 1) and store.put(record("KXB", 1, position=-300), 1)
    assert sorted(store.get_all(), key=lambda r: r.ticker) == [
        record("KXA", 3),
        record("KXB", 1, position=-300),
    ]
    item = raw(store, "positions#KXA")
    assert item is not None and item["yes_qty"] == Decimal("10.5") and item["no_qty"] == 0
    assert item["avg_cost_yes"] == Decimal("0.56") and item["realized_pnl"] == Decimal("-0.123457")
    assert item["recent_fills"] == {"f-1": 1_767_225_599_000, "f-2": 1_767_225_600_000}
    assert raw(store, "positions") is None  # nothing holds every market


def test_an_older_version_never_replaces_a_newer_one(store: PositionStore) -> None:
    assert store.put(record("KXA", 5, position=500), 1)
    assert not store.put(record("KXA", 4, position=400), 2)  # a replayed, older event
    assert not store.put(record("KXA", 5, position=500), 3)  # the same one again
    assert store.put(record("KXA", 6, position=600), 4)
    assert [r.position.position for r in store.get_all()] == [600]


def test_the_single_positions_item_is_migrated_once(store: PositionStore) -> None:
    legacy = {
        "KXA": Position("KXA", 1_050, 5_880_000, -123_457, 9_999, 1_767_225_600_000),
        "KXB": Position("KXB", -300, -1_200_000, 0, 0, 5),
    }
    item = {"key": "positions", "positions": {t: position_attrs(p) for t, p in legacy.items()}}
    store.client.put_item(TableName=store.names.state, Item=to_attrs(_no_none(item)))
    assert store.put(record("KXB", 2, position=-500), 1)  # already moved: its own item wins
    assert store.migrate_legacy(10) == 1
    assert raw(store, "positions") is None
    found = {r.ticker: r for r in store.get_all()}
    assert found["KXA"].position == legacy["KXA"] and found["KXA"].version == 0
    assert found["KXB"].position.position == -500 and found["KXB"].version == 2
    assert store.migrate_legacy(11) == 0  # once


def test_the_cursor_only_moves_forward(store: PositionStore) -> None:
    assert store.get_cursor() is None
    assert store.put_cursor(2_000, 1_500, 1)
    assert not store.put_cursor(1_000, 900, 2)
    assert store.get_cursor() == (2_000, 1_500)


def test_a_tombstone_is_removed_only_as_it_was(store: PositionStore) -> None:
    settled = record("KXA", 4, position=0, settled_ms=9, settlement_id="settle:KXA:9")
    store.put(settled, 1)
    assert not store.delete_tombstone(record("KXA", 3, settled_ms=9, settlement_id="x"))
    assert store.delete_tombstone(settled)
    assert store.get_all() == []
    live = record("KXB", 1)
    store.put(live, 1)
    assert not store.delete_tombstone(live)  # a live market is never removed


def _no_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_none(v) for k, v in value.items() if v is not None}
    return value
