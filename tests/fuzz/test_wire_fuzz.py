"""Every parser of an exchange payload (common/kalshi/wire/) under bad input: malformed
shapes, wrong types, huge numbers, unknown enum values, deep inside valid payloads. The answer
is a value or ``WireError`` naming what was wrong: never another exception (no KeyError,
TypeError, OverflowError...), so a bad payload costs the caller one message, not a crash.

The parsers are found by name, so a new ``parse_*`` without a fuzz case fails
``test_every_parser_is_fuzzed``. (Malformed JSON *text* is the transport's and the WebSocket's
business: see test_ws_fuzz.py.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.domain import Side
from common.errors import WireError
from common.kalshi.wire import (
    calendar,
    error_body,
    fields,
    markets,
    order_changes,
    orders,
    portfolio,
    stream,
)
from common.kalshi.wire.orders import OrderRequest
from common.numbers import NumberError, fast_count, fast_price
from tests.fuzz.strategies import JUNK, mutate
from tests.kalshi.test_wire import FILL, MARKET, ORDER, USER_ORDER, WS_FILL

REQUEST = OrderRequest("KX-1", Side.BID, 5600, 1000, "c-1")
SECOND = OrderRequest("KX-1", Side.ASK, 6000, 100, "c-2")
ORDER_VALUE = orders.parse_order(ORDER)
ACK = {
    "order_id": "o-1",
    "client_order_id": "c-1",
    "fill_count": "0.00",
    "remaining_count": "10.00",
    "ts_ms": 1,
}
POSITION = {
    "ticker": "KX",
    "position_fp": "-2.00",
    "total_traded_dollars": "1.00",
    "market_exposure_dollars": "0.5",
    "realized_pnl_dollars": "-0.1",
    "fees_paid_dollars": "0.02",
    "last_updated_ts": "2026-01-01T00:00:00Z",
}
GROUP = {"is_auto_cancel_enabled": True, "contracts_limit_fp": "5.00", "orders": ["o"]}

# name -> (call, a valid payload)
SETTLEMENT = {
    "ticker": "KX-1",
    "event_ticker": "KX",
    "market_result": "yes",
    "yes_count_fp": "10.00",
    "no_count_fp": "0.00",
    "revenue": 1000,
    "value": 100,
    "settled_time": "2026-11-24T10:00:00Z",
    "fee_cost": "0.0000",
}

CASES: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "parse_error_body": (
        error_body.parse_error_body,
        {"error": {"code": "c", "message": "m", "details": "d"}},
    ),
    "parse_time_ms": (lambda v: fields.parse_time_ms(v, "t"), "2026-01-01T00:00:00.250Z"),
    "parse_levels": (
        lambda v: markets.parse_levels(v, "yes"),
        [["0.0800", "3.00"], ["0.0900", "1.00"]],
    ),
    "parse_orderbook": (
        markets.parse_orderbook,
        {"orderbook_fp": {"yes_dollars": [["0.0800", "3.00"]], "no_dollars": [["0.0100", "1.00"]]}},
    ),
    "parse_market": (markets.parse_market, MARKET),
    "parse_market_response": (markets.parse_market_response, {"market": MARKET}),
    "parse_markets_page": (markets.parse_markets_page, {"markets": [MARKET], "cursor": "abc"}),
    "parse_cursor": (
        lambda v: fields.cursor(v) if isinstance(v, dict) else None,
        {"cursor": "x"},
    ),
    "parse_series_fees": (
        markets.parse_series_fees,
        {"series": {"fee_type": "quadratic", "fee_multiplier": 1}},
    ),
    "parse_event_fees": (
        markets.parse_event_fees,
        {
            "event": {
                "series_ticker": "S",
                "fee_type_override": "quadratic_with_maker_fees",
                "fee_multiplier_override": "0.5",
            }
        },
    ),
    "parse_event_exclusive": (
        markets.parse_event_exclusive,
        {"event": {"series_ticker": "S", "mutually_exclusive": True}},
    ),
    "parse_fee_changes": (
        markets.parse_fee_changes,
        {
            "series_fee_change_arr": [
                {
                    "id": "1",
                    "series_ticker": "S",
                    "fee_type": "flat",
                    "fee_multiplier": 1.5,
                    "scheduled_ts": "2026-01-01T00:00:00Z",
                }
            ]
        },
    ),
    "parse_exchange_schedule": (
        calendar.parse_exchange_schedule,
        {
            "schedule": {
                "standard_hours": [
                    {
                        "start_time": "2026-01-01T00:00:00Z",
                        "end_time": "2027-01-01T00:00:00Z",
                        "monday": [{"open_time": "00:00", "close_time": "23:59"}],
                        "tuesday": [],
                        "wednesday": [],
                        "thursday": [
                            {"open_time": "00:00", "close_time": "03:00"},
                            {"open_time": "05:00", "close_time": "23:59"},
                        ],
                        "friday": [],
                        "saturday": [],
                        "sunday": [],
                    }
                ],
                "maintenance_windows": [
                    {
                        "start_datetime": "2026-01-01T08:00:00Z",
                        "end_datetime": "2026-01-01T10:00:00Z",
                    }
                ],
            }
        },
    ),
    "parse_exchange_status": (
        markets.parse_exchange_status,
        {
            "exchange_active": True,
            "trading_active": True,
            "exchange_estimated_resume_time": "2026-01-01T00:00:00Z",
        },
    ),
    "parse_order": (orders.parse_order, ORDER),
    "parse_order_response": (orders.parse_order_response, {"order": ORDER}),
    "parse_orders_page": (orders.parse_orders_page, {"orders": [ORDER, ORDER], "cursor": ""}),
    "parse_order_refs_page": (
        orders.parse_order_refs_page,
        {"orders": [ORDER, ORDER], "cursor": ""},
    ),
    "parse_user_order": (stream.parse_user_order, USER_ORDER),
    "order_from_ack": (lambda v: orders.order_from_ack(REQUEST, v), ACK),
    "parse_batch_create": (
        lambda v: orders.parse_batch_create(v, [REQUEST, SECOND]),
        {
            "orders": [
                {"client_order_id": "c-2", "error": {"code": "invalid_order", "message": "x"}},
                ACK,
            ]
        },
    ),
    "order_from_amend_ack": (
        lambda v: order_changes.order_from_amend_ack(ORDER_VALUE, 5700, 700, v, 500),
        {"order_id": "o-1", "remaining_count": "5.00", "fill_count": "0.00", "ts_ms": 9},
    ),
    "order_from_decrease_ack": (
        lambda v: order_changes.order_from_decrease_ack(ORDER_VALUE, v),
        {"order_id": "o-1", "remaining_count": "3.00", "ts_ms": 1},
    ),
    "parse_cancel": (
        order_changes.parse_cancel,
        {"order_id": "o-1", "reduced_by": "8.00", "ts_ms": 1},
    ),
    "parse_batch_cancel": (
        lambda v: order_changes.parse_batch_cancel(v, ["a", "b"]),
        {
            "orders": [
                {
                    "order_id": "b",
                    "reduced_by": "0.00",
                    "error": {"code": "not_found", "message": "x"},
                },
                {"order_id": "a", "reduced_by": "1.00", "ts_ms": 1},
            ]
        },
    ),
    "parse_fill": (portfolio.parse_fill, FILL),
    "parse_fills_page": (portfolio.parse_fills_page, {"fills": [FILL], "cursor": "c"}),
    "parse_settlement": (portfolio.parse_settlement, SETTLEMENT),
    "parse_settlements_page": (
        portfolio.parse_settlements_page,
        {"settlements": [SETTLEMENT], "cursor": ""},
    ),
    "parse_ws_fill": (stream.parse_ws_fill, WS_FILL),
    "parse_position": (portfolio.parse_position, POSITION),
    "parse_positions_page": (
        portfolio.parse_positions_page,
        {"market_positions": [POSITION], "cursor": ""},
    ),
    "parse_balance": (
        portfolio.parse_balance,
        {"balance": 12345, "portfolio_value": 100, "updated_ts": 1767225600},
    ),
    "parse_order_group_created": (portfolio.parse_order_group_created, {"order_group_id": "g-1"}),
    "parse_order_group": (lambda v: portfolio.parse_order_group(v, "g"), GROUP),
    "parse_order_groups": (
        portfolio.parse_order_groups,
        {"order_groups": [{"id": "g", **GROUP}]},
    ),
    "parse_ws_snapshot": (
        stream.parse_ws_snapshot,
        {
            "market_ticker": "KX",
            "yes_dollars_fp": [["0.0800", "3.00"]],
            "no_dollars_fp": [["0.0100", "1.00"]],
        },
    ),
    "parse_ws_delta": (
        stream.parse_ws_delta,
        {
            "market_ticker": "KX",
            "side": "no",
            "price_dollars": "0.4400",
            "delta_fp": "-2.50",
            "ts_ms": 7,
        },
    ),
}


# the number fast paths of common/numbers.py: only NumberError may escape them
NUMBER_CASES: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "fast_price": (lambda v: fast_price(v, "p"), "0.5600"),
    "fast_count": (lambda v: fast_count(v, "c", signed=True), "-10.50"),
}


def test_every_parser_is_fuzzed() -> None:
    parsers = {
        name
        for module in (
            calendar,
            error_body,
            fields,
            markets,
            order_changes,
            orders,
            portfolio,
            stream,
        )
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__ and name.startswith(("parse_", "order_from_"))
    }
    assert parsers - set(CASES) == set(), "add a fuzz case for each new parser"


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_valid_payload_parses(name: str) -> None:
    call, valid = CASES[name]
    call(valid)  # the fuzzing below starts from a payload the parser accepts


def _only_wire_error(call: Callable[[Any], Any], payload: Any) -> None:
    try:
        call(payload)
    except WireError as exc:
        assert str(exc), "a WireError must say what was wrong"
    # any other exception escapes and fails the test, with the payload Hypothesis shrank to


@settings(max_examples=600, deadline=None)
@given(name=st.sampled_from(sorted(CASES)), data=st.data())
def test_mutated_payloads_raise_only_wire_error(name: str, data: st.DataObject) -> None:
    call, valid = CASES[name]
    _only_wire_error(call, mutate(data, valid))


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(CASES)), junk=JUNK)
def test_junk_raises_only_wire_error(name: str, junk: Any) -> None:
    _only_wire_error(CASES[name][0], junk)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(NUMBER_CASES)), data=st.data())
def test_number_fast_paths_raise_only_number_error(name: str, data: st.DataObject) -> None:
    call, valid = NUMBER_CASES[name]
    call(valid)
    try:
        call(data.draw(st.one_of(JUNK, st.text(max_size=16))))
    except NumberError as exc:
        assert str(exc), "a NumberError must say what was wrong"
