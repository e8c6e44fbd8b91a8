"""Standard hours published day by day (00:00-23:59 ET each day, as the simulator and Kalshi
publish them) are one open stretch: the minute between a day's 23:59 close and the next day's
00:00 open is no pause. It was, once the day's session had ended: from 23:59 ET every night
dora saw a pause under way until midnight and pulled every quote (an end-to-end test that ran
across 05:00 UTC lost its quotes for a minute)."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.calendar import EXCHANGE_TZ, next_pause
from common.kalshi.wire.calendar import parse_exchange_schedule
from sim.calendar import Calendar


def at_et(*args: int) -> int:
    return int(datetime(*args, tzinfo=EXCHANGE_TZ).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    "now",
    [
        (2026, 12, 5, 23, 58, 30),  # Saturday, half a minute before the day's close
        (2026, 12, 5, 23, 59, 0),  # at it
        (2026, 12, 5, 23, 59, 1),  # past it: the failure
        (2026, 12, 5, 23, 59, 59),
        (2026, 12, 6, 0, 0, 30),  # Sunday, just after the next day's open
    ],
)
def test_the_minute_between_two_days_is_no_pause(now: tuple[int, ...]) -> None:
    now_ms = at_et(*now)
    schedule = parse_exchange_schedule(Calendar.parse("weekly", now_ms).schedule_json(now_ms))
    pause = next_pause(schedule, now_ms)
    assert pause is not None  # Thursday's maintenance
    assert pause.start_ms == at_et(2026, 12, 10, 3, 0), pause
    assert pause.end_ms == at_et(2026, 12, 10, 5, 0), pause


def test_a_real_close_is_still_a_pause() -> None:
    """Thursday 03:00-05:00 ET, seen from inside it: under way until 05:00."""
    now_ms = at_et(2026, 12, 10, 3, 0, 30)
    schedule = parse_exchange_schedule(Calendar.parse("weekly", now_ms).schedule_json(now_ms))
    pause = next_pause(schedule, now_ms)
    assert pause is not None and pause.start_ms <= now_ms < pause.end_ms
    assert pause.end_ms == at_et(2026, 12, 10, 5, 0)
