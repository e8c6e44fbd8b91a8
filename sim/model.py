"""Domain values of the simulated exchange: markets, orders, fills, positions, accounts.

Every price, count and amount of money is an integer in the units of ``common.numbers``:
price 1/10,000 $, count 1/100 contract, money 1/1,000,000 $. Times are Unix milliseconds.
Kalshi's wire names live in ``sim.wire``; these types carry trading names.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from common.fees import FeeType
from common.grid import PriceGrid
from common.numbers import ONE_DOLLAR


class BookSide(StrEnum):
    BID = "bid"  # buy YES at p
    ASK = "ask"  # sell YES at p = buy NO at 1 - p

    @property
    def outcome(self) -> str:
        return "yes" if self is BookSide.BID else "no"

    @property
    def sign(self) -> int:
        return 1 if self is BookSide.BID else -1


class TimeInForce(StrEnum):
    GTC = "good_till_canceled"
    IOC = "immediate_or_cancel"
    FOK = "fill_or_kill"


class SelfTradePrevention(StrEnum):
    TAKER_AT_CROSS = "taker_at_cross"  # cancel the incoming order at the self-cross
    MAKER = "maker"  # cancel the resting own order and keep matching


class OrderStatus(StrEnum):
    RESTING = "resting"
    CANCELED = "canceled"
    EXECUTED = "executed"


class MarketStatus(StrEnum):
    INITIALIZED = "initialized"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CLOSED = "closed"
    DETERMINED = "determined"
    FINALIZED = "finalized"

    @property
    def filter_name(self) -> str:
        """The ``GET /markets?status=`` value that lists a market in this status."""
        return _FILTER_NAMES[self]


_FILTER_NAMES = {
    MarketStatus.INITIALIZED: "unopened",
    MarketStatus.ACTIVE: "open",
    MarketStatus.INACTIVE: "paused",
    MarketStatus.CLOSED: "closed",
    MarketStatus.DETERMINED: "closed",
    MarketStatus.FINALIZED: "settled",
}


def cost_of(side: BookSide, price: int, count: int) -> int:
    """Money paid to open ``count`` contracts on ``side`` at YES ``price``."""
    return (price if side is BookSide.BID else ONE_DOLLAR - price) * count


@dataclass(slots=True)
class Series:
    ticker: str
    title: str
    fee_type: FeeType
    fee_multiplier_pct: int  # 1.0 -> 100
    category: str = "Simulated"
    frequency: str = "custom"


@dataclass(slots=True)
class FeeChange:
    """A series' fee change, announced ahead (``GET /series/fee_changes``)."""

    change_id: str
    series_ticker: str
    fee_type: FeeType
    multiplier_pct: int
    scheduled_ms: int
    applied: bool = False


@dataclass(slots=True)
class Event:
    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    strike_date_ms: int
    mutually_exclusive: bool = False  # exactly one of its markets settles YES
    fee_type_override: str | None = None
    fee_multiplier_override: int | None = None  # hundredths


@dataclass(slots=True)
class Market:
    ticker: str
    event_ticker: str
    series_ticker: str
    title: str
    yes_sub_title: str
    grid: PriceGrid
    price_level_structure: str
    fee_type: FeeType
    fee_multiplier_pct: int
    created_ms: int
    open_ms: int
    close_ms: int
    settlement_timer_s: int = 60
    can_close_early: bool = True
    status: MarketStatus = MarketStatus.INITIALIZED
    result: str = ""  # "yes" | "no" once determined
    determined_ms: int | None = None
    settled_ms: int | None = None
    updated_ms: int = 0
    last_price: int | None = None
    last_trade_count: int = 0
    volume: int = 0
    open_interest: int = 0
    dollar_volume_money: int = 0
    market_id: str = ""

    @property
    def is_trading(self) -> bool:
        return self.status is MarketStatus.ACTIVE


@dataclass(slots=True)
class Order:
    order_id: str
    key_id: str
    user_id: str
    ticker: str
    side: BookSide
    price: int
    initial_count: int
    tif: TimeInForce
    stp: SelfTradePrevention
    created_ms: int
    client_order_id: str = ""
    expiration_ms: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    cancel_on_pause: bool = False
    order_group_id: str | None = None
    subaccount: int = 0
    seq: int = 0
    status: OrderStatus = OrderStatus.RESTING
    remaining: int = 0
    filled: int = 0
    fill_yes_money: int = 0  # sum of YES price x count over fills (average fill price)
    taker_fill_cost: int = 0
    maker_fill_cost: int = 0
    taker_fees: int = 0
    maker_fees: int = 0
    # exact fee numerators (see sim.fees): fees are charged per order on the running total
    taker_fee_num: int = 0
    maker_fee_num: int = 0
    locked: int = 0  # collateral held for the resting remainder
    updated_ms: int = 0
    last_update_reason: str = ""
    rounding_accumulator: int = 0  # rounding overpaid on its fills, refunded a cent at a time

    @property
    def is_resting(self) -> bool:
        return self.status is OrderStatus.RESTING


@dataclass(slots=True, frozen=True)
class Trade:
    trade_id: str
    seq: int
    ticker: str
    price: int
    count: int
    taker_side: BookSide
    created_ms: int


@dataclass(slots=True, frozen=True)
class Fill:
    fill_id: str
    trade_id: str
    seq: int
    order_id: str
    key_id: str
    ticker: str
    side: BookSide
    price: int
    count: int
    is_taker: bool
    fee: int
    post_position: int
    client_order_id: str
    subaccount: int
    created_ms: int


@dataclass(slots=True)
class Position:
    ticker: str
    event_ticker: str
    position: int = 0  # signed: + YES, - NO
    cost: int = 0  # money paid for the open contracts
    realized_pnl: int = 0
    fees_paid: int = 0
    total_traded: int = 0  # money of every fill
    volume: int = 0
    updated_ms: int = 0


@dataclass(slots=True, frozen=True)
class Settlement:
    seq: int
    ticker: str
    event_ticker: str
    result: str
    yes_count: int
    yes_cost: int
    no_count: int
    no_cost: int
    revenue: int  # money paid out
    settled_ms: int


@dataclass(slots=True)
class OrderGroup:
    group_id: str
    key_id: str
    contracts_limit: int
    created_ms: int
    subaccount: int = 0
    triggered: bool = False
    window: deque[tuple[int, int]] = field(default_factory=deque)  # (ts_ms, count)
    window_sum: int = 0
    order_ids: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Account:
    """One subaccount's books (Kalshi keeps orders, fills, positions and cash per subaccount):
    ``subaccount`` 0 is the account itself, held under its key id; 1-63 are opened on first use
    and held under ``ledger_key``."""

    key_id: str  # the API key that owns it (every subaccount of a key shares it)
    user_id: str
    cash: int  # money, settled cash including what is locked
    locked: int = 0  # collateral of resting orders
    is_agent: bool = False
    # a direct member's balance moves in $0.0001, anyone else's in whole cents: the difference
    # is Kalshi's rounding fee (common/fees.py); the flow agents are direct members
    direct_member: bool = False
    rounding_fees: int = 0  # rounding fees paid less rebates (money), beside the trade fees
    subaccount: int = 0
    opening_cash: int = 0  # what a subaccount of this account opens with
    orders: dict[str, Order] = field(default_factory=dict)
    orders_by_client_id: dict[str, Order] = field(default_factory=dict)
    resting: dict[str, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    settlements: list[Settlement] = field(default_factory=list)
    groups: dict[str, OrderGroup] = field(default_factory=dict)
    updated_ms: int = 0

    @property
    def available(self) -> int:
        return self.cash - self.locked


def ledger_key(key_id: str, subaccount: int) -> str:
    """Where a subaccount's books are held in ``Exchange.accounts``: the key id for 0."""
    return key_id if subaccount == 0 else f"{key_id}#{subaccount}"
