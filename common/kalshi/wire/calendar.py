"""The exchange's calendar (API.md §5.1): ``GET /exchange/schedule`` -> ``ExchangeSchedule``."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from common.calendar import ExchangeSchedule, Session, WeeklyHours
from common.errors import WireError
from common.kalshi.wire import fields

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Weekly(msgspec.Struct, frozen=True):
    start_time: Any = None
    end_time: Any = None
    monday: list[Any] = msgspec.field(default_factory=list)
    tuesday: list[Any] = msgspec.field(default_factory=list)
    wednesday: list[Any] = msgspec.field(default_factory=list)
    thursday: list[Any] = msgspec.field(default_factory=list)
    friday: list[Any] = msgspec.field(default_factory=list)
    saturday: list[Any] = msgspec.field(default_factory=list)
    sunday: list[Any] = msgspec.field(default_factory=list)


class _Window(msgspec.Struct, frozen=True):
    start_datetime: str
    end_datetime: str


class _Schedule(msgspec.Struct, frozen=True):
    standard_hours: list[_Weekly] = msgspec.field(default_factory=list)
    maintenance_windows: list[_Window] = msgspec.field(default_factory=list)


class _ScheduleResponse(msgspec.Struct, frozen=True):
    schedule: _Schedule


def _minute(value: object, what: str) -> int:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise WireError(f"{what} must be a time like '09:30', was {fields.short(value)}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _sessions(items: list[Any], what: str) -> tuple[Session, ...]:
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise WireError(f"{what}[{index}] must be an object, was {fields.short(item)}")
        out.append(
            Session(
                _minute(item.get("open_time"), f"{what}[{index}].open_time"),
                _minute(item.get("close_time"), f"{what}[{index}].close_time"),
            )
        )
    return tuple(out)


def parse_exchange_schedule(body: object) -> ExchangeSchedule:
    data = fields.convert(body, _ScheduleResponse, "exchange schedule").schedule
    weeks = []
    for index, weekly in enumerate(data.standard_hours):
        what = f"schedule.standard_hours[{index}]"
        days = tuple(_sessions(getattr(weekly, day), f"{what}.{day}") for day in _DAYS)
        weeks.append(
            WeeklyHours(
                start_ms=fields.time_ms(weekly.start_time, f"{what}.start_time", default=0),
                end_ms=fields.time_ms(weekly.end_time, f"{what}.end_time", default=2**62),
                days=days,
            )
        )
    windows = tuple(
        (
            fields.parse_time_ms(w.start_datetime, f"schedule.maintenance_windows[{i}].start"),
            fields.parse_time_ms(w.end_datetime, f"schedule.maintenance_windows[{i}].end"),
        )
        for i, w in enumerate(data.maintenance_windows)
    )
    return ExchangeSchedule(tuple(weeks), windows)
