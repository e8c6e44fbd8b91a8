"""The matching engine of the simulated exchange: pure, no IO, time passed in as ``now_ms``.

One YES book per market with price-time priority; V2 order entry (create, cancel, amend,
decrease) with post-only, IOC, FOK, GTC + expiration, both self-trade-prevention modes and
``client_order_id`` idempotency; collateral, taker/maker fees by series fee type, signed
positions with netting and a fill for each side of every trade. Lifecycle, settlement and order
groups live in ``sim.lifecycle`` and ``sim.groups`` as functions over this class.

Money rules (all exact integers):
- buying YES at p costs p per contract, buying NO (an ask at p) costs 1 - p; buying the side
  opposite to what you hold closes contracts instead (netting): a bid against a NO position
  pays out 1 - p per contract closed, an ask against a YES position pays out p;
- a resting order locks its full cost at its limit price plus its maker-fee reserve;
- fees are charged per fill on a per-order running total rounded up to $0.0001 (so a fill's
  fee is the increase of the rounded total), and go to the exchange (``fees_collected``);
- then a non-direct member's balance change is floored to the cent: Kalshi's rounding fee, less
  whole-cent rebates from the order's accumulator (``common.fees.RoundingFee``). The fill
  reports the trade fee (``fee_cost``); the account's ``rounding_fees`` the rest.
Hence cash + locked collateral + $1 x open interest + fees is conserved.
"""

from __future__ import annotations

import copy
import heapq
import uuid
from dataclasses import dataclass

from common.fees import CENT, TAKER_RATE_BP, RoundingFee, maker_rate_bp
from common.numbers import (
    COUNT_SCALE,
    MONEY_SCALE,
    ONE_DOLLAR,
    PRICE_SCALE,
    ceil_div,
    format_price,
)
from sim.book import OrderBook
from sim.errors import EngineError, market_inactive, not_found, paused
from sim.events import (
    BookDelta,
    EngineEvent,
    FillEvent,
    OrderEvent,
    PositionEvent,
    TickerEvent,
    TradeEvent,
)
from sim.groups import count_fill, trigger_group
from sim.model import (
    Account,
    BookSide,
    Event,
    FeeChange,
    Fill,
    Market,
    Order,
    OrderStatus,
    Position,
    SelfTradePrevention,
    Series,
    TimeInForce,
    Trade,
    cost_of,
    ledger_key,
)

_FEE_DENOMINATOR = 10_000 * 100 * COUNT_SCALE * PRICE_SCALE * PRICE_SCALE
_FEE_STEP = MONEY_SCALE // 10_000  # $0.0001
_ID_KINDS = {"order": 1, "trade": 2, "group": 3, "market": 4}
# Kalshi: "Newly placed orders may also be cancelled during the minute after" a cancel-all. The
# simulator cancels them when that minute ends, so a client must re-check what it placed.
CANCEL_ALL_REACH_MS = 60_000


def fee_numerator(rate_bp: int, multiplier_pct: int, price: int, count: int) -> int:
    """The exact fee of a fill as a numerator over ``_FEE_DENOMINATOR`` micro-dollars."""
    return rate_bp * multiplier_pct * count * price * (ONE_DOLLAR - price) * MONEY_SCALE


def rounded_fee(numerator: int) -> int:
    """A running fee total in micro-dollars, rounded up to $0.0001 (as ``common.fees``)."""
    if numerator == 0:
        return 0
    return ceil_div(numerator, _FEE_DENOMINATOR * _FEE_STEP) * _FEE_STEP


@dataclass(slots=True, frozen=True)
class OrderRequest:
    ticker: str
    side: BookSide
    price: int
    count: int
    tif: TimeInForce = TimeInForce.GTC
    stp: SelfTradePrevention = SelfTradePrevention.TAKER_AT_CROSS
    client_order_id: str = ""
    expiration_ms: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    cancel_on_pause: bool = False
    order_group_id: str | None = None
    subaccount: int = 0


@dataclass(slots=True, frozen=True)
class Execution:
    """What one create or amend did: the order and its fills in this call."""

    order: Order
    fill_count: int
    fill_money: int  # sum of price x count at YES prices
    fees: int


class Exchange:
    def __init__(self, *, id_salt: int = 0, collect_events: bool = True) -> None:
        self.id_salt = id_salt & 0xFFFFFFFF
        self.collect_events = collect_events
        self.series: dict[str, Series] = {}
        self.events_by_ticker: dict[str, Event] = {}
        self.markets: dict[str, Market] = {}
        self.books: dict[str, OrderBook] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.order_log: list[Order] = []
        self.trades: list[Trade] = []
        self.fees_collected = 0
        self.deposits = 0
        # the exchange's pause (sim.calendar): "trading" refuses creates and amends,
        # "exchange" every order operation; None: trading
        self.pause: str | None = None
        self.fee_changes: list[FeeChange] = []  # announced per series (sim.lifecycle)
        self.outbox: list[EngineEvent] = []
        self._dirty_tickers: set[str] = set()
        self._seq = 0
        self._ids = dict.fromkeys(_ID_KINDS, 0)
        self._expiries: list[tuple[int, int, str]] = []
        self._pending_triggers: list[tuple[str, str]] = []
        # (key id, subaccount or None for all, from_ms, until_ms) of recent cancel-alls
        self._cancel_all_reach: list[tuple[str, int | None, int, int]] = []
        self.counters: dict[str, int] = {
            "orders_created": 0,
            "orders_rejected": 0,
            "orders_cancelled": 0,
            "orders_amended": 0,
            "orders_decreased": 0,
            "orders_expired": 0,
            "trades": 0,
            "fills": 0,
        }

    # ----- setup -------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        n = self._ids[kind] + 1
        self._ids[kind] = n
        return f"{self.id_salt:08x}-{_ID_KINDS[kind]:04x}-4000-8000-{n:012x}"

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_series(self, series: Series) -> None:
        self.series[series.ticker] = series

    def add_event(self, event: Event) -> None:
        self.events_by_ticker[event.event_ticker] = event

    def add_market(self, market: Market) -> None:
        if not market.market_id:
            market.market_id = self.new_id("market")
        self.markets[market.ticker] = market
        self.books[market.ticker] = OrderBook(market.ticker)

    def open_account(
        self, key_id: str, cash: int, *, is_agent: bool = False, direct_member: bool | None = None
    ) -> Account:
        """A new account (or the existing one). Agents are direct members unless told."""
        account = self.accounts.get(key_id)
        if account is None:
            user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dora-sim:{key_id}"))
            direct = is_agent if direct_member is None else direct_member
            account = Account(
                key_id=key_id,
                user_id=user_id,
                cash=cash,
                is_agent=is_agent,
                direct_member=direct,
                opening_cash=cash,
            )
            self.accounts[key_id] = account
            self.deposits += cash
        return account

    def account(self, key_id: str) -> Account:
        try:
            return self.accounts[key_id]
        except KeyError:
            raise EngineError(401, "authentication_error", "unknown account", key_id) from None

    def ledger(self, key_id: str, subaccount: int = 0) -> Account:
        """One subaccount's books; a subaccount other than 0 opens on first use with the
        account's opening cash (a deposit: the money invariant still holds)."""
        primary = self.account(key_id)
        if subaccount == 0:
            return primary
        if not 0 < subaccount <= 63:
            raise EngineError(400, "invalid_parameters", "subaccount must be 0-63", str(subaccount))
        key = ledger_key(key_id, subaccount)
        books = self.accounts.get(key)
        if books is None:
            books = Account(
                key_id=key_id,
                user_id=primary.user_id,
                cash=primary.opening_cash,
                is_agent=primary.is_agent,
                direct_member=primary.direct_member,
                subaccount=subaccount,
                opening_cash=primary.opening_cash,
            )
            self.accounts[key] = books
            self.deposits += books.cash
        return books

    def ledgers_of(self, key_id: str, subaccount: int | None = None) -> list[Account]:
        """The books of every subaccount of ``key_id`` (or of one)."""
        if subaccount is not None:
            return [self.ledger(key_id, subaccount)]
        self.account(key_id)
        return [a for a in self.accounts.values() if a.key_id == key_id]

    def market(self, ticker: str) -> Market:
        market = self.markets.get(ticker)
        if market is None:
            raise not_found("market")
        return market

    def order_of(self, key_id: str, order_id: str, subaccount: int | None = None) -> Order:
        """One of ``key_id``'s orders: in ``subaccount`` only, or in any when None (reads)."""
        for books in self.ledgers_of(key_id, subaccount):
            order = books.orders.get(order_id)
            if order is not None:
                return order
        raise not_found("order")

    # ----- events --------------------------------------------------------------------------

    def emit(self, event: EngineEvent) -> None:
        if self.collect_events:
            self.outbox.append(event)

    def drain_events(self) -> list[EngineEvent]:
        for ticker in sorted(self._dirty_tickers):
            self.outbox.append(TickerEvent(ticker))
        self._dirty_tickers.clear()
        events, self.outbox = self.outbox, []
        return events

    def mark_ticker(self, ticker: str) -> None:
        if self.collect_events:
            self._dirty_tickers.add(ticker)

    def _emit_order(self, order: Order) -> None:
        if self.collect_events:
            self.outbox.append(OrderEvent(copy.copy(order)))

    def _emit_delta(self, order: Order, delta: int, now_ms: int) -> None:
        if self.collect_events and delta:
            self.outbox.append(
                BookDelta(
                    order.ticker,
                    order.side,
                    order.price,
                    delta,
                    now_ms,
                    order.key_id,
                    order.client_order_id,
                    order.subaccount,
                )
            )
            self._dirty_tickers.add(order.ticker)

    # ----- order entry ---------------------------------------------------------------------

    def create_order(self, key_id: str, request: OrderRequest, now_ms: int) -> Execution:
        try:
            return self._create(key_id, request, now_ms)
        except EngineError:
            self.counters["orders_rejected"] += 1
            raise

    def _create(self, key_id: str, req: OrderRequest, now_ms: int) -> Execution:
        if self.pause is not None:
            raise paused("trading")
        if req.reduce_only and req.tif is not TimeInForce.IOC:
            raise EngineError(
                400,
                "invalid_parameters",
                "invalid parameters",
                "reduce_only requires time_in_force immediate_or_cancel",
            )
        account = self.ledger(key_id, req.subaccount)
        market = self.market(req.ticker)
        if not market.is_trading:
            raise market_inactive(market.ticker)
        self._check_price_count(market, req.price, req.count)
        if req.expiration_ms is not None:
            if req.tif is TimeInForce.IOC:
                raise EngineError(
                    400,
                    "invalid_parameters",
                    "Cannot specify both immediate_or_cancel and expiration_ts",
                )
            if req.expiration_ms <= now_ms:
                raise EngineError(
                    400, "invalid_parameters", "Expiration timestamp must be in the future"
                )
        if req.client_order_id and req.client_order_id in account.orders_by_client_id:
            raise EngineError(
                409, "order_already_exists", "order already exists", req.client_order_id
            )
        if req.order_group_id is not None:
            group = account.groups.get(req.order_group_id)
            if group is None:
                raise not_found("order group")
            if group.triggered:
                raise EngineError(400, "invalid_order", "invalid order", "order group triggered")
        count = req.count
        if req.reduce_only:
            held = account.positions.get(req.ticker)
            position = held.position if held is not None else 0
            reducible = max(-position, 0) if req.side is BookSide.BID else max(position, 0)
            if reducible <= 0:
                raise EngineError(400, "invalid_order", "invalid order", "reduce only")
            count = min(count, reducible)
        book = self.books[req.ticker]
        if req.post_only and book.crosses(req.side, req.price):
            raise EngineError(400, "invalid_order", "invalid order", "post only cross")
        required = cost_of(req.side, req.price, count) + rounded_fee(
            fee_numerator(TAKER_RATE_BP, market.fee_multiplier_pct, req.price, count)
        )
        if account.available < required:
            raise EngineError(
                400, "available_balance_too_low", "available balance too low", market.ticker
            )

        order = Order(
            order_id=self.new_id("order"),
            key_id=key_id,
            user_id=account.user_id,
            ticker=req.ticker,
            side=req.side,
            price=req.price,
            initial_count=count,
            tif=req.tif,
            stp=req.stp,
            created_ms=now_ms,
            client_order_id=req.client_order_id,
            expiration_ms=req.expiration_ms,
            post_only=req.post_only,
            reduce_only=req.reduce_only,
            cancel_on_pause=req.cancel_on_pause,
            order_group_id=req.order_group_id,
            subaccount=req.subaccount,
            seq=self.next_seq(),
            remaining=count,
            updated_ms=now_ms,
        )
        account.orders[order.order_id] = order
        if order.client_order_id:
            account.orders_by_client_id[order.client_order_id] = order
        self.orders[order.order_id] = order
        self.order_log.append(order)
        self.counters["orders_created"] += 1
        if order.order_group_id is not None:
            account.groups[order.order_group_id].order_ids.add(order.order_id)

        if req.tif is TimeInForce.FOK and self._fillable(book, order) < count:
            order.remaining = 0
            order.status = OrderStatus.CANCELED
            order.last_update_reason = "FillOrKillCancel"
            self._emit_order(order)
            return Execution(order, 0, 0, 0)
        return self._work(market, account, order, now_ms)

    def _check_price_count(self, market: Market, price: int, count: int) -> None:
        if count <= 0:
            raise EngineError(400, "invalid_order_size", "invalid order size", "count must be > 0")
        if not market.grid.is_valid(price):
            raise EngineError(
                400,
                "invalid_parameters",
                "invalid parameters",
                f"price {format_price(price)} is not on the market's price grid",
            )

    def _fillable(self, book: OrderBook, order: Order) -> int:
        """Contracts available to ``order`` at its limit, not counting its owner's orders."""
        total = 0
        for level in book.opposite(order.side).best_first():
            if not self._price_ok(order, level.price):
                break
            for other in level.orders.values():
                if other.key_id != order.key_id:
                    total += other.remaining
            if total >= order.remaining:
                break
        return total

    @staticmethod
    def _price_ok(order: Order, level_price: int) -> bool:
        return (
            level_price <= order.price if order.side is BookSide.BID else level_price >= order.price
        )

    def _work(self, market: Market, account: Account, order: Order, now_ms: int) -> Execution:
        """Match ``order`` against the book, then rest or cancel what is left."""
        book = self.books[order.ticker]
        before_filled = order.filled
        before_money = order.fill_yes_money
        before_fees = order.taker_fees
        self._match(market, book, account, order, now_ms)
        if order.remaining > 0 and order.status is OrderStatus.RESTING:
            if order.tif is TimeInForce.GTC:
                self._rest(account, book, order, now_ms)
            else:
                order.remaining = 0
                order.status = OrderStatus.CANCELED
                order.last_update_reason = "ImmediateOrCancel"
        elif order.remaining == 0 and order.status is OrderStatus.RESTING:
            order.status = OrderStatus.EXECUTED
        order.updated_ms = now_ms
        self._emit_order(order)
        self._run_pending_triggers(now_ms)
        return Execution(
            order,
            order.filled - before_filled,
            order.fill_yes_money - before_money,
            order.taker_fees - before_fees,
        )

    def _rest(self, account: Account, book: OrderBook, order: Order, now_ms: int) -> None:
        market = self.markets[order.ticker]
        self._relock(account, market, order)
        book.half(order.side).add(order)
        account.resting[order.order_id] = order
        self._emit_delta(order, order.remaining, now_ms)
        if order.expiration_ms is not None:
            heapq.heappush(self._expiries, (order.expiration_ms, order.seq, order.order_id))

    def _relock(self, account: Account, market: Market, order: Order) -> None:
        """Set the collateral held for a resting order: its cost plus its maker-fee reserve."""
        rate = maker_rate_bp(market.fee_type)
        reserve = 0
        if rate and order.remaining:
            extra = fee_numerator(rate, market.fee_multiplier_pct, order.price, order.remaining)
            reserve = rounded_fee(order.maker_fee_num + extra) - rounded_fee(order.maker_fee_num)
        locked = cost_of(order.side, order.price, order.remaining) + reserve
        account.locked += locked - order.locked
        order.locked = locked

    def _match(
        self, market: Market, book: OrderBook, account: Account, taker: Order, now_ms: int
    ) -> None:
        opposite = book.opposite(taker.side)
        while taker.remaining > 0:
            level = opposite.best()
            if level is None or not self._price_ok(taker, level.price):
                return
            for maker in list(level.orders.values()):
                if taker.remaining == 0:
                    return
                if not maker.is_resting:
                    continue
                if maker.key_id == taker.key_id:
                    if taker.stp is SelfTradePrevention.TAKER_AT_CROSS:
                        taker.remaining = 0
                        taker.status = OrderStatus.CANCELED
                        taker.last_update_reason = "SelfTradeCancel"
                        return
                    self.cancel_resting(maker, now_ms, reason="SelfTradeCancel")
                    continue
                count = min(taker.remaining, maker.remaining)
                if not self._affordable(market, account, taker, level.price, count):
                    taker.remaining = 0
                    taker.status = OrderStatus.CANCELED
                    taker.last_update_reason = "InsufficientBalance"
                    return
                self._execute(market, book, account, taker, maker, level.price, count, now_ms)

    def _affordable(
        self, market: Market, account: Account, taker: Order, price: int, count: int
    ) -> bool:
        position = account.positions.get(taker.ticker)
        held = position.position if position is not None else 0
        cash, _ = _cash_change(held, taker.side, price, count)
        fee = rounded_fee(
            taker.taker_fee_num
            + fee_numerator(TAKER_RATE_BP, market.fee_multiplier_pct, price, count)
        ) - rounded_fee(taker.taker_fee_num)
        rounding = 0 if account.direct_member else CENT  # at most a cent more after the floor
        return account.available + cash - fee - rounding >= 0

    def _execute(
        self,
        market: Market,
        book: OrderBook,
        taker_account: Account,
        taker: Order,
        maker: Order,
        price: int,
        count: int,
        now_ms: int,
    ) -> None:
        trade = Trade(
            self.new_id("trade"), self.next_seq(), market.ticker, price, count, taker.side, now_ms
        )
        self.trades.append(trade)
        self.counters["trades"] += 1
        market.last_price = price
        market.last_trade_count = count
        market.volume += count
        market.dollar_volume_money += price * count
        self.emit(TradeEvent(trade))
        self.mark_ticker(market.ticker)

        maker_account = self.ledger(maker.key_id, maker.subaccount)
        book.half(maker.side).shrink(maker, count)
        self._fill(market, maker_account, maker, trade, is_taker=False, now_ms=now_ms)
        if maker.remaining == 0:
            book.half(maker.side).remove(maker, 0)
            maker.status = OrderStatus.EXECUTED
            maker_account.resting.pop(maker.order_id, None)
        self._relock(maker_account, market, maker)
        self._emit_delta(maker, -count, now_ms)
        self._emit_order(maker)
        self._fill(market, taker_account, taker, trade, is_taker=True, now_ms=now_ms)

    def _fill(
        self,
        market: Market,
        account: Account,
        order: Order,
        trade: Trade,
        *,
        is_taker: bool,
        now_ms: int,
    ) -> None:
        count, price = trade.count, trade.price
        position = account.positions.get(market.ticker)
        if position is None:
            position = Position(market.ticker, market.event_ticker)
            account.positions[market.ticker] = position
        old = position.position
        cash, closing = _cash_change(old, order.side, price, count)
        opening = count - closing
        # cost basis and realized PnL of the closed contracts
        if closing:
            released = position.cost if closing == abs(old) else position.cost * closing // abs(old)
            proceeds = closing * (price if order.side is BookSide.ASK else ONE_DOLLAR - price)
            position.cost -= released
            position.realized_pnl += proceeds - released
        position.cost += cost_of(order.side, price, opening)
        position.position = old + order.side.sign * count
        market.open_interest += max(position.position, 0) - max(old, 0)
        # fee on the order's running total
        rate = TAKER_RATE_BP if is_taker else maker_rate_bp(market.fee_type)
        fee = 0
        if rate:
            added = fee_numerator(rate, market.fee_multiplier_pct, price, count)
            if is_taker:
                fee = rounded_fee(order.taker_fee_num + added) - rounded_fee(order.taker_fee_num)
                order.taker_fee_num += added
            else:
                fee = rounded_fee(order.maker_fee_num + added) - rounded_fee(order.maker_fee_num)
                order.maker_fee_num += added
        # the balance moves by what is left after the trade fee, floored to the account's
        # precision; the order's accumulator refunds whole cents of what the floors took
        rounded = RoundingFee.for_member(account.direct_member).apply(
            order.side is BookSide.BID, price, count, fee, order.rounding_accumulator
        )
        order.rounding_accumulator = rounded.accumulator
        account.rounding_fees += rounded.net - fee
        account.cash += cash - rounded.net
        self.fees_collected += rounded.net
        money = cost_of(order.side, price, count)
        if is_taker:
            order.taker_fill_cost += money
            order.taker_fees += fee
        else:
            order.maker_fill_cost += money
            order.maker_fees += fee
        order.filled += count
        order.fill_yes_money += price * count
        order.remaining -= count
        order.updated_ms = now_ms
        position.fees_paid += fee
        position.total_traded += money
        position.volume += count
        position.updated_ms = now_ms
        account.updated_ms = now_ms

        fill = Fill(
            fill_id=trade.trade_id,
            trade_id=trade.trade_id,
            seq=self.next_seq(),
            order_id=order.order_id,
            key_id=account.key_id,
            ticker=market.ticker,
            side=order.side,
            price=price,
            count=count,
            is_taker=is_taker,
            fee=fee,
            post_position=position.position,
            client_order_id=order.client_order_id,
            subaccount=order.subaccount,
            created_ms=now_ms,
        )
        account.fills.append(fill)
        self.counters["fills"] += 1
        if self.collect_events:
            self.outbox.append(FillEvent(fill, account.user_id))
            self.outbox.append(PositionEvent(account.key_id, account.user_id, copy.copy(position)))
        if order.order_group_id is not None:
            self._count_group_fill(account, order.order_group_id, count, now_ms)

    # ----- cancel / amend / decrease ---------------------------------------------------------

    def cancel_resting(self, order: Order, now_ms: int, *, reason: str = "Canceled") -> int:
        """Take a resting order off the book; returns the size removed."""
        if not order.is_resting:
            return 0
        account = self.ledger(order.key_id, order.subaccount)
        removed = order.remaining
        self.books[order.ticker].half(order.side).remove(order, removed)
        order.remaining = 0
        order.status = OrderStatus.CANCELED
        order.last_update_reason = reason
        order.updated_ms = now_ms
        self._relock(account, self.markets[order.ticker], order)
        account.resting.pop(order.order_id, None)
        self.counters["orders_cancelled"] += 1
        self._emit_delta(order, -removed, now_ms)
        self._emit_order(order)
        return removed

    def _check_mutable(self, order: Order, *, allow_paused: bool) -> Market:
        if self.pause is not None and (self.pause == "exchange" or not allow_paused):
            raise paused("exchange" if self.pause == "exchange" else "trading")
        market = self.markets[order.ticker]
        if market.is_trading:
            return market
        if allow_paused and market.status.value == "inactive":
            return market
        raise market_inactive(market.ticker)

    def cancel_order(
        self, key_id: str, order_id: str, now_ms: int, subaccount: int = 0
    ) -> tuple[Order, int]:
        order = self.order_of(key_id, order_id, subaccount)
        if not order.is_resting:
            return order, 0
        self._check_mutable(order, allow_paused=True)
        return order, self.cancel_resting(order, now_ms)

    def cancel_all(self, key_id: str, now_ms: int, subaccount: int | None = None) -> int:
        """Cancel every resting order of one subaccount (None: of all of them). Orders placed
        in the minute after are cancelled too, when that minute ends (``sweep_cancel_all``)."""
        if self.pause == "exchange":
            raise paused("exchange")
        cancelled = 0
        for books in self.ledgers_of(key_id, subaccount):
            cancelled += self._cancel_resting_of(books, now_ms)
        self._cancel_all_reach.append((key_id, subaccount, now_ms, now_ms + CANCEL_ALL_REACH_MS))
        return cancelled

    def _cancel_resting_of(
        self, books: Account, now_ms: int, placed: tuple[int, int] | None = None
    ) -> int:
        """Cancel ``books``' resting orders (only those created within ``placed``: from, to)."""
        cancelled = 0
        for order in list(books.resting.values()):
            if placed is not None and not placed[0] <= order.created_ms < placed[1]:
                continue
            if self.markets[order.ticker].status.value not in ("active", "inactive"):
                continue
            self.cancel_resting(order, now_ms, reason="CancelAll")
            cancelled += 1
        return cancelled

    def sweep_cancel_all(self, now_ms: int) -> int:
        """Orders placed in the minute after a cancel-all, cancelled as that minute ends."""
        swept = 0
        while self._cancel_all_reach and self._cancel_all_reach[0][3] <= now_ms:
            key_id, subaccount, from_ms, until_ms = self._cancel_all_reach.pop(0)
            for books in self.ledgers_of(key_id, subaccount):
                swept += self._cancel_resting_of(books, now_ms, (from_ms, until_ms))
        return swept

    def decrease_order(
        self,
        key_id: str,
        order_id: str,
        now_ms: int,
        *,
        reduce_by: int | None = None,
        reduce_to: int | None = None,
        subaccount: int = 0,
    ) -> Order:
        order = self.order_of(key_id, order_id, subaccount)
        if (reduce_by is None) == (reduce_to is None):
            raise EngineError(
                400, "invalid_parameters", "exactly one of reduce_by or reduce_to is required"
            )
        if not order.is_resting:
            raise EngineError(400, "invalid_order", "invalid order", "order is not resting")
        market = self._check_mutable(order, allow_paused=True)
        target = order.remaining - reduce_by if reduce_by is not None else reduce_to
        assert target is not None
        if target < 0 or target > order.remaining or (reduce_by is not None and reduce_by <= 0):
            raise EngineError(
                400, "invalid_parameters", "invalid parameters", "reduce beyond the order's size"
            )
        self.counters["orders_decreased"] += 1
        if target == 0:
            self.cancel_resting(order, now_ms, reason="Decrease")
            return order
        self._shrink_in_place(market, order, order.remaining - target, now_ms, "Decrease")
        return order

    def _shrink_in_place(
        self, market: Market, order: Order, by: int, now_ms: int, reason: str
    ) -> None:
        if by <= 0:
            return
        account = self.ledger(order.key_id, order.subaccount)
        self.books[order.ticker].half(order.side).shrink(order, by)
        order.remaining -= by
        order.updated_ms = now_ms
        order.last_update_reason = reason
        self._relock(account, market, order)
        self._emit_delta(order, -by, now_ms)
        self._emit_order(order)

    def amend_order(
        self,
        key_id: str,
        order_id: str,
        now_ms: int,
        *,
        ticker: str,
        side: BookSide,
        price: int,
        count: int,
        client_order_id: str | None = None,
        updated_client_order_id: str | None = None,
        expiration_s: int | None = None,
        subaccount: int = 0,
    ) -> Execution:
        """Change price and/or size; ``count`` is filled + the new remaining size;
        ``expiration_s`` (3.34): None keeps the expiry, 0 clears it, else the new one.

        A pure size decrease keeps queue priority; a price change or size increase re-enters
        the order at the back of its new level and may trade."""
        account = self.ledger(key_id, subaccount)
        order = self.order_of(key_id, order_id, subaccount)
        if ticker != order.ticker:
            raise EngineError(400, "order_ticker_mismatch", "order ticker mismatch")
        if side is not order.side:
            raise EngineError(400, "order_side_mismatch", "order side mismatch")
        if client_order_id and client_order_id != order.client_order_id:
            raise EngineError(
                400,
                "order_id_and_client_order_id_mismatch",
                "order id and client order id mismatch",
            )
        if not order.is_resting:
            raise EngineError(400, "invalid_order", "invalid order", "order is not resting")
        market = self._check_mutable(order, allow_paused=False)
        if expiration_s is not None and expiration_s != 0 and expiration_s * 1000 <= now_ms:
            raise EngineError(
                400, "invalid_parameters", "Expiration timestamp must be in the future"
            )
        new_remaining = count - order.filled
        self._check_price_count(market, price, new_remaining)
        if order.post_only and self.books[order.ticker].crosses(side, price):
            raise EngineError(400, "invalid_order", "invalid order", "post only cross")
        renamed = bool(updated_client_order_id and updated_client_order_id != order.client_order_id)
        if renamed and updated_client_order_id in account.orders_by_client_id:
            raise EngineError(
                409, "order_already_exists", "order already exists", updated_client_order_id
            )
        in_place = price == order.price and new_remaining <= order.remaining
        if not in_place:
            # re-enter: check collateral for the new order against cash freed by the old one
            fee_now = rounded_fee(
                fee_numerator(TAKER_RATE_BP, market.fee_multiplier_pct, price, new_remaining)
            )
            required = cost_of(side, price, new_remaining) + fee_now
            if account.available + order.locked < required:
                raise EngineError(
                    400, "available_balance_too_low", "available balance too low", market.ticker
                )
        # Every check passed: only now does the order change (a refused amend leaves it as it was).
        if renamed and updated_client_order_id:
            account.orders_by_client_id.pop(order.client_order_id, None)
            order.client_order_id = updated_client_order_id
            account.orders_by_client_id[updated_client_order_id] = order
        self.counters["orders_amended"] += 1
        order.initial_count = count
        if expiration_s is not None:
            order.expiration_ms = expiration_s * 1000 if expiration_s else None
            if order.expiration_ms is not None:
                heapq.heappush(self._expiries, (order.expiration_ms, order.seq, order.order_id))
        if in_place:
            self._shrink_in_place(market, order, order.remaining - new_remaining, now_ms, "Amend")
            if new_remaining == order.remaining:
                order.updated_ms = now_ms
                self._emit_order(order)
            return Execution(order, 0, 0, 0)
        book = self.books[order.ticker]
        book.half(order.side).remove(order, order.remaining)
        self._emit_delta(order, -order.remaining, now_ms)
        account.resting.pop(order.order_id, None)
        order.remaining = 0
        self._relock(account, market, order)
        order.price = price
        order.remaining = new_remaining
        order.seq = self.next_seq()
        order.last_update_reason = "Amend"
        order.tif = TimeInForce.GTC
        return self._work(market, account, order, now_ms)

    def queue_position(self, order: Order) -> int:
        if not order.is_resting:
            return 0
        return self.books[order.ticker].queue_ahead(order)

    # ----- time ---------------------------------------------------------------------------

    def expire_orders(self, now_ms: int) -> int:
        self.sweep_cancel_all(now_ms)
        expired = 0
        while self._expiries and self._expiries[0][0] <= now_ms:
            expires_ms, seq, order_id = heapq.heappop(self._expiries)
            order = self.orders.get(order_id)
            if (
                order is not None
                and order.is_resting
                and order.seq == seq
                and order.expiration_ms == expires_ms  # an amend may have moved or cleared it
            ):
                self.cancel_resting(order, now_ms, reason="Expired")
                self.counters["orders_expired"] += 1
                expired += 1
        return expired

    # ----- order groups (bodies in sim.groups) ----------------------------------------------

    def _count_group_fill(self, account: Account, group_id: str, count: int, now_ms: int) -> None:
        if count_fill(account, group_id, count, now_ms):
            self._pending_triggers.append((account.key_id, group_id))

    def _run_pending_triggers(self, now_ms: int) -> None:
        while self._pending_triggers:
            key_id, group_id = self._pending_triggers.pop(0)
            trigger_group(self, key_id, group_id, now_ms)

    # ----- invariants (tests, control API) -------------------------------------------------

    def total_money(self) -> int:
        """Cash of every account + fees + $1 per open contract pair: equals the deposits."""
        cash = sum(a.cash for a in self.accounts.values())
        open_interest = sum(m.open_interest for m in self.markets.values())
        return cash + self.fees_collected + open_interest * ONE_DOLLAR


def _cash_change(held: int, side: BookSide, price: int, count: int) -> tuple[int, int]:
    """Cash delta (money) of a fill for an account holding ``held``, and contracts closed."""
    if side is BookSide.BID:
        closing = min(count, max(-held, 0))
        return closing * (ONE_DOLLAR - price) - (count - closing) * price, closing
    closing = min(count, max(held, 0))
    return closing * price - (count - closing) * (ONE_DOLLAR - price), closing
