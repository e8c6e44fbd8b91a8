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
from common.numbers import NumberError, fast_count, fast_price, parse_count


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What a market maker needs from Kalshi's Market object."""

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

    def to_meta(
        self, fee_type: FeeType = FeeType.QUADRATIC, fee_multiplier_pct: int = 100, now_ms: int = 0
    ) -> MarketMeta:
        return MarketMeta(
            ticker=self.ticker,
            status=MarketStatus.parse(self.status),
            close_ms=self.close_ms,
            grid=self.grid,
            fee_type=fee_type,
            fee_multiplier_pct=fee_multiplier_pct,
            updated_ms=now_ms,
        )


@dataclass(frozen=True, slots=True)
class FeeInfo:
    """Fee type and multiplier (integer hundredths) of a series, or an event's override."""

    fee_type: FeeType | None
    fee_multiplier_pct: int | None


@dataclass(frozen=True, slots=True)
class ExchangeStatus:
    exchange_active: bool
    trading_active: bool
    resume_ms: int | None = None


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
    markets: list[_Market] | None = None
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


class _EventResponse(msgspec.Struct, frozen=True):
    event: _Event


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
    return MarketInfo(
        ticker=market.ticker,
        event_ticker=market.event_ticker or "",
        status=market.status,
        open_ms=fields.time_ms(market.open_time, f"{what}.open_time", default=0),
        close_ms=fields.time_ms(market.close_time, f"{what}.close_time"),
        grid=grid,
        price_level_structure=market.price_level_structure or "",
        exchange_index=market.exchange_index or 0,
        can_close_early=bool(market.can_close_early),
        result=market.result if isinstance(market.result, str) else "",
        market_type=market.market_type or "binary",
    )


def parse_market(value: object) -> MarketInfo:
    return _market(fields.convert(value, _Market, "market"))


def parse_market_response(body: object) -> MarketInfo:
    return _market(fields.convert(body, _MarketResponse, "market response").market)


def parse_markets_page(body: object) -> tuple[list[MarketInfo], str | None]:
    page = fields.convert(body, _MarketsPage, "markets response")
    return [_market(m) for m in page.markets or ()], fields.cursor(page.cursor)


# ---- fees and the exchange -----------------------------------------------------------------


def _fee_multiplier_pct(value: object, what: str) -> int | None:
    if value is None:
        return None
    try:
        units = parse_count(value, what=what)  # 2 decimals: 1.0 -> 100, 0.5 -> 50
    except NumberError as exc:
        raise WireError(str(exc)) from None
    return units


def _fee_type(value: object, what: str) -> FeeType | None:
    if value is None or value == "":
        return None
    try:
        return FeeType(str(value))
    except ValueError:
        known = ", ".join(t.value for t in FeeType)
        raise WireError(f"{what} must be one of {known}, was {fields.short(value)}") from None


def parse_series_fees(body: object) -> FeeInfo:
    """``GET /series/{s}`` -> the series' fee type and multiplier."""
    series = fields.convert(body, _SeriesResponse, "series response").series
    return FeeInfo(
        _fee_type(series.fee_type, "series.fee_type"),
        _fee_multiplier_pct(series.fee_multiplier, "series.fee_multiplier"),
    )


def parse_event_fees(body: object) -> tuple[str, FeeInfo]:
    """``GET /events/{e}`` -> (series_ticker, the event's fee overrides)."""
    event = fields.convert(body, _EventResponse, "event response").event
    return event.series_ticker, FeeInfo(
        _fee_type(event.fee_type_override, "event.fee_type_override"),
        _fee_multiplier_pct(event.fee_multiplier_override, "event.fee_multiplier_override"),
    )


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
