"""What the engine reports after each operation, for the WebSocket fan-out and the world.

The engine appends these to its outbox; the server drains the outbox after every request or
agent tick and turns each event into the Kalshi messages of the channels that want it, so the
WebSocket output is exactly what happened, in order, without polling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.model import BookSide, Fill, Order, Position, Trade


@dataclass(slots=True, frozen=True)
class BookDelta:
    """One price level of one side changed by ``delta`` (signed count)."""

    ticker: str
    side: BookSide
    price: int
    delta: int
    ts_ms: int
    key_id: str = ""  # owner of the order that caused it
    client_order_id: str = ""
    subaccount: int = 0


@dataclass(slots=True, frozen=True)
class TradeEvent:
    trade: Trade


@dataclass(slots=True, frozen=True)
class FillEvent:
    fill: Fill
    user_id: str


@dataclass(slots=True, frozen=True)
class OrderEvent:
    """A copy of an order taken when it changed (``user_orders``)."""

    order: Order


@dataclass(slots=True, frozen=True)
class PositionEvent:
    key_id: str
    user_id: str
    position: Position  # a copy


@dataclass(slots=True, frozen=True)
class TickerEvent:
    ticker: str


@dataclass(slots=True, frozen=True)
class LifecycleEvent:
    ticker: str
    event_type: str  # created|activated|deactivated|close_date_updated|determined|settled
    ts_ms: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class OrderGroupEvent:
    key_id: str
    group_id: str
    event_type: str  # created|triggered|reset|deleted|limit_updated
    contracts_limit: int | None
    ts_ms: int


EngineEvent = (
    BookDelta
    | TradeEvent
    | FillEvent
    | OrderEvent
    | PositionEvent
    | TickerEvent
    | LifecycleEvent
    | OrderGroupEvent
)
