"""What ``KalshiWebSocket`` reports: one frozen event per thing that happened, and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.domain import Fill, Order


@dataclass(frozen=True, slots=True)
class Connected:
    ts_ms: int
    reconnects: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    ts_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """The book of ``ticker`` changed (a delta) or was (re)loaded (``snapshot``). ``resynced``:
    it had been stale and is now fresh. Read it with ``ws.yes_book(ticker)``."""

    ticker: str
    seq: int
    exchange_ms: int
    snapshot: bool = False
    resynced: bool = False


@dataclass(frozen=True, slots=True)
class BookStale:
    ticker: str
    reason: str


@dataclass(frozen=True, slots=True)
class FillEvent:
    fill: Fill  # fill.post_position: the signed position after it, as the exchange says


@dataclass(frozen=True, slots=True)
class UserOrderEvent:
    order: Order


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    ticker: str
    event_type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeeUpdate:
    """``event_fee_update``: an event's fee override changed (values as Kalshi sent them)."""

    event_ticker: str
    fee_type: object
    fee_multiplier: object


@dataclass(frozen=True, slots=True)
class FeedGap:
    """Messages of ``channel`` may have been missed (a seq gap, a subscription gone): what they
    carried must be asked for over REST (``market_lifecycle_v2``: the markets' state)."""

    channel: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderGroupEvent:
    order_group_id: str
    event_type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WsError:
    code: int
    message: str
    ticker: str = ""


WsEvent = (
    Connected
    | Disconnected
    | BookUpdated
    | BookStale
    | FillEvent
    | UserOrderEvent
    | LifecycleEvent
    | FeeUpdate
    | FeedGap
    | OrderGroupEvent
    | WsError
)


@dataclass
class WsStats:
    connects: int = 0
    messages: int = 0
    deltas: int = 0
    snapshots: int = 0
    gaps: int = 0
    resyncs: int = 0
    silent_drops: int = 0
    wire_errors: int = 0
