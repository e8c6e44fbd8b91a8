"""Fee type and multiplier of each event: its own override, else its series' (API.md §8).

Both are read once per event and per series and kept for the life of the client (Kalshi changes
them rarely, and never for a running market without notice). A missing event or series means the
default schedule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from common.fees import FeeType
from common.kalshi.errors import NotFound
from common.kalshi.wire.markets import FeeInfo, parse_event_fees, parse_series_fees
from common.log import get_logger

DEFAULT_FEES = (FeeType.QUADRATIC, 100)
_NONE = FeeInfo(None, None)


class FeeCache:
    """``fees(event_ticker)`` through ``get(path)``, one read per event and per series."""

    def __init__(self, get: Callable[[str], Awaitable[Any]]) -> None:
        self._get = get
        self._series: dict[str, FeeInfo] = {}
        self._events: dict[str, tuple[str, FeeInfo]] = {}
        self._log = get_logger("kalshi.client")

    async def fees(self, event_ticker: str) -> tuple[FeeType, int]:
        """(fee type, multiplier in hundredths) of an event."""
        if not event_ticker:
            return DEFAULT_FEES
        if event_ticker not in self._events:
            try:
                self._events[event_ticker] = parse_event_fees(
                    await self._get(f"/events/{event_ticker}")
                )
            except NotFound:
                self._log.warning("fees_default", market=event_ticker, reason="event not found")
                self._events[event_ticker] = ("", _NONE)
        series_ticker, override = self._events[event_ticker]
        series = _NONE
        if series_ticker:
            if series_ticker not in self._series:
                try:
                    self._series[series_ticker] = parse_series_fees(
                        await self._get(f"/series/{series_ticker}")
                    )
                except NotFound:
                    self._series[series_ticker] = _NONE
            series = self._series[series_ticker]
        fee_type = override.fee_type or series.fee_type or FeeType.QUADRATIC
        multiplier = override.fee_multiplier_pct
        if multiplier is None:
            multiplier = series.fee_multiplier_pct
        return fee_type, 100 if multiplier is None else multiplier
