from dataclasses import replace
from decimal import Decimal

import pytest

from common.domain import Position, RiskState
from common.dynamo.state_store import item_size
from services.persister.state import POSITIONS_WARN_BYTES
from tests.support.moto import Backend


@pytest.fixture
def store(dynamo_backend: Backend):  # type: ignore[no-untyped-def]
    dynamo_backend.create_tables()
    return dynamo_backend.dynamo().state


def test_positions_round_trip_exactly_with_the_plan_fields(store) -> None:  # type: ignore[no-untyped-def]
    positions = {
        "KXA": Position("KXA", 1_050, 5_880_000, -123_457, 9_999, 1_767_225_600_000),
        "KXB": Position("KXB", -300, -1_200_000, 0, 0, 5),
        "KXC": Position("KXC"),
    }
    assert store.get_positions() == {}
    store.put_positions(positions, 1_767_225_601_000)
    assert store.get_positions() == positions
    raw = store._get("positions")["positions"]
    assert raw["KXA"]["yes_qty"] == Decimal("10.5") and raw["KXA"]["no_qty"] == 0
    assert raw["KXA"]["avg_cost_yes"] == Decimal("0.56") and "avg_cost_no" not in raw["KXA"]
    assert raw["KXB"]["no_qty"] == Decimal("3") and raw["KXB"]["avg_cost_no"] == Decimal("0.6")
    assert raw["KXA"]["realized_pnl"] == Decimal("-0.123457")


def test_risk_state_keeps_the_halt(store) -> None:  # type: ignore[no-untyped-def]
    assert store.get_risk() is None
    risk = RiskState(
        True, "daily loss", 77, -100_000_000, -90_000_000, -10_000_000, 1, 2, "2026-01-01", 78
    )
    risk = replace(risk, day_start_pnl=-3_000_001)
    store.put_risk(risk, 1_767_225_600_000, 1_767_225_601_000)
    stored = store.get_risk()
    assert stored.risk == risk and stored.last_fill_ms == 1_767_225_600_000
    raw = store._get("risk_state")
    assert (
        raw["trading_halted"] is True and raw["last_fill_timestamp"] == "2026-01-01T00:00:00.000Z"
    )


def test_a_pnl_snapshot_is_never_replaced_by_an_older_one(store) -> None:  # type: ignore[no-untyped-def]
    day = "2026-01-01"
    assert store.put_pnl_snapshot(RiskState(daily_pnl=5, day=day), 200)
    assert not store.put_pnl_snapshot(RiskState(daily_pnl=4, day=day), 100)
    assert store.put_pnl_snapshot(RiskState(daily_pnl=5, day=day), 200)  # a replay: same
    snapshot = store.get_pnl_snapshot(day)
    assert snapshot["daily_pnl"] == Decimal("0.000005") and snapshot["ts_ms"] == 200
    assert store.put_pnl_snapshot(RiskState(daily_pnl=6, day=day), 300)
    assert store.get_pnl_snapshot(day)["ts_ms"] == 300


def test_a_closed_day_is_never_replaced_by_a_running_snapshot(store) -> None:  # type: ignore[no-untyped-def]
    day = "2026-01-01"
    assert store.put_pnl_snapshot(RiskState(daily_pnl=-5, day=day), 200)
    store.put_day_closed(RiskState(daily_pnl=-7, day=day), 250, 900, 1_000_000, 993_000)
    closed = store.get_pnl_snapshot(day)
    assert closed["daily_pnl"] == Decimal("-0.000007") and closed["closed_ms"] == 900
    assert closed["day_start_total"] == Decimal("1") and closed["day_end_total"] == Decimal("0.993")
    assert not store.put_pnl_snapshot(RiskState(daily_pnl=-9, day=day), 260)  # a late replay
    assert store.get_pnl_snapshot(day)["closed_ms"] == 900


def test_item_size_follows_dynamodbs_rules() -> None:
    assert item_size({"key": {"S": "positions"}}) == 3 + 9
    assert item_size({"n": {"N": "-12.50"}}) == 1 + 3  # digits 125: two bytes, plus one
    assert item_size({"m": {"M": {"a": {"S": "xy"}, "b": {"NULL": True}}}}) == 1 + 3 + 2 + 3 + 2
    assert item_size({"l": {"L": [{"BOOL": True}, {"N": "7"}]}}) == 1 + 3 + 2 + 1 + 2


def test_the_positions_item_reports_its_size_and_fits_well_past_the_warning(store) -> None:  # type: ignore[no-untyped-def]
    def positions(n: int) -> dict[str, Position]:
        tickers = [f"KXSOMEEVENT-26NOV25-M{i:04d}" for i in range(n)]
        return {
            t: Position(t, 1_050, 5_880_000, -123_457, 9_999, 1_767_225_600_000) for t in tickers
        }

    small, large = store.put_positions(positions(10), 1), store.put_positions(positions(2_500), 2)
    assert 0 < small < 2_000
    assert large > POSITIONS_WARN_BYTES  # the persister warns here, and DynamoDB still takes it
    assert len(store.get_positions()) == 2_500
