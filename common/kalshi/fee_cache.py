"""Fee type and multiplier of each event: its own override, else its series' (API.md §8).

Read once per event and per series, then kept current without a restart: ``apply_event_update``
takes the WebSocket's ``event_fee_update``, ``forget_series`` drops a series whose fees changed
(``GET /series/fee_changes``) so the next read asks again. A missing event or series means the
default schedule. What cannot be read affects only the markets of that event: their fees come
back with a ``problem`` (the market is not quoted) instead of an exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common.errors import WireError
from common.fees import FeeType
from common.kalshi.errors import NotFound
from common.kalshi.wire.markets import (
    FeeInfo,
    parse_event_exclusive,
    parse_event_fees,
    parse_series_fees,
)
from common.log import get_logger

_NONE = FeeInfo(None, None)
FEES_UNAVAILABLE = "fees unavailable"  # a market's fees could not be read this time (transient)


@dataclass(frozen=True, slots=True)
class Fees:
    """What an event's markets pay: the type, the multiplier in hundredths, a note when they are
    priced conservatively (a type whose rates dora does not know) and a problem when the fees
    could not be read at all (the market is not quoted)."""

    fee_type: FeeType = FeeType.QUADRATIC
    multiplier_pct: int = 100
    note: str = ""
    problem: str = ""


DEFAULT_FEES = Fees()


class FeeCache:
    """``fees(event_ticker)`` through ``get(path)``, one read per event and per series."""

    def __init__(self, get: Callable[[str], Awaitable[Any]]) -> None:
        self._get = get
        self._series: dict[str, FeeInfo] = {}
        self._events: dict[str, tuple[str, FeeInfo]] = {}
        self._problems: dict[str, str] = {}  # event or series ticker -> why unreadable
        self._exclusive: dict[str, bool] = {}  # event ticker -> its mutually_exclusive flag
        self._log = get_logger("kalshi.client")

    async def fees(self, event_ticker: str) -> Fees:
        """The fees of an event's markets."""
        if not event_ticker:
            return DEFAULT_FEES
        if event_ticker not in self._events:
            try:
                body = await self._get(f"/events/{event_ticker}")
                self._events[event_ticker] = parse_event_fees(body)
                self._exclusive[event_ticker] = parse_event_exclusive(body)
                self._problems.pop(event_ticker, None)
            except NotFound:
                self._log.warning("fees_default", market=event_ticker, reason="event not found")
                self._events[event_ticker] = ("", _NONE)
            except WireError as exc:  # asked again at the next refresh
                return self._unreadable(event_ticker, f"event {event_ticker} fees: {exc}")
        series_ticker, override = self._events[event_ticker]
        series = _NONE
        if series_ticker:
            if series_ticker not in self._series:
                try:
                    self._series[series_ticker] = parse_series_fees(
                        await self._get(f"/series/{series_ticker}")
                    )
                    self._problems.pop(series_ticker, None)
                except NotFound:
                    self._series[series_ticker] = _NONE
                except WireError as exc:
                    return self._unreadable(series_ticker, f"series {series_ticker} fees: {exc}")
            series = self._series[series_ticker]
        return _combine(override, series)

    def _unreadable(self, ticker: str, reason: str) -> Fees:
        if self._problems.get(ticker) != reason:
            self._problems[ticker] = reason
            self._log.warning("fees_unreadable", market=ticker, reason=reason[:300])
        return Fees(FeeType.UNKNOWN, 100, problem=reason[:300])

    def apply_event_update(
        self, event_ticker: str, fee_type: object, multiplier: object
    ) -> Fees | None:
        """An ``event_fee_update``: the event's override changes now. Returns the event's new
        fees, or None when the event was never read (its next read sees the change)."""
        known = self._events.get(event_ticker)
        if known is None:
            return None
        series_ticker, _ = known
        try:
            _, override = parse_event_fees(
                {
                    "event": {
                        "series_ticker": series_ticker or "-",
                        "fee_type_override": fee_type,
                        "fee_multiplier_override": multiplier,
                    }
                }
            )
        except WireError as exc:
            self._events.pop(event_ticker, None)  # read it again over REST
            return self._unreadable(event_ticker, f"event {event_ticker} fee update: {exc}")
        self._events[event_ticker] = (series_ticker, override)
        return _combine(override, self._series.get(series_ticker, _NONE))

    def mutually_exclusive(self, event_ticker: str) -> bool:
        """The event's ``mutually_exclusive`` flag, as last read with its fees."""
        return self._exclusive.get(event_ticker, False)

    def forget_series(self, series_ticker: str) -> None:
        """The series' fees changed: read them again on the next ``fees``."""
        self._series.pop(series_ticker, None)

    def events_of_series(self, series_ticker: str) -> list[str]:
        return [e for e, (s, _) in self._events.items() if s == series_ticker]

    def series_of(self, event_ticker: str) -> str:
        known = self._events.get(event_ticker)
        return known[0] if known else ""


def _combine(override: FeeInfo, series: FeeInfo) -> Fees:
    fee_type = override.fee_type or series.fee_type or FeeType.QUADRATIC
    raw = override.raw_type if override.fee_type else series.raw_type
    multiplier = override.fee_multiplier_pct
    if multiplier is None:
        multiplier = series.fee_multiplier_pct
    note = ""
    if not fee_type.rates_known:
        note = f"fee type {raw or fee_type.value!r}: makers priced at the taker rate"
    return Fees(fee_type, 100 if multiplier is None else multiplier, note)
