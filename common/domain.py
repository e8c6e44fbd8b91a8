"""Orders, fills, positions, markets and the risk state: immutable values in integer units
(DESIGN.md §2).

Direction follows Kalshi's single YES book (API.md §4): a ``bid`` buys YES at p, an ``ask`` sells
YES at p (which is buying NO at 1 - p). A position is signed: + YES contracts, - NO contracts.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from enum import StrEnum

from common.fees import FeeType
from common.grid import PriceGrid
from common.numbers import ONE_DOLLAR


class Side(StrEnum):
    BID = "bid"
    ASK = "ask"

    @property
    def sign(self) -> int:
        """+1 for a bid (adds YES), -1 for an ask."""
        return 1 if self is Side.BID else -1

    @property
    def opposite(self) -> Side:
        return Side.ASK if self is Side.BID else Side.BID


class TimeInForce(StrEnum):
    GTC = "good_till_canceled"
    IOC = "immediate_or_cancel"
    FOK = "fill_or_kill"


class OrderStatus(StrEnum):
    PENDING = "pending"  # recorded by us, not yet acknowledged by the exchange
    UNKNOWN = "unknown"  # sent, outcome not known (transport error): resolve by lookup
    RESTING = "resting"
    CANCELED = "canceled"
    EXECUTED = "executed"
    REJECTED = "rejected"  # the exchange refused it; nothing rests

    @property
    def is_live(self) -> bool:
        """May rest at the exchange (or might, when unknown)."""
        return self in (OrderStatus.PENDING, OrderStatus.UNKNOWN, OrderStatus.RESTING)


@dataclass(frozen=True, slots=True)
class Order:
    """One order. ``count`` is the size asked for; ``filled`` + ``remaining`` <= ``count``."""

    ticker: str
    side: Side
    price: int
    count: int
    client_order_id: str
    order_id: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    filled: int = 0
    remaining: int = 0
    created_ms: int = 0
    updated_ms: int = 0
    post_only: bool = True
    order_group_id: str | None = None
    subaccount: int | None = None  # as the exchange said (None: not said)
    # The exchange's own time of the last change to the order that dora has heard of (an
    # answer's ``ts_ms``, an update's ``last_updated_ts_ms``, REST's ``last_update_time``);
    # 0: not said. Only ever compared with another exchange time, never with dora's clock.
    exchange_ms: int = 0

    @property
    def resting_size(self) -> int:
        """Contracts that rest or will: ``remaining``, or the whole ``count`` of an order the
        exchange has not answered yet (remaining 0)."""
        return self.remaining if self.remaining else self.count


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders. ``fill_id`` is the exchange's trade id: the dedupe key."""

    fill_id: str
    order_id: str
    ticker: str
    side: Side
    price: int
    count: int
    fee: int
    is_taker: bool
    ts_ms: int
    client_order_id: str | None = None
    post_position: int | None = None  # signed position after the fill, when the exchange says
    subaccount: int | None = None  # as the exchange said (None: not said)

    @property
    def signed_count(self) -> int:
        return self.side.sign * self.count


@dataclass(frozen=True, slots=True)
class Settlement:
    """A market paid out: every net position in it is closed at the result."""

    ticker: str
    result: str  # yes | no | scalar | void (void: each holder gets its cost back)
    settled_ms: int
    fee: int  # micro-dollars
    value: int | None = None  # scalar: YES payout in price units


# The client-order-id policy (DESIGN.md §5): every order carries an id derived from who sends it,
# the market, the side and a sequence number, recorded before the order is sent. A process that
# restarts re-derives the id it recorded, and a resend with the same id is a duplicate the
# exchange refuses (409), never a second order.
#
# The id also says that dora made it: a UUID whose first 4 bytes are a check of the other 12.
# An order in the subaccount whose id fails the check (placed by hand, by another program) is
# not dora's: dora never adopts, amends or cancels it in normal quoting (only the kill switches,
# halt and cancel-all, clear the whole subaccount). A foreign UUID passes by chance once in 2^32.
_CLIENT_ORDER_NAMESPACE = uuid.UUID("6f1d0c8e-3b5a-4c1e-9a57-64a2d0a7c0de")
_CHECK_KEY = b"dora-client-order-id|"


def _check(tail: bytes) -> bytes:
    return hashlib.blake2b(tail, digest_size=4, key=_CHECK_KEY).digest()


def make_client_order_id(namespace: str, ticker: str, side: Side | str, seq: int) -> str:
    """A deterministic client order id (a UUID5 whose first 4 bytes check the rest): the same
    inputs always give the same id, and ``is_own_client_order_id`` recognises it."""
    side_text = side.value if isinstance(side, Side) else str(side)
    base = uuid.uuid5(_CLIENT_ORDER_NAMESPACE, f"{namespace}|{ticker}|{side_text}|{seq}").bytes
    return str(uuid.UUID(bytes=_check(base[4:]) + base[4:]))


def is_own_client_order_id(client_order_id: str | None) -> bool:
    """Whether ``client_order_id`` was made by ``make_client_order_id`` (an order of dora's)."""
    if not client_order_id:
        return False
    try:
        raw = uuid.UUID(client_order_id).bytes
    except ValueError:
        return False
    return raw[:4] == _check(raw[4:])


@dataclass(frozen=True, slots=True)
class Position:
    """Signed inventory in one market with exact cost basis and PnL.

    ``cost`` is the signed YES cost basis of the open position in money units: positive money paid
    for YES contracts held, negative credit received for YES sold short (NO held). Realized PnL is
    gross of fees; ``fees`` accumulates every fee paid.
    """

    ticker: str
    position: int = 0
    cost: int = 0
    realized_pnl: int = 0
    fees: int = 0
    last_fill_ms: int = 0

    def apply_fill(self, fill: Fill) -> Position:
        if fill.ticker != self.ticker:
            raise ValueError(f"fill for {fill.ticker} applied to position in {self.ticker}")
        delta = fill.signed_count
        position, cost, realized = self.position, self.cost, self.realized_pnl
        if position == 0 or (position > 0) == (delta > 0):
            position += delta
            cost += fill.price * delta
        else:
            closing = min(abs(delta), abs(position))
            # Share of the cost basis released by closing, truncated toward zero; the remainder
            # stays in ``cost`` and is realized when the position reaches zero, so a round trip
            # is exact to the micro-dollar.
            released = _trunc_div(cost * closing, abs(position))
            direction = 1 if position > 0 else -1
            realized += direction * fill.price * closing - released
            cost -= released
            position += direction * -closing
            opening = abs(delta) - closing
            if position == 0:
                realized -= cost
                cost = 0
            if opening:
                position = -direction * opening
                cost = fill.price * position
        return replace(
            self,
            position=position,
            cost=cost,
            realized_pnl=realized,
            fees=self.fees + fill.fee,
            last_fill_ms=max(self.last_fill_ms, fill.ts_ms),
        )

    @property
    def net_realized_pnl(self) -> int:
        return self.realized_pnl - self.fees

    def unrealized_pnl(self, mark_price: int) -> int:
        """Money gained if the open position were valued at ``mark_price`` (a YES price)."""
        return mark_price * self.position - self.cost

    @property
    def exposure(self) -> int:
        """Money at risk at settlement: the cost of the YES or NO contracts held."""
        if self.position >= 0:
            return self.cost
        return ONE_DOLLAR * -self.position + self.cost

    @property
    def average_price(self) -> int | None:
        """Average YES entry price of the open position, rounded down (display and skew only)."""
        if self.position == 0:
            return None
        return self.cost // self.position


def _trunc_div(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


@dataclass(frozen=True, slots=True)
class Quote:
    """One side of what the strategy wants resting: price, size and why."""

    side: Side
    price: int
    size: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Targets:
    """The strategy's latest wish for one market: zero, one or two quotes, and why.

    ``book_seq`` and ``book_ms`` identify the book the targets were computed from, so the executor
    can tell how old they are; an absent side means "nothing should rest on that side".
    """

    ticker: str
    bid: Quote | None
    ask: Quote | None
    reason: str
    computed_ms: int
    book_ms: int = 0
    fair_price: int | None = None


class MarketStatus(StrEnum):
    """Kalshi's market status (API.md §9). A value dora does not know yet is ``UNKNOWN``: never an
    error, never open, so a new status stops quoting that market and nothing else."""

    INITIALIZED = "initialized"
    ACTIVE = "active"
    INACTIVE = "inactive"  # paused by the exchange
    CLOSED = "closed"
    DETERMINED = "determined"
    DISPUTED = "disputed"
    AMENDED = "amended"
    FINALIZED = "finalized"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> MarketStatus:
        if isinstance(value, str) and value in _MARKET_STATUS_VALUES:
            return cls(value)
        return cls.UNKNOWN


_MARKET_STATUS_VALUES = frozenset(MarketStatus)


@dataclass(frozen=True, slots=True)
class MarketMeta:
    """The exchange's facts about a market (``dora:market:{ticker}``)."""

    ticker: str
    status: MarketStatus
    close_ms: int
    grid: PriceGrid
    fee_type: FeeType = FeeType.QUADRATIC
    fee_multiplier_pct: int = 100
    updated_ms: int = 0
    exchange_index: int = 0  # the matching-engine shard: order groups and collateral live there
    # Why dora does not quote it although the exchange may trade it: a value dora does not know
    # (a new status, an unreadable field). Only this market is affected (DESIGN.md §5).
    problem: str = ""
    fee_note: str = ""  # fees priced conservatively, and why (an unknown or unpublished fee type)
    event_ticker: str = ""  # the event it is an outcome of ("" when not known)
    mutually_exclusive: bool = False  # its event's flag: at most one of its markets resolves YES

    @property
    def is_open(self) -> bool:
        return self.status is MarketStatus.ACTIVE and not self.problem

    @property
    def unquotable_reason(self) -> str:
        """ "" when quotable; otherwise why not, for ``dora status`` and the market hash."""
        if self.problem:
            return self.problem
        if self.status is MarketStatus.ACTIVE:
            return ""
        return f"market {self.status.value}"


@dataclass(frozen=True, slots=True)
class RiskState:
    """The account's risk snapshot (``dora:risk``). ``halted`` is the durable halt of DESIGN.md §3,
    as in force (``halt_in_force``): ``halted_ms`` when it was last set, ``resumed_ms`` when a
    resume last lifted it (0: no resume recorded)."""

    halted: bool = False
    reason: str = ""
    halted_ms: int = 0
    daily_pnl: int = 0
    realized_pnl: int = 0
    unrealized_pnl: int = 0
    fees: int = 0
    total_exposure: int = 0
    day: str = ""
    last_check_ms: int = 0
    day_start_pnl: int = 0  # total PnL when the trading day began: daily = total - this
    # consecutive risk checks that failed (an item that did not decode, a part that raised):
    # while > 0 the executor adds no risk; ``check_error`` says what failed last
    check_failures: int = 0
    check_error: str = ""
    resumed_ms: int = 0  # last: RiskState(...) is built positionally too


def halt_in_force(flag: bool, halted_ms: int, resumed_ms: int) -> bool:
    """DESIGN.md §3: a halt is lifted only by a resume. The stored flag says "not halted" only
    with a resume recorded after the halt (``common.halt``: a resume writes ``resumed_ms`` later
    than ``halted_ms``, never equal); a flag set to 0 or deleted by hand leaves none, so the halt
    stands. A record that never held a halt (``halted_ms`` 0) is not halted."""
    return flag or (halted_ms > 0 and resumed_ms <= halted_ms)


def resumed_or_legacy(resumed_ms: int | None, flag: bool, halted_ms: int) -> int:
    """``resumed_ms`` as read; a record with none at all was written before resumes left a mark
    (every halt now writes ``resumed_ms``, 0 until a resume): its flag is believed, as a resume
    after its halt when it says not halted, so an upgrade does not halt a resumed deployment."""
    if resumed_ms is not None:
        return resumed_ms
    return 0 if flag else halted_ms + 1
