"""The events processes put on the Redis streams, and their payloads.

One builder per event so every producer writes the same shape and the persister reads one
contract. Payloads hold integers in dora's units (common/numbers.py) and strings; they are stored
with ``common.messages.encode_event`` (``type`` + JSON ``data``).

| stream | type | producer | payload |
|---|---|---|---|
| ``md`` | ``book`` | marketdata | ticker, seq, exchange_ms, received_ms |
| ``fills`` | ``fill`` | fills | a Fill plus position_after, realized_pnl_after and the market's record |
| ``fills`` | ``settlement`` | fills | the result, the realized PnL, the closed record and ``_closed`` |
| ``fills`` | ``position`` | fills | the position set from the exchange's |
| ``fills`` | ``cursor`` | fills | how far the REST backfill has covered (exchange time) |
| ``fills`` | ``user_order`` | fills | the exchange's update of one of the subaccount's orders |
| ``orders`` | ``order`` | executor | an order's state change (placed, amended, decreased, canceled, rejected, unknown, filled) |
| ``targets`` | ``targets`` | strategy | ticker, computed_ms |
| ``decisions`` | ``decision`` | executor | what was seen and done for one market in one pass |
| ``pnl`` | ``pnl`` / ``risk`` / ``day_closed`` | risk | the risk snapshot; ``risk`` when halt state changes; ``day_closed``: a trading day's last snapshot, at its roll |

The ``pnl`` snapshot carries the day's starting total PnL (``day_start_pnl``): a ``dora:risk``
written again from it (``common.risk_record``) still counts the day's earlier losses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from common.clock import utc_date
from common.domain import Fill, Order, Position, RiskState, Settlement
from common.errors import SchemaError
from common.position_record import PositionRecord

ORDER_EVENTS = ("placed", "amended", "decreased", "canceled", "rejected", "unknown", "filled")


def book_event(
    ticker: str, seq: int, exchange_ms: int, received_ms: int, recv_us: int = 0, pub_us: int = 0
) -> dict[str, Any]:
    """``recv_us``: when the oldest WebSocket frame behind this update arrived; ``pub_us``: when
    marketdata published it (latency tracing, common/trace.py)."""
    event: dict[str, Any] = {
        "ticker": ticker,
        "seq": seq,
        "exchange_ms": exchange_ms,
        "received_ms": received_ms,
        "recv_us": recv_us,
    }
    if pub_us:
        event["pub_us"] = pub_us
    return event


def fill_event(
    fill: Fill, position_after: Position, record: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``record``: the market's whole ``PositionRecord`` after the fill (its payload), which the
    persister stores as ``positions#{ticker}``."""
    event: dict[str, Any] = {
        "fill_id": fill.fill_id,
        "order_id": fill.order_id,
        "client_order_id": fill.client_order_id,
        "ticker": fill.ticker,
        "side": fill.side.value,
        "price": fill.price,
        "count": fill.count,
        "fee": fill.fee,
        "is_taker": fill.is_taker,
        "ts_ms": fill.ts_ms,
        "position_after": position_after.position,
        "realized_pnl_after": position_after.realized_pnl,
    }
    if record is not None:
        event["record"] = record
    return event


def settlement_event(
    settlement: Settlement,
    before: Position,
    record: dict[str, Any],
    closed: dict[str, Any],
) -> dict[str, Any]:
    """A market settled: the position closed at the result (``record``, a tombstone), and the
    ``_closed`` record that now holds its realized PnL and fees."""
    after = PositionRecord.from_payload(settlement.ticker, record).position
    return {
        "ticker": settlement.ticker,
        "result": settlement.result,
        "ts_ms": settlement.settled_ms,
        "settlement_id": record.get("settlement_id", ""),
        "position_before": before.position,
        "cost_before": before.cost,
        "fee": settlement.fee,
        "realized_pnl": after.realized_pnl - before.realized_pnl,
        "realized_pnl_after": after.realized_pnl,
        "record": record,
        "closed": closed,
    }


def position_event(
    ticker: str, ts_ms: int, reason: str, before: Position, record: dict[str, Any]
) -> dict[str, Any]:
    """The position was set from the exchange's (the exchange wins)."""
    return {
        "ticker": ticker,
        "ts_ms": ts_ms,
        "reason": reason,
        "position_before": before.position,
        "cost_before": before.cost,
        "record": record,
    }


def cursor_event(backfilled_to_ms: int, settled_to_ms: int) -> dict[str, Any]:
    """How far the REST backfill has covered, in exchange time: every fill before
    ``backfilled_to_ms`` (and settlement before ``settled_to_ms``) is in the stream before it."""
    return {"backfilled_to_ms": backfilled_to_ms, "settled_to_ms": settled_to_ms}


def order_event(
    order: Order, event: str, ts_ms: int, reason: str = "", cancelled: int | None = None
) -> dict[str, Any]:
    """An order's change; ``cancelled``: what a cancel took off the book (Kalshi's
    ``reduced_by``), so the log tells a cancel's executed part (``filled``) from it."""
    if event not in ORDER_EVENTS:
        raise ValueError(f"order event must be one of {', '.join(ORDER_EVENTS)}, was {event!r}")
    extra = {} if cancelled is None else {"cancelled": cancelled}
    return {
        "event": event,
        "ticker": order.ticker,
        "client_order_id": order.client_order_id,
        "order_id": order.order_id,
        "side": order.side.value,
        "price": order.price,
        "count": order.count,
        "filled": order.filled,
        "remaining": order.remaining,
        "status": order.status.value,
        "ts_ms": ts_ms,
        "reason": reason,
        **extra,
    }


def decision_event(
    ticker: str,
    ts_ms: int,
    book: dict[str, Any],
    position: int,
    targets: dict[str, Any],
    actions: Sequence[dict[str, Any]],
    denials: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "ticker": ticker,
        "ts_ms": ts_ms,
        "book": book,
        "position": position,
        "targets": targets,
        "actions": list(actions),
        "denials": list(denials),
    }


def pnl_event(state: RiskState, ts_ms: int) -> dict[str, Any]:
    return {
        "ts_ms": ts_ms,
        "day": state.day,
        "daily_pnl": state.daily_pnl,
        "realized_pnl": state.realized_pnl,
        "unrealized_pnl": state.unrealized_pnl,
        "fees": state.fees,
        "total_exposure": state.total_exposure,
        "halted": state.halted,
        "reason": state.reason,
        "day_start_pnl": state.day_start_pnl,
    }


DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def risk_from_event(payload: Mapping[str, Any]) -> RiskState:
    """A ``pnl``/``risk`` event payload (``pnl_event``) -> RiskState; a field it lacks is 0."""

    def whole(name: str) -> int:
        value = payload.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{name} must be an integer, was {value!r}")
        return value

    ts_ms = whole("ts_ms")
    day = payload.get("day") or (utc_date(ts_ms) if ts_ms > 0 else "")
    halted = payload.get("halted", False)
    if not isinstance(halted, bool):
        raise SchemaError(f"halted must be a bool, was {halted!r}")
    if not isinstance(day, str) or not DAY.match(day):
        raise SchemaError(f"day must be YYYY-MM-DD, was {day!r}")
    return RiskState(
        halted=halted,
        reason=str(payload.get("reason") or "")[:500],
        halted_ms=ts_ms if halted else 0,
        daily_pnl=whole("daily_pnl"),
        realized_pnl=whole("realized_pnl"),
        unrealized_pnl=whole("unrealized_pnl"),
        fees=whole("fees"),
        total_exposure=whole("total_exposure"),
        day=day,
        last_check_ms=ts_ms,
        day_start_pnl=whole("day_start_pnl"),
    )


def day_closed_event(last: RiskState, closed_ms: int) -> dict[str, Any]:
    """The last snapshot recorded in trading day ``last.day``, sent when the next day began
    (``closed_ms``): the day's final daily PnL and the totals it ran from and to."""
    return {
        **pnl_event(last, last.last_check_ms),
        "closed_ms": closed_ms,
        "day_start_total": last.day_start_pnl,
        "day_end_total": last.day_start_pnl + last.daily_pnl,
    }
