"""The simulated market catalog: series, events and markets with Kalshi-looking tickers.

Three series carry the fee variety: ``SIMQ`` (quadratic, multiplier 1), ``SIMMF``
(quadratic_with_maker_fees, multiplier 1) and ``SIMIDX`` (quadratic, multiplier 0.5). Market
``i`` joins one of them by index; each series has one event per close date,
``{SERIES}-{YYMONDD}`` (e.g. ``SIMQ-26DEC31``), and markets are ``{EVENT}-M{i:03d}``
(``SIMQ-26DEC31-M000``). Most markets tick in cents (``linear_cent``); every sixth is
``deci_cent`` and every ninth ``tapered_deci_cent``.

A scenario with ``event_size`` K > 1 groups markets into mutually exclusive events instead:
markets ``jK .. jK+K-1`` are the outcomes of event ``{SERIES}-{YYMONDD}E{j:02d}`` (the series of
its first market; a last group of one joins the event before it), exactly one of which settles
YES.
"""

from __future__ import annotations

from datetime import UTC, datetime

from common.fees import FeeType
from common.grid import PriceGrid
from sim.engine import Exchange
from sim.model import Event, Market, Series
from sim.scenario import Scenario

SERIES = (
    Series("SIMQ", "Simulated markets (quadratic fees)", FeeType.QUADRATIC, 100),
    Series(
        "SIMMF",
        "Simulated markets (maker fees)",
        FeeType.QUADRATIC_WITH_MAKER_FEES,
        100,
    ),
    Series("SIMIDX", "Simulated index markets (half fees)", FeeType.QUADRATIC, 50),
)

TAPERED_DECI_CENT = PriceGrid.from_price_ranges(
    [
        {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
        {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
        {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
    ]
)


def series_for(index: int) -> Series:
    if index % 5 == 3:
        return SERIES[1]
    if index % 7 == 5:
        return SERIES[2]
    return SERIES[0]


def grid_for(index: int) -> tuple[str, PriceGrid]:
    if index % 6 == 4:
        return "deci_cent", PriceGrid.uniform(10)
    if index % 9 == 8:
        return "tapered_deci_cent", TAPERED_DECI_CENT
    return "linear_cent", PriceGrid.linear_cent()


def date_code(ms: int) -> str:
    """Kalshi's event date suffix: 2026-12-31 -> '26DEC31'."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%y%b%d").upper()


def event_group(index: int, n_markets: int, event_size: int) -> int | None:
    """The mutually exclusive event market ``index`` belongs to, or None (independent)."""
    if event_size <= 1 or n_markets < 2:
        return None
    last = max(0, (n_markets - 2) // event_size) if n_markets % event_size == 1 else None
    group = index // event_size
    return min(group, last) if last is not None else group


def build_catalog(exchange: Exchange, scenario: Scenario, n_markets: int, start_ms: int) -> None:
    """Add ``n_markets`` markets (and their series and events) opening at start + open delay."""
    open_ms = start_ms + scenario.open_delay_s * 1000
    close_ms = open_ms + scenario.market_lifetime_s * 1000
    code = date_code(close_ms)
    for series in SERIES:
        exchange.add_series(series)
    for index in range(n_markets):
        group = event_group(index, n_markets, scenario.event_size)
        series = series_for(index if group is None else group * scenario.event_size)
        event_ticker = f"{series.ticker}-{code}" + ("" if group is None else f"E{group:02d}")
        if event_ticker not in exchange.events_by_ticker:
            exchange.add_event(
                Event(
                    event_ticker=event_ticker,
                    series_ticker=series.ticker,
                    title=f"{series.title}, closing {code}"
                    + ("" if group is None else f", event {group}: which outcome happens?"),
                    sub_title=f"On {code}",
                    strike_date_ms=close_ms,
                    mutually_exclusive=group is not None,
                )
            )
        structure, grid = grid_for(index)
        exchange.add_market(
            Market(
                ticker=f"{event_ticker}-M{index:03d}",
                event_ticker=event_ticker,
                series_ticker=series.ticker,
                title=f"Will simulated outcome {index} happen?",
                yes_sub_title=f"Outcome {index}",
                grid=grid,
                price_level_structure=structure,
                fee_type=series.fee_type,
                fee_multiplier_pct=series.fee_multiplier_pct,
                created_ms=start_ms,
                open_ms=open_ms,
                close_ms=close_ms,
                settlement_timer_s=scenario.settlement_timer_s,
                updated_ms=start_ms,
            )
        )
