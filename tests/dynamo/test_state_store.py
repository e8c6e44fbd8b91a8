from dataclasses import replace
from decimal import Decimal

import pytest

from common.domain import RiskState
from tests.support.moto import Backend


@pytest.fixture
def store(dynamo_backend: Backend):  # type: ignore[no-untyped-def]
    dynamo_backend.create_tables()
    return dynamo_backend.dynamo().state


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


def test_risk_state_keeps_the_resume_and_reads_an_older_item(store) -> None:  # type: ignore[no-untyped-def]
    resumed = RiskState(False, "checked", 77, resumed_ms=80)
    store.put_risk(resumed, 0, 1_767_225_601_000)
    assert store.get_risk().risk == resumed
    from common.dynamo.codec import to_attrs

    old = {"key": "risk_state", "trading_halted": False, "halted_ms": 0, "daily_pnl": 0}
    store.client.put_item(TableName=store.names.state, Item=to_attrs(old))
    assert not store.get_risk().risk.halted  # no resume recorded, and no halt either
    resumed_before_the_mark = {**old, "halted_ms": 77}  # an older dora's resume: its flag counts
    store.client.put_item(TableName=store.names.state, Item=to_attrs(resumed_before_the_mark))
    assert not store.get_risk().risk.halted
    edited = {**old, "halted_ms": 77, "resumed_ms": 0}  # halted false, no resume after the halt
    store.client.put_item(TableName=store.names.state, Item=to_attrs(edited))
    assert store.get_risk().risk.halted
