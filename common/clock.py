"""Time, injected. Services take a ``Clock`` so tests and the backtester control time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class Clock:
    """The wall clock (UTC milliseconds) and a monotonic clock for intervals."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> float:
        return time.monotonic() * 1000.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock(Clock):
    """A clock that moves only when told: ``advance`` moves it and wakes sleepers."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now_ms = start_ms
        self._mono_ms = 0.0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_ms(self) -> float:
        return self._mono_ms

    def advance(self, ms: int) -> None:
        self._now_ms += ms
        self._mono_ms += ms

    async def sleep(self, seconds: float) -> None:
        self.advance(int(seconds * 1000))
        await asyncio.sleep(0)


def iso_from_ms(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def utc_date(ms: int) -> str:
    """YYYY-MM-DD of a UTC millisecond timestamp (the trade/decision log partition key)."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%d")
