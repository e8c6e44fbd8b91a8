"""The trading day: midnight of DORA_TRADING_DAY_TZ, DST included; a late roll forgives nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain import RiskState
from common.trading_day import roll_day, trading_day

NY = "America/New_York"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("utc", "day"),
    [
        # winter (EST, UTC-5): the day starts at 05:00 UTC
        ("2026-01-15T04:59:59", "2026-01-14"),
        ("2026-01-15T05:00:00", "2026-01-15"),
        # summer (EDT, UTC-4): at 04:00 UTC
        ("2026-07-15T03:59:59", "2026-07-14"),
        ("2026-07-15T04:00:00", "2026-07-15"),
        # the spring-forward day (2026-03-08) began at 05:00 UTC and lasted 23 hours
        ("2026-03-08T04:59:59", "2026-03-07"),
        ("2026-03-08T05:00:00", "2026-03-08"),
        ("2026-03-09T03:59:59", "2026-03-08"),
        ("2026-03-09T04:00:00", "2026-03-09"),
        # the fall-back day (2026-11-01) began at 04:00 UTC and lasted 25 hours
        ("2026-11-01T03:59:59", "2026-10-31"),
        ("2026-11-01T04:00:00", "2026-11-01"),
        ("2026-11-02T04:59:59", "2026-11-01"),
        ("2026-11-02T05:00:00", "2026-11-02"),
    ],
)
def test_the_day_starts_at_new_york_midnight_whatever_the_season(utc: str, day: str) -> None:
    assert trading_day(ms(utc), NY) == day


def test_other_zones() -> None:
    assert trading_day(ms("2026-07-15T00:00:00"), "UTC") == "2026-07-15"
    assert trading_day(ms("2026-07-14T23:59:59"), "UTC") == "2026-07-14"
    assert trading_day(ms("2026-07-14T22:00:00"), "Europe/Berlin") == "2026-07-15"


def test_the_first_check_starts_the_day_at_the_total() -> None:
    roll = roll_day(RiskState(), "2026-07-15", -3_000_000)
    assert roll.state.day == "2026-07-15" and roll.state.day_start_pnl == -3_000_000
    assert roll.closed is None


def test_the_same_day_goes_on() -> None:
    state = RiskState(day="2026-07-15", day_start_pnl=5, daily_pnl=-7)
    assert roll_day(state, "2026-07-15", 123) == roll_day(state, "2026-07-15", 0)
    assert roll_day(state, "2026-07-15", 123).state is state


def test_a_late_roll_keeps_the_losses_made_before_it_was_seen() -> None:
    """Last check of the old day: total -$2 (started at +$1, so -$3 on the day). Risk was down
    across midnight; when it looks again the total is -$10. The new day starts from -$2, the last
    total recorded, so its daily PnL is -$8, not 0."""
    last = RiskState(day="2026-07-14", day_start_pnl=1_000_000, daily_pnl=-3_000_000)
    roll = roll_day(last, "2026-07-15", -10_000_000)
    assert roll.state.day == "2026-07-15"
    assert roll.state.day_start_pnl == -2_000_000
    assert -10_000_000 - roll.state.day_start_pnl == -8_000_000
    assert roll.closed == last  # the day that ended, as last recorded


def test_a_clock_that_went_back_across_midnight_does_not_roll_back() -> None:
    state = RiskState(day="2026-07-15", day_start_pnl=0, daily_pnl=-1)
    assert roll_day(state, "2026-07-14", -5).state is state


@given(
    start=st.integers(-(10**12), 10**12),
    daily=st.integers(-(10**12), 10**12),
    total=st.integers(-(10**12), 10**12),
)
def test_a_roll_never_forgives(start: int, daily: int, total: int) -> None:
    """Whatever the totals: the new day's PnL is everything since the last recorded total."""
    last = RiskState(day="2026-07-14", day_start_pnl=start, daily_pnl=daily)
    roll = roll_day(last, "2026-07-16", total)
    assert total - roll.state.day_start_pnl == total - (start + daily)
