"""Pure parse/build functions of the wire layer: valid payloads map to domain types, malformed
ones raise WireError naming the field (and never anything else)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.domain import Order, OrderStatus, Side, TimeInForce
from common.errors import WireError
from common.fees import FeeType
from common.kalshi.wire import error_body, markets, order_changes, orders, portfolio, stream
from common.kalshi.wire.orders import OrderRequest

ORDER = {
    "order_id": "o-1",
    "user_id": "u-1",
    "client_order_id": "c-1",
    "ticker": "KX-1",
    "outcome_side": "no",
    "book_side": "ask",
    "side": "yes",
    "action": "sell",
    "type": "limit",
    "status": "resting",
    "yes_price_dollars": "0.5600",
    "no_price_dollars": "0.4400",
    "fill_count_fp": "2.00",
    "remaining_count_fp": "8.00",
    "initial_count_fp": "10.00",
    "taker_fees_dollars": "0.0000",
    "maker_fees_dollars": "0.0000",
    "taker_fill_cost_dollars": "0.0000",
    "maker_fill_cost_dollars": "1.1200",
    "created_time": "2026-01-01T00:00:00.250Z",
    "last_update_time": "2026-01-01T00:00:01Z",
    "order_group_id": "g-1",
}
FILL = {
    "fill_id": "f-1",
    "trade_id": "f-1",
    "order_id": "o-1",
    "ticker": "KX-1",
    "market_ticker": "KX-1",
    "outcome_side": "yes",
    "book_side": "bid",
    "count_fp": "3.00",
    "yes_price_dollars": "0.4100",
    "no_price_dollars": "0.5900",
    "is_taker": False,
    "fee_cost": "0.0150",
    "created_time": "2026-01-01T00:00:02Z",
    "ts": 1767225602,
}
MARKET = {
    "ticker": "KX-1",
    "event_ticker": "EV-1",
    "status": "active",
    "open_time": "2026-01-01T00:00:00Z",
    "close_time": "2026-01-02T00:00:00Z",
    "price_level_structure": "tapered_deci_cent",
    "price_ranges": [
        {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
        {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
        {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
    ],
    "exchange_index": 0,
    "can_close_early": True,
    "result": "",
}
WS_FILL = {
    "trade_id": "t-1",
    "order_id": "o-1",
    "client_order_id": "c-1",
    "market_ticker": "KX-1",
    "is_taker": True,
    "yes_price_dollars": "0.4100",
    "count_fp": "1.50",
    "fee_cost": "0.0200",
    "post_position_fp": "-3.50",
    "book_side": "ask",
    "outcome_side": "no",
    "ts_ms": 1767225602123,
}
USER_ORDER = {
    "order_id": "o-1",
    "user_id": "u",
    "ticker": "KX-1",
    "status": "executed",
    "outcome_side": "yes",
    "book_side": "bid",
    "yes_price_dollars": "0.4100",
    "fill_count_fp": "10.00",
    "remaining_count_fp": "0.00",
    "initial_count_fp": "10.00",
    "client_order_id": "c-1",
    "created_ts_ms": 1767225600000,
    "last_updated_ts_ms": 1767225601000,
}
REQUEST = OrderRequest("KX-1", Side.BID, 5600, 1000, "c-1")


def test_parse_order_maps_fields_to_integer_units() -> None:
    order = orders.parse_order(ORDER)
    assert (order.order_id, order.ticker, order.side, order.price) == (
        "o-1",
        "KX-1",
        Side.ASK,
        5600,
    )
    assert (order.count, order.filled, order.remaining) == (1000, 200, 800)
    assert order.status is OrderStatus.RESTING
    assert order.created_ms == 1767225600250
    assert order.updated_ms == 1767225601000
    assert order.order_group_id == "g-1"


def test_parse_order_counts_cover_an_amended_size_increase() -> None:
    order = orders.parse_order({**ORDER, "remaining_count_fp": "20.00"})
    assert order.count == 2200


def test_parse_fill_and_ws_fill() -> None:
    fill = portfolio.parse_fill(FILL)
    assert (fill.fill_id, fill.side, fill.price, fill.count, fill.fee) == (
        "f-1",
        Side.BID,
        4100,
        300,
        15_000,
    )
    assert fill.ts_ms == 1767225602000 and not fill.is_taker
    ws_fill = stream.parse_ws_fill(WS_FILL)
    assert ws_fill.side is Side.ASK and ws_fill.post_position == -350 and ws_fill.count == 150
    assert ws_fill.client_order_id == "c-1" and ws_fill.ts_ms == 1767225602123


def test_parse_user_order() -> None:
    order = stream.parse_user_order(USER_ORDER)
    assert order.status is OrderStatus.EXECUTED and order.filled == 1000 and order.remaining == 0
    assert order.exchange_ms == 1767225601000  # the exchange's time of the change


def test_an_order_change_without_its_time_says_none() -> None:
    """The exchange's time of a change is only ever what it said: not its creation time (a
    later update compared with it would look older than it is)."""
    unsaid = {k: v for k, v in USER_ORDER.items() if k != "last_updated_ts_ms"}
    assert stream.parse_user_order(unsaid).exchange_ms == 0
    assert orders.parse_order({**ORDER, "last_update_time": None}).exchange_ms == 0
    assert orders.parse_order(ORDER).exchange_ms == 1767225601000


def test_parse_market_reads_grid_and_times() -> None:
    info = markets.parse_market(MARKET)
    assert info.close_ms - info.open_ms == 86_400_000
    assert info.grid.is_valid(50) and not info.grid.is_valid(5050) and info.grid.is_valid(5000)
    meta = info.to_meta(FeeType.QUADRATIC_WITH_MAKER_FEES, 50, 7)
    assert meta.fee_type is FeeType.QUADRATIC_WITH_MAKER_FEES and meta.fee_multiplier_pct == 50
    assert meta.is_open


def test_parse_orderbook_builds_yes_book_from_both_ladders() -> None:
    book = markets.parse_orderbook(
        {
            "orderbook_fp": {
                "yes_dollars": [["0.4100", "10.00"], ["0.4200", "13.00"]],
                "no_dollars": [["0.5600", "17.00"]],
            }
        }
    )
    assert book.best_bid == 4200 and book.best_bid_size == 1300
    assert book.best_ask == 4400 and book.best_ask_size == 1700


def test_parse_orderbook_accepts_missing_or_empty_sides() -> None:
    assert markets.parse_orderbook({"orderbook_fp": {}}).is_empty
    assert markets.parse_orderbook(
        {"orderbook_fp": {"yes_dollars": [], "no_dollars": None}}
    ).is_empty


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"error": {"code": "order_already_exists", "message": "exists", "details": "d"}},
            ("order_already_exists", "exists", "d"),
        ),
        (
            {"code": "invalid_order", "message": "invalid order", "details": "post only cross"},
            ("invalid_order", "invalid order", "post only cross"),
        ),
        ({"error": "too many requests"}, ("", "too many requests", "")),
        ("plain text", ("", "plain text", "")),
        (None, ("", "", "")),
    ],
)
def test_parse_error_body_reads_every_shape(body: object, expected: tuple[str, str, str]) -> None:
    info = error_body.parse_error_body(body)
    assert (info.code, info.message, info.details) == expected


def test_build_create_order_is_v2_body() -> None:
    body = orders.build_create_order(
        OrderRequest(
            "KX-1",
            Side.ASK,
            5650,
            250,
            "c-9",
            expiration_ms=1767225600001,
            order_group_id="g",
            cancel_order_on_pause=True,
        )
    )
    assert body == {
        "ticker": "KX-1",
        "side": "ask",
        "price": "0.5650",
        "count": "2.50",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
        "client_order_id": "c-9",
        "post_only": True,
        "expiration_time": 1767225601,
        "order_group_id": "g",
        "cancel_order_on_pause": True,
    }


@pytest.mark.parametrize(
    "request_",
    [
        OrderRequest("KX", Side.BID, 0, 100, "c"),
        OrderRequest("KX", Side.BID, 10_000, 100, "c"),
        OrderRequest("KX", Side.BID, 5000, 0, "c"),
        OrderRequest(
            "KX", Side.BID, 5000, 100, "c", time_in_force=TimeInForce.IOC, expiration_ms=5
        ),
        OrderRequest("KX", Side.BID, 5000, 100, "c", self_trade_prevention_type="none"),
    ],
)
def test_build_create_order_refuses_bad_requests(request_: OrderRequest) -> None:
    with pytest.raises(ValueError):
        orders.build_create_order(request_)


def test_order_from_ack_derives_status_from_counts() -> None:
    resting = orders.order_from_ack(
        REQUEST, {"order_id": "o", "fill_count": "0.00", "remaining_count": "10.00", "ts_ms": 5}
    )
    assert (
        resting.status is OrderStatus.RESTING
        and resting.remaining == 1000
        and resting.created_ms == 5
    )
    done = orders.order_from_ack(
        REQUEST, {"order_id": "o", "fill_count": "10.00", "remaining_count": "0.00", "ts_ms": 5}
    )
    assert done.status is OrderStatus.EXECUTED
    ioc = orders.order_from_ack(
        REQUEST, {"order_id": "o", "fill_count": "4.00", "remaining_count": "0.00", "ts_ms": 5}
    )
    assert ioc.status is OrderStatus.CANCELED and ioc.filled == 400


def test_parse_batch_create_keeps_request_order_and_item_errors() -> None:
    second = OrderRequest("KX-1", Side.ASK, 6000, 100, "c-2")
    answer = {
        "orders": [
            {
                "client_order_id": "c-2",
                "error": {"code": "invalid_order", "message": "post only cross"},
            },
            {
                "order_id": "o-1",
                "client_order_id": "c-1",
                "fill_count": "0.00",
                "remaining_count": "10.00",
                "ts_ms": 1,
            },
        ]
    }
    first, error = orders.parse_batch_create(answer, [REQUEST, second])
    assert isinstance(first, Order)
    assert getattr(first, "order_id", None) == "o-1"
    assert isinstance(error, error_body.ErrorBody) and error.code == "invalid_order"


def test_amend_ack_and_count_semantics() -> None:
    order = orders.parse_order(ORDER)  # filled 2, remaining 8
    body = order_changes.build_amend(order, 5700, order.filled + 500)
    assert body["count"] == "7.00" and body["price"] == "0.5700"
    amended = order_changes.order_from_amend_ack(
        order,
        5700,
        700,
        {"order_id": "o-1", "remaining_count": "5.00", "fill_count": "0.00", "ts_ms": 9},
        500,
    )
    assert (amended.price, amended.count, amended.filled, amended.remaining) == (
        5700,
        700,
        200,
        500,
    )
    assert amended.exchange_ms == 9  # the answer's own time, for the updates that follow it


def test_decrease_and_cancel() -> None:
    order = orders.parse_order(ORDER)
    assert order_changes.build_decrease("KX-1", reduce_by=None, reduce_to=300) == {
        "market_ticker": "KX-1",
        "reduce_to": "3.00",
    }
    with pytest.raises(ValueError):
        order_changes.build_decrease("KX-1", reduce_by=1, reduce_to=1)
    smaller = order_changes.order_from_decrease_ack(
        order, {"order_id": "o-1", "remaining_count": "3.00", "ts_ms": 1}
    )
    assert smaller.remaining == 300 and smaller.status is OrderStatus.RESTING
    assert (
        order_changes.parse_cancel({"order_id": "o-1", "reduced_by": "8.00", "ts_ms": 1}).reduced_by
        == 800
    )


def test_parse_batch_cancel_in_request_order() -> None:
    results = order_changes.parse_batch_cancel(
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
        ["a", "b"],
    )
    assert isinstance(results[0], order_changes.CancelResult) and results[0].reduced_by == 100
    assert isinstance(results[1], error_body.ErrorBody) and results[1].code == "not_found"
    with pytest.raises(WireError):
        order_changes.parse_batch_cancel({"orders": []}, ["a"])


def test_balance_positions_status_groups() -> None:
    balance = portfolio.parse_balance(
        {"balance": 12345, "portfolio_value": 100, "updated_ts": 1767225600}
    )
    assert balance.balance == 123_450_000 and balance.updated_ms == 1767225600000
    assert portfolio.parse_balance({"balance": 1, "balance_dollars": "0.0150"}).balance == 15_000
    position = portfolio.parse_position(
        {
            "ticker": "KX",
            "position_fp": "-2.00",
            "total_traded_dollars": "1.00",
            "market_exposure_dollars": "0.5",
            "realized_pnl_dollars": "-0.1",
            "fees_paid_dollars": "0.02",
            "last_updated_ts": "2026-01-01T00:00:00Z",
        }
    )
    assert position.position == -200 and position.realized_pnl == -100_000
    status = markets.parse_exchange_status({"exchange_active": True, "trading_active": False})
    assert status.exchange_active and not status.trading_active
    group = portfolio.parse_order_group(
        {"is_auto_cancel_enabled": True, "contracts_limit_fp": "5.00", "orders": ["o"]}, "g"
    )
    assert group.contracts_limit == 500 and group.order_ids == ("o",)


def test_ws_snapshot_and_delta() -> None:
    ticker, yes, no = stream.parse_ws_snapshot(
        {"market_ticker": "KX", "yes_dollars_fp": [["0.0800", "300.00"]]}
    )
    assert (ticker, yes, no) == ("KX", [(800, 30000)], [])
    assert stream.parse_ws_delta(
        {
            "market_ticker": "KX",
            "side": "no",
            "price_dollars": "0.4400",
            "delta_fp": "-2.50",
            "ts_ms": 7,
        }
    ) == ("KX", False, 4400, -250, 7)
    assert stream.parse_ws_delta(
        {"market_ticker": "KX", "side": "yes", "price_dollars": 0.44, "delta_fp": 3}
    ) == ("KX", True, 4400, 300, 0)


# ---- invariants ------------------------------------------------------------------------------


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

CASES: list[tuple[Any, Any]] = [
    (orders.parse_order, ORDER),
    (portfolio.parse_fill, FILL),
    (markets.parse_market, MARKET),
    (stream.parse_ws_fill, WS_FILL),
    (stream.parse_user_order, USER_ORDER),
    (
        lambda v: orders.order_from_ack(REQUEST, v),
        {"order_id": "o", "fill_count": "0.00", "remaining_count": "10.00", "ts_ms": 1},
    ),
    (
        portfolio.parse_position,
        {"ticker": "KX", "position_fp": "-2.00", "last_updated_ts": "2026-01-01T00:00:00Z"},
    ),
    (
        stream.parse_ws_delta,
        {"market_ticker": "KX", "side": "no", "price_dollars": "0.4400", "delta_fp": "-2.50"},
    ),
    (
        stream.parse_ws_snapshot,
        {
            "market_ticker": "KX",
            "yes_dollars_fp": [["0.0800", "3.00"]],
            "no_dollars_fp": [["0.0100", "1.00"]],
        },
    ),
    (
        markets.parse_orderbook,
        {"orderbook_fp": {"yes_dollars": [["0.0800", "3.00"]], "no_dollars": [["0.0100", "1.00"]]}},
    ),
    (portfolio.parse_balance, {"balance": 100, "portfolio_value": 5, "updated_ts": 1}),
    (markets.parse_exchange_status, {"exchange_active": True, "trading_active": True}),
]


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(range(len(CASES))), data=st.data())
def test_malformed_payloads_raise_only_wire_error(case: int, data: st.DataObject) -> None:
    parse, valid = CASES[case]
    payload = copy.deepcopy(valid)
    action = data.draw(st.sampled_from(["drop", "replace", "whole"]))
    if action == "whole":
        payload = data.draw(JUNK)
    else:
        field = data.draw(st.sampled_from(sorted(payload)))
        if action == "drop":
            del payload[field]
        else:
            payload[field] = data.draw(JUNK)
    try:
        parse(payload)
    except WireError as exc:
        assert str(exc)  # names what was wrong
    # anything else (KeyError, TypeError, ...) fails the test


@pytest.mark.parametrize(
    ("parse", "payload", "needle"),
    [
        (orders.parse_order, {**ORDER, "yes_price_dollars": "1.5"}, "yes_price_dollars"),
        (orders.parse_order, {**ORDER, "status": 7}, "status"),
        (orders.parse_order, {k: v for k, v in ORDER.items() if k != "ticker"}, "ticker"),
        (portfolio.parse_fill, {**FILL, "count_fp": "-1.00"}, "count_fp"),
        (
            markets.parse_orderbook,
            {"orderbook_fp": {"yes_dollars": [["0.5", "1", "x"]]}},
            "yes_dollars[0]",
        ),
        (markets.parse_orderbook, {"orderbook": {"yes": [[50, 1]]}}, "orderbook_fp"),
    ],
)
def test_wire_errors_name_the_field(parse: Any, payload: Any, needle: str) -> None:
    with pytest.raises(WireError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse(payload)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({**MARKET, "price_ranges": []}, "price_ranges"),
        ({**MARKET, "close_time": "tomorrow"}, "close_time"),
        (
            {**MARKET, "status": "suspended_for_lunch"},
            "unknown market status 'suspended_for_lunch'",
        ),
        ({**MARKET, "exchange_index": -3}, "exchange_index"),
    ],
)
def test_an_unreadable_market_is_a_market_not_quoted_with_the_reason(
    payload: dict[str, Any], needle: str
) -> None:
    meta = markets.parse_market(payload).to_meta()
    assert not meta.is_open and needle in meta.problem
    assert meta.unquotable_reason == meta.problem


def test_one_bad_market_in_a_page_spoils_no_other() -> None:
    good = {**MARKET, "ticker": "GOOD-1"}
    bad = {**MARKET, "ticker": "BAD-1", "price_ranges": [{"start": "x"}]}
    nameless = {"status": "active"}
    infos, cursor = markets.parse_markets_page({"markets": [bad, good, nameless], "cursor": "c"})
    assert [i.ticker for i in infos] == ["BAD-1", "GOOD-1"] and cursor == "c"
    assert infos[0].problem and not infos[1].problem
    assert infos[1].to_meta().is_open


@pytest.mark.parametrize(
    ("value", "fee_type", "known"),
    [
        ("quadratic", FeeType.QUADRATIC, True),
        ("flat", FeeType.FLAT, False),
        ("margin_market_maker_program_fees", FeeType.MARGIN_MARKET_MAKER_PROGRAM_FEES, False),
        ("brand_new_fee_type", FeeType.UNKNOWN, False),
    ],
)
def test_fee_types_dora_does_not_know_parse_and_are_priced_conservatively(
    value: str, fee_type: FeeType, known: bool
) -> None:
    info = markets.parse_series_fees({"series": {"fee_type": value, "fee_multiplier": 1}})
    assert info.fee_type is fee_type and fee_type.rates_known is known
    assert (info.raw_type == value) is (not known)


@pytest.mark.parametrize(
    ("multiplier", "pct"), [(1, 100), ("0.5", 50), (0.125, 13), ("0.333333", 34), (0, 0)]
)
def test_a_fee_multiplier_finer_than_hundredths_rounds_up(multiplier: object, pct: int) -> None:
    _, info = markets.parse_event_fees(
        {"event": {"series_ticker": "S", "fee_multiplier_override": multiplier}}
    )
    assert info.fee_multiplier_pct == pct


@pytest.mark.parametrize("multiplier", ["-1", "abc", 1000])
def test_an_impossible_fee_multiplier_is_a_wire_error(multiplier: object) -> None:
    with pytest.raises(WireError, match="fee_multiplier"):
        markets.parse_series_fees(
            {"series": {"fee_type": "quadratic", "fee_multiplier": multiplier}}
        )


def test_fee_changes_parse_and_a_bad_one_spoils_no_other() -> None:
    body = {
        "series_fee_change_arr": [
            {
                "id": "1",
                "series_ticker": "KXA",
                "fee_type": "quadratic_with_maker_fees",
                "fee_multiplier": 0.5,
                "scheduled_ts": "2026-10-01T00:00:00Z",
            },
            {"id": "2", "series_ticker": "KXB", "fee_type": "flat", "scheduled_ts": "soon"},
        ]
    }
    changes = markets.parse_fee_changes(body)
    assert [(c.series_ticker, c.fee_type, c.fee_multiplier_pct) for c in changes] == [
        ("KXA", FeeType.QUADRATIC_WITH_MAKER_FEES, 50)
    ]


@pytest.mark.parametrize("status", ["unknown", "something_new"])
def test_an_order_status_dora_does_not_know_is_unknown_to_be_looked_up(status: str) -> None:
    assert stream.parse_user_order({**USER_ORDER, "status": status}).status is OrderStatus.UNKNOWN
    assert orders.parse_order({**ORDER, "status": status}).status is OrderStatus.UNKNOWN


def test_a_3_34_user_order_parses() -> None:
    """exchange_index required, created_ts_ms and created_time null, last_update_reason new."""
    message = {
        **USER_ORDER,
        "exchange_index": 2,
        "created_ts_ms": None,
        "created_time": None,
        "last_update_reason": "Amend",
    }
    order = stream.parse_user_order(message)
    assert order.created_ms == 0 and order.order_id == USER_ORDER["order_id"]
