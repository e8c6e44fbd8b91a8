"""The charts' memory: bounded however long it runs, one curve per trading day."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.web.history import DayPnl, MarketHistory, Series


@given(st.integers(min_value=4, max_value=64), st.integers(min_value=0, max_value=2_000))
def test_a_series_stays_bounded_and_keeps_its_span(max_points: int, n: int) -> None:
    series = Series(("v",), max_points)
    for i in range(n):
        series.append(1_000 * i, [i])
    assert len(series) <= max_points
    if n:
        data = series.to_json()
        assert data["t"][0] == 0 and data["t"][-1] == 1_000 * (n - 1)  # whole span kept
        assert data["t"] == sorted(data["t"]) and data["v"] == [t // 1_000 for t in data["t"]]


def test_a_series_needs_room_for_at_least_four_points() -> None:
    with pytest.raises(ValueError, match="max_points"):
        Series(("v",), 3)


def _pnl(day: str, ts_ms: int, daily: int) -> dict[str, object]:
    return {
        "day": day,
        "ts_ms": ts_ms,
        "daily_pnl": daily,
        "realized_pnl": daily,
        "unrealized_pnl": 0,
        "fees": 1,
        "total_exposure": 5,
    }


def test_the_day_curve_restarts_with_a_new_trading_day_and_skips_bad_events() -> None:
    day = DayPnl()
    assert day.add("1-0", _pnl("2026-12-04", 1_000, 5)) is not None
    assert day.add("2-0", {"ts_ms": 2_000, "halted": True}) is None  # a halt event: no point
    assert day.add("3-0", {**_pnl("2026-12-04", 3_000, 6), "fees": "1"}) is None  # not an int
    assert day.add("4-0", _pnl("2026-12-04", 500, 7)) is None  # older than the last point
    point = day.add("5-0", _pnl("2026-12-05", 9_000, -3))
    assert point == {
        "day": "2026-12-05",
        "t": 9_000,
        **{k: v for k, v in _pnl("", 0, -3).items() if k not in ("day", "ts_ms")},
    }
    assert day.to_json()["t"] == [9_000] and day.to_json()["daily_pnl"] == [-3]
    assert day.last_id == "5-0"


def test_market_history_samples_on_change_or_every_interval() -> None:
    history = MarketHistory(sample_ms=5_000)
    row = {"ticker": "T", "position": 0, "gross_realized_pnl": 0, "pnl": 0}
    history.sample(1_000, [row])
    history.sample(2_000, [row])  # unchanged and too soon: no point
    history.sample(3_000, [{**row, "position": 100, "pnl": 7}])  # a fill: a point at once
    history.sample(8_000, [{**row, "position": 100, "pnl": 9}])  # the interval passed
    history.sample(9_000, [{"ticker": "U", "position": None}])  # undecodable row: nothing
    assert history.to_json("T") == {
        "t": [1_000, 3_000, 8_000],
        "position": [0, 100, 100],
        "realized_pnl": [0, 0, 0],
        "pnl": [0, 7, 9],
    }
    assert history.to_json("U")["t"] == []


def test_stored_fills_come_before_the_live_samples_without_pnl() -> None:
    history = MarketHistory()
    history.sample(5_000, [{"ticker": "T", "position": 300, "gross_realized_pnl": 9, "pnl": 12}])
    added = history.seed_fills([(4_000, "T", 300, 9), (1_000, "T", 100, 0), (6_000, "T", 0, 1)])
    assert added == 2  # the fill at 6_000 is after the first live sample: already counted
    assert history.to_json("T") == {
        "t": [1_000, 4_000, 5_000],
        "position": [100, 300, 300],
        "realized_pnl": [0, 9, 9],
        "pnl": [None, None, 12],
    }
