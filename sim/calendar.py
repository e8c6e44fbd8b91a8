"""The simulated exchange's calendar (CHANGES-3.34.md "The exchange's calendar").

Kalshi pauses trading every Thursday 03:00-05:00 ET: creates and amends are refused, cancels
accepted, resting orders stay (unless placed with ``cancel_order_on_pause``), and sockets drop.
A rarer *exchange* pause refuses cancels too. Here:

- ``weekly``: that pause, on the wall clock (the default of ``dora sim``, as on Kalshi);
- ``every:PERIOD_S:PAUSE_S[:FIRST_S]``: compressed for tests and the demo, a pause of PAUSE_S
  every PERIOD_S seconds, the first FIRST_S seconds after start (published as maintenance
  windows, so a client can see each one coming);
- ``none``: never (the test suite's default);
- and pauses on demand through the control API (``POST /_sim/exchange/pause``), scheduled
  (published ahead, like a maintenance window) or not (an incident nobody announced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from common.errors import ConfigError
from sim.wire import rfc3339

ET = ZoneInfo("America/New_York")
THURSDAY = 3
WEEKLY_START, WEEKLY_END = (3, 0), (5, 0)  # ET, hour and minute
TRADING, EXCHANGE = "trading", "exchange"  # what a pause stops: creates+amends, or everything
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Window:
    start_ms: int
    end_ms: int
    kind: str = TRADING
    published: bool = True  # in GET /exchange/schedule's maintenance windows


@dataclass(slots=True)
class Calendar:
    mode: str = "none"  # weekly | every | none
    period_ms: int = 0
    pause_ms: int = 0
    first_ms: int = 0  # the compressed schedule's first pause (absolute ms)
    extra: list[Window] = field(default_factory=list)  # on demand

    @classmethod
    def parse(cls, text: str, start_ms: int) -> Calendar:
        if text in ("weekly", "none"):
            return cls(text)
        parts = text.split(":")
        if parts[0] != "every" or len(parts) not in (3, 4):
            raise ConfigError(
                f"pause schedule must be weekly, none or every:PERIOD_S:PAUSE_S[:FIRST_S], "
                f"was {text!r}"
            )
        try:
            period, pause = float(parts[1]), float(parts[2])
            first = float(parts[3]) if len(parts) == 4 else period
        except ValueError:
            raise ConfigError(f"pause schedule numbers must be seconds, was {text!r}") from None
        if not 0 < pause < period or first < 0:
            raise ConfigError(f"pause schedule needs 0 < PAUSE_S < PERIOD_S, was {text!r}")
        return cls("every", int(period * 1000), int(pause * 1000), start_ms + int(first * 1000))

    # ---- which windows -------------------------------------------------------------------

    def windows(self, now_ms: int, horizon_ms: int) -> list[Window]:
        """Every pause overlapping [now_ms, now_ms + horizon_ms), the one under way included."""
        end = now_ms + horizon_ms
        found = [w for w in self.extra if w.end_ms > now_ms and w.start_ms < end]
        if self.mode == "every":
            n = max(0, (now_ms - self.first_ms) // self.period_ms)
            start = self.first_ms + n * self.period_ms
            while start < end:
                if start + self.pause_ms > now_ms:
                    found.append(Window(start, start + self.pause_ms))
                start += self.period_ms
        elif self.mode == "weekly":
            found += _weekly(now_ms, end)
        return sorted(found, key=lambda w: w.start_ms)

    def pause_at(self, now_ms: int) -> Window | None:
        """The pause under way (an exchange pause wins over a trading pause)."""
        current = [w for w in self.windows(now_ms, 1) if w.start_ms <= now_ms < w.end_ms]
        if not current:
            return None
        return max(current, key=lambda w: (w.kind == EXCHANGE, w.end_ms))

    def pause(self, now_ms: int, in_s: float, for_s: float, kind: str, published: bool) -> Window:
        if kind not in (TRADING, EXCHANGE):
            raise ConfigError(f"kind must be {TRADING} or {EXCHANGE}, was {kind!r}")
        if for_s <= 0 or in_s < 0:
            raise ConfigError(f"need in_s >= 0 and for_s > 0, were {in_s} and {for_s}")
        start = now_ms + int(in_s * 1000)
        window = Window(start, start + int(for_s * 1000), kind, published)
        self.extra.append(window)
        return window

    def resume(self, now_ms: int) -> int:
        """End every on-demand pause now (a scheduled one runs its course)."""
        ended = 0
        for index, window in enumerate(self.extra):
            if window.start_ms <= now_ms < window.end_ms:
                self.extra[index] = Window(window.start_ms, now_ms, window.kind, window.published)
                ended += 1
        self.extra = [w for w in self.extra if w.end_ms > w.start_ms]
        return ended

    # ---- Kalshi's JSON ---------------------------------------------------------------------

    def status_json(self, now_ms: int) -> dict[str, Any]:
        pause = self.pause_at(now_ms)
        exchange_active = pause is None or pause.kind != EXCHANGE
        trading_active = pause is None
        data: dict[str, Any] = {
            "exchange_active": exchange_active,
            "trading_active": trading_active,
            "intra_exchange_transfers_active": exchange_active,
            "exchange_index_statuses": [
                {
                    "exchange_index": 0,
                    "description": "simulated",
                    "exchange_active": exchange_active,
                    "trading_active": trading_active,
                    "intra_exchange_transfers_active": exchange_active,
                }
            ],
        }
        if pause is not None:
            data["exchange_estimated_resume_time"] = rfc3339(pause.end_ms)
        return data

    def schedule_json(self, now_ms: int) -> dict[str, Any]:
        whole_day = [{"open_time": "00:00", "close_time": "23:59"}]
        days: dict[str, Any] = {day: whole_day for day in _DAYS}
        if self.mode == "weekly":
            days["thursday"] = [
                {"open_time": "00:00", "close_time": "03:00"},
                {"open_time": "05:00", "close_time": "23:59"},
            ]
        published = [
            w
            for w in self.windows(now_ms, 8 * 86_400_000)
            if w.published and (self.mode != "weekly" or w in self.extra)
        ]
        return {
            "schedule": {
                "standard_hours": [
                    {
                        "start_time": "2020-01-01T00:00:00Z",
                        "end_time": "2100-01-01T00:00:00Z",
                        **days,
                    }
                ],
                "maintenance_windows": [
                    {"start_datetime": rfc3339(w.start_ms), "end_datetime": rfc3339(w.end_ms)}
                    for w in published
                ],
            }
        }


def _weekly(from_ms: int, to_ms: int) -> list[Window]:
    found: list[Window] = []
    day = datetime.fromtimestamp(from_ms / 1000, tz=UTC).astimezone(ET).date() - timedelta(days=1)
    while True:
        moment = datetime(day.year, day.month, day.day, tzinfo=ET)
        if int(moment.timestamp() * 1000) >= to_ms:
            return found
        if day.weekday() == THURSDAY:
            start = moment.replace(hour=WEEKLY_START[0], minute=WEEKLY_START[1])
            end = moment.replace(hour=WEEKLY_END[0], minute=WEEKLY_END[1])
            start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
            if end_ms > from_ms and start_ms < to_ms:
                found.append(Window(start_ms, end_ms))
        day += timedelta(days=1)
