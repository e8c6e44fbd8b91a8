"""Markets, order books, fees and the exchange's status (API.md §5.1-§5.2): JSON -> domain values."""

from __future__ import annotations

from dataclasses import dataclass

from common.book import Level, YesBook
from common.domain import MarketMeta, MarketStatus
from common.errors import WireError
from common.fees import FeeType
from common.grid import GridError, PriceGrid
from common.kalshi.wire import fields
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


def parse_levels(value: object, what: str) -> list[Level]:
    """``[["0.4100", "10.00"], ...]`` -> ``[(4100, 1000), ...]``; None or absent is empty."""
    if value is None:
        return []
    levels = fields.array(value, what)
    out: list[Level] = []
    try:
        for index, level in enumerate(levels):
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
    data = fields.obj(body, "orderbook response")
    book = fields.obj(fields.required(data, "orderbook_fp", "orderbook response"), "orderbook_fp")
    yes = parse_levels(book.get("yes_dollars"), "orderbook_fp.yes_dollars")
    no = parse_levels(book.get("no_dollars"), "orderbook_fp.no_dollars")
    return YesBook.from_bid_ladders(yes, no)


def parse_market(value: object) -> MarketInfo:
    data = fields.obj(value, "market")
    ticker = fields.string(data, "ticker", "market")
    what = f"market {ticker}"
    try:
        grid = PriceGrid.from_price_ranges(
            fields.array(fields.required(data, "price_ranges", what), f"{what}.price_ranges")
        )
    except GridError as exc:
        raise WireError(f"{what}: {exc}") from None
    result = data.get("result")
    return MarketInfo(
        ticker=ticker,
        event_ticker=fields.opt_string(data, "event_ticker", what) or "",
        status=fields.string(data, "status", what),
        open_ms=fields.time_ms(data, "open_time", what, default=0),
        close_ms=fields.time_ms(data, "close_time", what),
        grid=grid,
        price_level_structure=fields.opt_string(data, "price_level_structure", what) or "",
        exchange_index=fields.integer(data, "exchange_index", what, default=0),
        can_close_early=fields.boolean(data, "can_close_early", what, default=False),
        result=result if isinstance(result, str) else "",
        market_type=fields.opt_string(data, "market_type", what) or "binary",
    )


def parse_market_response(body: object) -> MarketInfo:
    return parse_market(
        fields.required(fields.obj(body, "market response"), "market", "market response")
    )


def parse_markets_page(body: object) -> tuple[list[MarketInfo], str | None]:
    return fields.page(body, "markets response", "markets", parse_market)


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
    series = fields.obj(
        fields.required(fields.obj(body, "series response"), "series", "series response"), "series"
    )
    return FeeInfo(
        _fee_type(series.get("fee_type"), "series.fee_type"),
        _fee_multiplier_pct(series.get("fee_multiplier"), "series.fee_multiplier"),
    )


def parse_event_fees(body: object) -> tuple[str, FeeInfo]:
    """``GET /events/{e}`` -> (series_ticker, the event's fee overrides)."""
    event = fields.obj(
        fields.required(fields.obj(body, "event response"), "event", "event response"), "event"
    )
    return fields.string(event, "series_ticker", "event"), FeeInfo(
        _fee_type(event.get("fee_type_override"), "event.fee_type_override"),
        _fee_multiplier_pct(event.get("fee_multiplier_override"), "event.fee_multiplier_override"),
    )


def parse_exchange_status(body: object) -> ExchangeStatus:
    data = fields.obj(body, "exchange status")
    resume = data.get("exchange_estimated_resume_time")
    return ExchangeStatus(
        exchange_active=fields.boolean(data, "exchange_active", "exchange status"),
        trading_active=fields.boolean(data, "trading_active", "exchange status"),
        resume_ms=None
        if not resume
        else fields.parse_time_ms(resume, "exchange_estimated_resume_time"),
    )
