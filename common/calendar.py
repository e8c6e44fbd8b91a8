"""The exchange's calendar, pure: when trading pauses and whether to quote now (DESIGN.md §5).

Kalshi publishes its standard hours (sessions per weekday, in US Eastern time) and maintenance
windows (``GET /exchange/schedule``), and says whether trading is active right now
(``GET /exchange/status``). Every Thursday 03:00-05:00 ET trading pauses: creates and amends are
rejected, cancels accepted. ``next_pause`` finds the next time trading is not scheduled;
``quoting_state`` says whether dora may add quotes now: not while the exchange says trading is
inactive (scheduled or not), and not from ``lead_ms`` before a scheduled pause until it ends, so
quotes are pulled (cancels only) before the pause and nothing is refused during it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EXCHANGE_TZ = ZoneInfo("America/New_York")
DAY_MINUTES = 24 * 60
HORIZON_DAYS = 8  # far enough to see next week's pause
CONTIGUOUS_MS = 60_000  # a session closing at 23:59 and the next opening at 00:00 are one


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session of a day: minutes after midnight ET, open to close."""

    open_minute: int
    close_minute: int


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Standard hours effective from ``start_ms`` to ``end_ms``; ``days[0]`` is Monday."""

    start_ms: int
    end_ms: int
    days: tuple[tuple[Session, ...], ...]


@dataclass(frozen=True, slots=True)
class ExchangeSchedule:
    standard_hours: tuple[WeeklyHours, ...] = ()
    maintenance_windows: tuple[tuple[int, int], ...] = ()  # (start ms, end ms)


@dataclass(frozen=True, slots=True)
class Pause:
    start_ms: int
    end_ms: int
    why: str  # "schedule" (outside standard hours) or "maintenance"


@dataclass(frozen=True, slots=True)
class ExchangeState:
    """What ``dora:exchange`` holds: the exchange's word and the next pause of its calendar."""

    exchange_active: bool = True
    trading_active: bool = True
    resume_ms: int | None = None  # the exchange's estimate, while inactive
    next_pause: Pause | None = None
    updated_ms: int = 0

    def quoting(self, now_ms: int, lead_ms: int) -> QuotingState:
        return pause_state(
            self.exchange_active, self.trading_active, self.next_pause, now_ms, lead_ms
        )


@dataclass(frozen=True, slots=True)
class QuotingState:
    """Whether dora may add quotes now, and what ``dora status`` shows about the exchange."""

    may_quote: bool
    reason: str  # why not ("" when it may)
    next_pause: Pause | None


def open_intervals(schedule: ExchangeSchedule, from_ms: int, to_ms: int) -> list[tuple[int, int]]:
    """The scheduled trading intervals (UTC ms) overlapping [from_ms, to_ms), merged."""
    intervals: list[tuple[int, int]] = []
    first = datetime.fromtimestamp(from_ms / 1000, tz=UTC).astimezone(EXCHANGE_TZ).date()
    days = (to_ms - from_ms) // 86_400_000 + 2
    for offset in range(-1, days):
        day = first + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=EXCHANGE_TZ)
        for weekly in schedule.standard_hours:
            for session in weekly.days[day.weekday()]:
                start = _at_minute(midnight, session.open_minute)
                end = _at_minute(midnight, session.close_minute)
                start, end = max(start, weekly.start_ms), min(end, weekly.end_ms)
                # one that closed within the last minute still joins the next day's opening
                # (23:59 to 00:00 is no pause)
                if end > start and end + CONTIGUOUS_MS > from_ms and start < to_ms:
                    intervals.append((start, end))
    return _merge(sorted(intervals))


def _at_minute(midnight: datetime, minute: int) -> int:
    # wall-clock minutes of that day in ET (DST-aware), as UTC ms
    moment = midnight.replace(hour=minute // 60, minute=minute % 60)
    return int(moment.timestamp() * 1000)


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1] + CONTIGUOUS_MS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def next_pause(schedule: ExchangeSchedule, now_ms: int) -> Pause | None:
    """The pause under way at ``now_ms`` or the next one within ``HORIZON_DAYS``; None when the
    schedule shows none (or is empty: nothing known, nothing assumed)."""
    horizon = now_ms + HORIZON_DAYS * 86_400_000
    candidates: list[Pause] = []
    for start, end in schedule.maintenance_windows:
        if end > now_ms and start < horizon:
            candidates.append(Pause(start, end, "maintenance"))
    if schedule.standard_hours:
        # past the horizon too, so the last session of the horizon is not taken for a close
        opened = open_intervals(schedule, now_ms, horizon + 2 * 86_400_000)
        cursor = now_ms
        for start, end in opened:
            if cursor >= horizon:
                break
            if start > cursor:
                candidates.append(Pause(cursor, start, "schedule"))
                break
            cursor = max(cursor, end)
        else:
            if cursor < horizon:
                candidates.append(Pause(cursor, horizon, "schedule"))
    return min(candidates, key=lambda p: (p.start_ms, -p.end_ms), default=None)


def quoting_state(
    *,
    exchange_active: bool,
    trading_active: bool,
    schedule: ExchangeSchedule,
    now_ms: int,
    lead_ms: int,
) -> QuotingState:
    """May dora add quotes now? Not while the exchange says trading is inactive, nor from
    ``lead_ms`` before a scheduled pause to its end."""
    upcoming = next_pause(schedule, now_ms)
    return pause_state(exchange_active, trading_active, upcoming, now_ms, lead_ms)


def pause_state(
    exchange_active: bool,
    trading_active: bool,
    upcoming: Pause | None,
    now_ms: int,
    lead_ms: int,
) -> QuotingState:
    """``quoting_state`` from an already computed next pause (what ``dora:exchange`` holds)."""
    if not exchange_active:
        return QuotingState(False, "exchange inactive", upcoming)
    if not trading_active:
        return QuotingState(False, "trading inactive", upcoming)
    if upcoming is not None and upcoming.start_ms - lead_ms <= now_ms < upcoming.end_ms:
        if now_ms < upcoming.start_ms:
            return QuotingState(False, f"{upcoming.why} pause ahead", upcoming)
        return QuotingState(False, f"{upcoming.why} pause", upcoming)
    return QuotingState(True, "", upcoming)
