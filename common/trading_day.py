"""The trading day of the daily PnL, and what happens to it at midnight. Pure.

A trading day runs from midnight to midnight in ``DORA_TRADING_DAY_TZ`` (an IANA zone, default
``America/New_York``), daylight saving included: in New York a day starts at 05:00 UTC in winter
and 04:00 UTC in summer, and the days of the clock changes last 23 and 25 hours.

At a roll the new day's baseline is the last total PnL recorded in the old day, never the total
when the roll is noticed: a risk process that was down across midnight (or stuck) notices late, and
the losses made meanwhile still count (against the new day, the one that can still stop trading).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from common.domain import RiskState


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def trading_day(now_ms: int, tz: str) -> str:
    """``YYYY-MM-DD``: the date in ``tz`` at ``now_ms`` (the day that began at its midnight)."""
    return datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(_zone(tz)).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class DayRoll:
    """The risk state to go on from, and the day that just ended (its last recorded state)."""

    state: RiskState
    closed: RiskState | None = None


def roll_day(previous: RiskState, day: str, total_pnl: int) -> DayRoll:
    """The state for a check on ``day`` whose total PnL is ``total_pnl``, given the last one
    recorded. A first check starts the day at the total; a later day starts at the last total
    of the day before (``day_start_pnl + daily_pnl`` as last recorded); a clock that went back
    across midnight does not roll back (the later day goes on)."""
    if not previous.day:
        return DayRoll(replace(previous, day=day, day_start_pnl=total_pnl))
    if day <= previous.day:
        return DayRoll(previous)
    last_total = previous.day_start_pnl + previous.daily_pnl
    return DayRoll(replace(previous, day=day, day_start_pnl=last_total), closed=previous)
