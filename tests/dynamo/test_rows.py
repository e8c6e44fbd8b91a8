from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain import Fill, Order, OrderStatus, Position, Settlement, Side
from common.dynamo.codec import to_attrs
from common.dynamo.rows import (
    RowError,
    decision_row,
    fill_row,
    order_row,
    position_row,
    settlement_row,
)
from common.events import (
    ORDER_EVENTS,
    decision_event,
    fill_event,
    order_event,
    position_event,
    settlement_event,
)
from common.position_record import PositionRecord

TS = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z


def an_order(**changes: object) -> Order:
    values: dict = {
        "ticker": "KXA",
        "side": Side.BID,
        "price": 5600,
        "count": 1000,
        "client_order_id": "c-1",
        "order_id": "o-1",
        "status": OrderStatus.RESTING,
    }
    values.update(changes)
    return Order(**values)


def a_fill(**changes: object) -> dict:
    fill = Fill("f-1", "o-1", "KXA", Side.ASK, 5700, 250, 1_234, False, TS, "c-1")
    position = Position("KXA", position=-250, realized_pnl=-12_500)
    return {**fill_event(fill, position), **changes}


def test_order_row_has_the_plan_attributes_in_human_units() -> None:
    row = order_row(order_event(an_order(), "placed", TS), "1-0")
    assert row["date"] == "2026-01-01"
    assert row["sk"] == "2026-01-01T00:00:00.123Z#o-1#placed:5600:1000:0"
    assert row["market_id"] == "KXA" and row["side"] == "buy" and row["book_side"] == "bid"
    assert row["price"] == Decimal("0.5600") and row["size"] == Decimal("10.00")
    assert row["status"] == "placed" and row["order_status"] == "resting"
    to_attrs(row)  # no float anywhere


def test_a_cancel_is_logged_with_the_plans_status_word() -> None:
    # original-plan.md's trade log: status placed/filled/cancelled (DESIGN.md §4 keeps its tables)
    event = order_event(an_order(status=OrderStatus.CANCELED), "canceled", TS, cancelled=1000)
    row = order_row(event, "1-1")
    assert row["status"] == "cancelled" and row["cancelled_size"] == Decimal("10.00")
    assert row["sk"] == "2026-01-01T00:00:00.123Z#o-1#canceled:5600:1000:0"  # replays: same key


def test_an_order_without_exchange_id_is_keyed_by_client_order_id() -> None:
    row = order_row(order_event(an_order(order_id=None), "unknown", TS))
    assert "#c-1#unknown" in row["sk"] and "order_id" not in row


def test_fill_row() -> None:
    row = fill_row(a_fill(), "2-0")
    assert row["sk"] == "2026-01-01T00:00:00.123Z#o-1#fill:f-1"
    assert row["status"] == "filled" and row["side"] == "sell"
    assert row["fill_price"] == Decimal("0.5700") and row["fill_size"] == Decimal("2.50")
    assert row["pnl_realized"] == Decimal("-0.012500") and row["fee"] == Decimal("0.001234")
    assert row["position_after"] == Decimal("-2.50")


def test_replays_share_a_key_and_distinct_events_do_not() -> None:
    placed = order_event(an_order(), "placed", TS)
    assert order_row(placed, "1-0")["sk"] == order_row(dict(placed), "9-0")["sk"]
    keys = {order_row(order_event(an_order(), e, TS))["sk"] for e in ORDER_EVENTS}
    keys |= {order_row(order_event(an_order(price=5500), "amended", TS))["sk"]}
    keys |= {fill_row(a_fill())["sk"], fill_row(a_fill(fill_id="f-2"))["sk"]}
    assert len(keys) == len(ORDER_EVENTS) + 3


def test_decision_row_expires_and_never_holds_a_float() -> None:
    payload = decision_event(
        "KXA",
        TS,
        {"best_bid": 5500, "mid": 0.5},
        -300,
        {"bid": 5400},
        [{"kind": "place", "price": 5400}, {"kind": "cancel"}],
        [],
    )
    row = decision_row(payload, "3-0", ttl_days=2)
    assert row["timestamp"] == "2026-01-01T00:00:00.123Z#KXA#3-0"
    assert row["expires_at"] == TS // 1000 + 2 * 86_400
    assert row["inventory"] == Decimal("-3.00")
    assert isinstance(row["order_book_snapshot"], str)  # held a float: stored as JSON text
    assert row["orders_placed"] == [{"kind": "place", "price": 5400}]
    assert row["orders_cancelled"] == [{"kind": "cancel"}]
    to_attrs(row)


@pytest.mark.parametrize(
    "changes",
    [
        {"ts_ms": "soon"},
        {"ts_ms": 5},
        {"side": "buy"},
        {"price": 10_001},
        {"price": True},
        {"client_order_id": ""},
        {"ticker": None},
    ],
)
def test_malformed_order_events_are_row_errors(changes: dict) -> None:
    with pytest.raises(RowError):
        order_row({**order_event(an_order(), "placed", TS), **changes})


@given(
    st.dictionaries(
        st.sampled_from(
            ["ts_ms", "fill_id", "order_id", "ticker", "side", "price", "count", "fee"]
        ),
        st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5), st.booleans()),
    )
)
def test_any_fill_payload_is_a_row_without_floats_or_a_row_error(payload: dict) -> None:
    try:
        row = fill_row({**a_fill(), **payload})
    except RowError:
        return
    to_attrs(row)


def test_a_number_dynamodb_cannot_hold_is_kept_as_json_text() -> None:
    payload = decision_event("KXA", TS, {"seq": 10**40}, 0, {}, [], [])
    row = decision_row(payload)
    assert row["order_book_snapshot"] == '{"seq":' + str(10**40) + "}"
    to_attrs(row)


def test_two_decisions_of_one_millisecond_are_two_rows_and_a_replay_is_one() -> None:
    """Issue 19.6: the key was {ms}#{ticker}, so a market's two passes (bid and ask) decided in
    the same millisecond overwrote each other."""
    bid = decision_event("KXA", TS, {}, 0, {}, [{"kind": "place", "side": "bid"}], [])
    ask = decision_event("KXA", TS, {}, 0, {}, [{"kind": "place", "side": "ask"}], [])
    first, second = decision_row(bid, "7-0"), decision_row(ask, "7-1")
    assert first["timestamp"] != second["timestamp"]
    assert decision_row(bid, "7-0")["timestamp"] == first["timestamp"]  # a replay: one row


def test_a_settlement_is_a_trade_log_row_with_its_realized_pnl() -> None:
    """Issue 19.6: settlements never reached the trade log."""
    before = Position("KXA", 1_000, 4_000_000, 0, 0, TS - 5)  # 10 YES bought at $0.40
    closed = PositionRecord(Position("KXA", 0, 0, 6_000_000, 0, TS), 3, (), TS, "settle:KXA:1")
    pooled = PositionRecord(Position("_closed", realized_pnl=6_000_000), 1)
    event = settlement_event(
        Settlement("KXA", "yes", TS, 0), before, closed.payload(), pooled.payload()
    )
    row = settlement_row(event, "9-0")
    assert row["sk"] == "2026-01-01T00:00:00.123Z#KXA#settlement"
    assert row["status"] == "settled" and row["result"] == "yes"
    assert row["pnl_realized"] == Decimal("6") and row["position_before"] == Decimal("10")
    assert row["position_after"] == 0 and row["size"] == Decimal("10")
    to_attrs(row)


def test_a_position_set_from_the_exchange_is_a_trade_log_row() -> None:
    record = PositionRecord(Position("KXA", -1_000, -6_000_000), 7)
    event = position_event(
        "KXA", TS, "the exchange wins", Position("KXA", -1_500), record.payload()
    )
    row = position_row(event, "9-1")
    assert row["status"] == "position_set" and row["sk"].endswith("#KXA#position_set:7")
    assert row["position_before"] == Decimal("-15") and row["position_after"] == Decimal("-10")
