"""Markets, order books, fees and the exchange's status (API.md §5.1-§5.2): JSON -> domain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from common.book import Level, YesBook
from common.domain import MarketMeta, MarketStatus
from common.errors import WireError
from common.fees import FeeType
from common.grid import GridError, PriceGrid
from common.kalshi.wire import fields
from common.kalshi.wire.fields import NonEmpty
from common.log import get_logger
from common.numbers import NumberError, ceil_div, fast_count, fast_price, parse_fixed


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What a market maker needs from Kalshi's Market object. ``problem`` says why dora cannot
    quote it (a status it does not know, a field it cannot read): that market only."""

    ticker: str
    event_ticker: str
    status: str
    open_ms: int
    close_ms: int
    grid: PriceGrid
    price_level_structure: str = ""
    exchange_index: int = 0
    can_close_early: bool = False
    result: str = ""
    market_type: str = "binary"
    problem: str = ""

    def to_meta(
        self,
        fee_type: FeeType = FeeType.QUADRATIC,
        fee_multiplier_pct: int = 100,
        now_ms: int = 0,
        *,
        fee_problem: str = "",
        fee_note: str = "",
        mutually_exclusive: bool = False,
    ) -> MarketMeta:
        status = MarketStatus.parse(self.status)
        problem = self.problem or fee_problem
        if not problem and status is MarketStatus.UNKNOWN:
            problem = f"unknown market status {self.status!r}"
        return MarketMeta(
            ticker=self.ticker,
            status=status,
            close_ms=self.close_ms,
            grid=self.grid,
            fee_type=fee_type,
            fee_multiplier_pct=fee_multiplier_pct,
            updated_ms=now_ms,
            exchange_index=self.exchange_index,
            problem=problem,
            fee_note=fee_note,
            event_ticker=self.event_ticker,
            mutually_exclusive=mutually_exclusive,
        )


@dataclass(frozen=True, slots=True)
class FeeInfo:
    """Fee type and multiplier (integer hundredths) of a series, or an event's override.
    ``raw_type`` is Kalshi's text when the type is one dora does not know the rates of."""

    fee_type: FeeType | None
    fee_multiplier_pct: int | None
    raw_type: str = ""


@dataclass(frozen=True, slots=True)
class FeeChange:
    """A scheduled change of a series' fees (``GET /series/fee_changes``)."""

    series_ticker: str
    fee_type: FeeType
    fee_multiplier_pct: int
    scheduled_ms: int


@dataclass(frozen=True, slots=True)
class ExchangeStatus:
    exchange_active: bool
    trading_active: bool
    resume_ms: int | None = None


_log = get_logger("kalshi.wire")


# ---- the shapes dora reads (Kalshi's field names; unknown fields are ignored) -------------


class _Market(msgspec.Struct, frozen=True):
    ticker: NonEmpty
    status: NonEmpty
    price_ranges: list[Any]
    close_time: Any = None
    event_ticker: str | None = None
    open_time: Any = None
    price_level_structure: str | None = None
    exchange_index: int | None = None
    can_close_early: bool | None = None
    result: Any = None
    market_type: str | None = None


class _MarketResponse(msgspec.Struct, frozen=True):
    market: _Market


class _MarketsPage(msgspec.Struct, frozen=True):
    markets: list[Any] | None = None  # each read on its own: one bad market spoils no other
    cursor: str | None = None


class _Ladders(msgspec.Struct, frozen=True):
    yes_dollars: Any = None  # [[price, size], ...]: parse_levels
    no_dollars: Any = None


class _OrderbookResponse(msgspec.Struct, frozen=True):
    orderbook_fp: _Ladders


class _Series(msgspec.Struct, frozen=True):
    fee_type: Any = None
    fee_multiplier: Any = None


class _SeriesResponse(msgspec.Struct, frozen=True):
    series: _Series


class _Event(msgspec.Struct, frozen=True):
    series_ticker: NonEmpty
    fee_type_override: Any = None
    fee_multiplier_override: Any = None
    mutually_exclusive: Any = False


class _EventResponse(msgspec.Struct, frozen=True):
    event: _Event


class _FeeChange(msgspec.Struct, frozen=True):
    series_ticker: NonEmpty
    scheduled_ts: str
    fee_type: Any = None
    fee_multiplier: Any = None


class _FeeChanges(msgspec.Struct, frozen=True):
    series_fee_change_arr: list[Any] | None = None


class _ExchangeStatus(msgspec.Struct, frozen=True):
    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: Any = None


# ---- order books ---------------------------------------------------------------------------


def parse_levels(value: object, what: str) -> list[Level]:
    """``[["0.4100", "10.00"], ...]`` -> ``[(4100, 1000), ...]``; None or absent is empty.

    Checked by hand rather than through a struct: measured faster on decoded JSON (a book is
    read on every snapshot and resync; docs/performance.md)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise WireError(f"{what} must be a JSON array, was {fields.short(value)}")
    out: list[Level] = []
    try:
        for index, level in enumerate(value):
            if not isinstance(level, list | tuple) or len(level) != 2:
                raise WireError(f"{what}[{index}] must be [price, size], was {fields.short(level)}")
            out.append(
                (
                    fast_price(level[0], f"{what}[{index}].price"),
                    fast_count(level[1], f"{what}[{index}].size"),
                )
            )
    except NumberError as exc:
        raise WireError(str(exc)) from None
    return out


def parse_orderbook(body: object) -> YesBook:
    """``GET /markets/{t}/orderbook`` -> the YES book (asks = 1 - NO bids)."""
    book = fields.convert(body, _OrderbookResponse, "orderbook response").orderbook_fp
    yes = parse_levels(book.yes_dollars, "orderbook_fp.yes_dollars")
    no = parse_levels(book.no_dollars, "orderbook_fp.no_dollars")
    return YesBook.from_bid_ladders(yes, no)


# ---- markets -------------------------------------------------------------------------------


def _market(market: _Market) -> MarketInfo:
    what = f"market {market.ticker}"
    try:
        grid = PriceGrid.from_price_ranges(market.price_ranges)
    except GridError as exc:
        raise WireError(f"{what}: {exc}") from None
    exchange_index = market.exchange_index or 0
    if exchange_index < 0:
        raise WireError(f"{what}.exchange_index must be >= 0, was {exchange_index}")
    return MarketInfo(
        ticker=market.ticker,
        event_ticker=market.event_ticker or "",
        status=market.status,
        open_ms=fields.time_ms(market.open_time, f"{what}.open_time", default=0),
        close_ms=fields.time_ms(market.close_time, f"{what}.close_time"),
        grid=grid,
        price_level_structure=market.price_level_structure or "",
        exchange_index=exchange_index,
        can_close_early=bool(market.can_close_early),
        result=market.result if isinstance(market.result, str) else "",
        market_type=market.market_type or "binary",
    )


def _market_or_problem(value: object) -> MarketInfo:
    """One market of a listing: its info, or, when it cannot be read, a market dora will not
    quote with the reason (the other markets of the page are unaffected). Raises only when not
    even its ticker can be read (nothing to attribute the problem to)."""
    try:
        return _market(fields.convert(value, _Market, "market"))
    except WireError as exc:
        ticker = value.get("ticker") if isinstance(value, dict) else None
        if not isinstance(ticker, str) or not ticker:
            raise
        event_ticker = value.get("event_ticker") if isinstance(value, dict) else ""
        return MarketInfo(
            ticker=ticker,
            event_ticker=event_ticker if isinstance(event_ticker, str) else "",
            status=MarketStatus.UNKNOWN.value,
            open_ms=0,
            close_ms=0,
            grid=PriceGrid.linear_cent(),
            problem=f"unreadable market: {exc}"[:300],
        )


def parse_market(value: object) -> MarketInfo:
    return _market_or_problem(value)


def parse_market_response(body: object) -> MarketInfo:
    if not isinstance(body, dict) or "market" not in body:
        raise WireError(f"market response.market is missing, was {fields.short(body)}")
    return _market_or_problem(body["market"])


def parse_markets_page(body: object) -> tuple[list[MarketInfo], str | None]:
    """A page of ``GET /markets``. A market that cannot be read comes back with its
    ``problem`` set; one without a readable ticker is left out, with a warning."""
    page = fields.convert(body, _MarketsPage, "markets response")
    infos: list[MarketInfo] = []
    for index, value in enumerate(page.markets or ()):
        try:
            infos.append(_market_or_problem(value))
        except WireError as exc:
            _log.warning("market_unreadable", reason=f"markets[{index}]: {exc}"[:300])
    return infos, fields.cursor(page.cursor)


# ---- fees and the exchange -----------------------------------------------------------------


def _fee_multiplier_pct(value: object, what: str) -> int | None:
    """A multiplier in hundredths (1.0 -> 100). Finer ones (0.125) round up: conservative."""
    if value is None:
        return None
    try:
        units = parse_fixed(value, 6, what)  # millionths, then up to hundredths
    except NumberError as exc:
        raise WireError(str(exc)) from None
    if units < 0 or units > 100 * 1_000_000:
        raise WireError(f"{what} must be between 0 and 100, was {fields.short(value)}")
    return ceil_div(units, 10_000)


def _fee_type(value: object) -> tuple[FeeType | None, str]:
    """(the fee type, Kalshi's text when dora does not know its rates)."""
    if value is None or value == "":
        return None, ""
    fee_type = FeeType.parse(value)
    return fee_type, "" if fee_type.rates_known else fields.short(value).strip("'")


def parse_series_fees(body: object) -> FeeInfo:
    """``GET /series/{s}`` -> the series' fee type and multiplier."""
    series = fields.convert(body, _SeriesResponse, "series response").series
    fee_type, raw = _fee_type(series.fee_type)
    return FeeInfo(
        fee_type, _fee_multiplier_pct(series.fee_multiplier, "series.fee_multiplier"), raw
    )


def parse_event_fees(body: object) -> tuple[str, FeeInfo]:
    """``GET /events/{e}`` -> (series_ticker, the event's fee overrides)."""
    event = fields.convert(body, _EventResponse, "event response").event
    fee_type, raw = _fee_type(event.fee_type_override)
    return event.series_ticker, FeeInfo(
        fee_type,
        _fee_multiplier_pct(event.fee_multiplier_override, "event.fee_multiplier_override"),
        raw,
    )


def parse_event_exclusive(body: object) -> bool:
    """``GET /events/{e}``: whether at most one of its markets resolves YES (anything but
    ``true`` is read as not exclusive: the event's markets are then limited as a sum)."""
    event = fields.convert(body, _EventResponse, "event response").event
    return event.mutually_exclusive is True


def parse_fee_changes(body: object) -> list[FeeChange]:
    """``GET /series/fee_changes``: one unreadable change is logged and left out, never the
    others (the next poll reads them all again)."""
    page = fields.convert(body, _FeeChanges, "series fee changes")
    out: list[FeeChange] = []
    for index, value in enumerate(page.series_fee_change_arr or ()):
        what = f"series_fee_change_arr[{index}]"
        try:
            item = fields.convert(value, _FeeChange, what)
            multiplier = _fee_multiplier_pct(item.fee_multiplier, f"{what}.fee_multiplier")
            out.append(
                FeeChange(
                    item.series_ticker,
                    FeeType.parse(item.fee_type),
                    100 if multiplier is None else multiplier,
                    fields.parse_time_ms(item.scheduled_ts, f"{what}.scheduled_ts"),
                )
            )
        except WireError as exc:
            _log.warning("fee_change_unreadable", reason=str(exc)[:300])
    return out


def parse_exchange_status(body: object) -> ExchangeStatus:
    data = fields.convert(body, _ExchangeStatus, "exchange status")
    resume = data.exchange_estimated_resume_time
    return ExchangeStatus(
        exchange_active=data.exchange_active,
        trading_active=data.trading_active,
        resume_ms=None
        if not resume
        else fields.parse_time_ms(resume, "exchange status.exchange_estimated_resume_time"),
    )
