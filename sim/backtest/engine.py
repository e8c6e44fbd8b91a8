"""The virtual-clock loop: one strategy, one ``World``, the live diff and risk code in between.

Each strategy runs in its **own** World built from the same scenario and seed. The flow agents
draw from per-market generators seeded by (seed, ticker), so every strategy meets the same
fair-value path and the same stream of taker arrivals; what differs is only its own effect on
the book. Running all three in one World would make them compete for the same takers (the
tightest quote would take the others' fills) and each would trade against the others' quotes,
which says nothing about how a rule does on its own.

Per market, like the live processes:
- the strategy looks at the book after every agent tick (the only time the book changes), and
  at least every ``full_pass_ms`` (time rules); a burst of changes is one decision;
- after every agent tick the others' book (our orders taken out) goes into the market's
  ``common.book_memory.BookMemory`` (which levels were added when), as the live process would
  with every book it reads;
- its targets go through ``common.order_diff.diff_orders`` and the actions through
  ``common.risk.approve_actions``, the executor's own approval (risk-reducing actions first);
- approved actions pay write tokens from a token bucket (the simulator's tier table and costs:
  create 10, amend 10, decrease 10, cancel 2; one it cannot pay for is throttled and counts as
  not sent) and reach the exchange ``latency_ms`` later; while
  a market has actions in flight it is not decided again (the executor's one pass per market);
- every ``risk_refresh_ms`` the account's marked PnL and worst-case exposure are refreshed; a
  daily loss beyond ``max_daily_loss`` halts: every quote is pulled and nothing new is sent.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field, replace
from functools import partial

from common.book import YesBook
from common.book_memory import NO_MEMORY, BookMemory, remember_book
from common.config import GlobalConfig, MarketConfig
from common.domain import (
    Fill,
    MarketMeta,
    MarketStatus,
    Order,
    OrderStatus,
    Position,
    Side,
    Targets,
)
from common.fees import RoundingFee
from common.markouts import NO_MARKOUTS, Markouts, note_fill, score_due
from common.numbers import COUNT_SCALE, MONEY_SCALE, ONE_DOLLAR
from common.order_diff import Action, ActionKind, diff_orders
from common.quoting import QuotingParams, without_own_orders
from common.recent_mids import NO_RECENT, Recent, remember_mid
from common.risk import (
    RATE_LIMITED,
    AccountRisk,
    WriteBudget,
    approve_actions,
    total_pnl,
    worst_case_exposure,
)
from sim.backtest.metrics import FairTape, FillRecord, Summary, fair_price_units, summarize
from sim.backtest.strategies import STRATEGIES, STRATEGY_NAMES, MarketView, Strategy, dora
from sim.engine import OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, Market
from sim.ratelimit import TIERS, Bucket, request_cost
from sim.scenario import Scenario
from sim.world import DEFAULT_START_MS, World

KEY_ID = "backtest"
HOUR_MS = 3_600_000
RECENT_MS = 60_000

DEFAULT_MARKET_CONFIG = MarketConfig(
    "template",
    enabled=True,
    max_inventory_yes=50 * COUNT_SCALE,
    max_inventory_no=50 * COUNT_SCALE,
    min_spread=100,
    quote_size=5 * COUNT_SCALE,
    inventory_skew_factor=10_000,
    toxicity_score=0,
)
DEFAULT_GLOBAL_CONFIG = GlobalConfig(
    max_total_exposure=5_000 * MONEY_SCALE, max_daily_loss=500 * MONEY_SCALE
)

_COSTS = {
    ActionKind.PLACE: request_cost("POST", "/portfolio/events/orders")[1],
    ActionKind.CANCEL: request_cost("DELETE", "/portfolio/events/orders/{order_id}")[1],
    ActionKind.AMEND: request_cost("POST", "/portfolio/events/orders/{order_id}/amend")[1],
    ActionKind.DECREASE: request_cost("POST", "/portfolio/events/orders/{order_id}/decrease")[1],
}


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    scenario: Scenario
    seed: int = 0
    hours: float = 1.0
    strategies: tuple[str, ...] = STRATEGY_NAMES
    n_markets: int = 6
    latency_ms: int = 50
    market_config: MarketConfig = DEFAULT_MARKET_CONFIG
    global_config: GlobalConfig = DEFAULT_GLOBAL_CONFIG
    rate_tier: str = "advanced"
    balance_dollars: int = 10_000
    full_pass_ms: int = 1_000
    risk_refresh_ms: int = 1_000
    sample_ms: int = 1_000
    plot_market: int = 0  # index of the market whose quotes the plot shows
    # "diff": dora's executor (common.order_diff: amend, decrease, one-tick tolerance);
    # "cancel_replace": the naive executor, which cancels and re-places on every target change
    executor: str = "diff"
    dora_params: QuotingParams | None = None  # dora's quoting knobs (None: the shipped defaults)

    @property
    def duration_ms(self) -> int:
        return round(self.hours * HOUR_MS)


@dataclass(slots=True)
class Series:
    """Samples every ``sample_ms`` for the plot and the drawdown."""

    times_ms: list[int] = field(default_factory=list)
    pnl: list[int] = field(default_factory=list)  # money, marked at the fair value
    inventory: list[int] = field(default_factory=list)  # sum of |position| over markets
    fair: list[int] = field(default_factory=list)  # plot market: hidden fair value
    bid: list[int | None] = field(default_factory=list)  # plot market: our best resting bid
    ask: list[int | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StrategyRun:
    name: str
    summary: Summary
    counts: dict[str, int]
    write_tokens: int
    series: Series
    plot_ticker: str
    per_market_pnl: dict[str, int]


@dataclass(frozen=True, slots=True)
class BacktestResult:
    spec: BacktestSpec
    tickers: tuple[str, ...]
    runs: dict[str, StrategyRun]


@dataclass(slots=True)
class _Market:
    ticker: str
    sim: Market
    config: MarketConfig
    meta: MarketMeta
    position: Position
    busy: bool = False
    dirty: bool = True
    last_signature: tuple[object, ...] = ()
    seen_signature: tuple[object, ...] = ()
    last_decision_ms: int = -(10**15)
    recent: Recent = NO_RECENT
    memory: BookMemory = NO_MEMORY
    markouts: Markouts = NO_MARKOUTS


def run_backtest(spec: BacktestSpec) -> BacktestResult:
    runs = {}
    tickers: tuple[str, ...] = ()
    for name in spec.strategies:
        strategy = STRATEGIES[name]
        if name == "dora" and spec.dora_params is not None:
            strategy = partial(dora, params=spec.dora_params)
        runner = _Runner(spec, name, strategy)
        runs[name] = runner.run()
        tickers = tuple(runner.world.tickers)
    return BacktestResult(spec, tickers, runs)


def _meta(market: Market) -> MarketMeta:
    return MarketMeta(
        market.ticker,
        MarketStatus.parse(market.status.value),
        market.close_ms,
        market.grid,
        market.fee_type,
        market.fee_multiplier_pct,
    )


def cancel_replace_actions(own: list[Order], targets: Targets) -> list[Action]:
    """The naive executor the benchmark compares against: any resting order that is not exactly
    the target is cancelled and the target placed anew (no amend, no decrease, no tolerance)."""
    actions: list[Action] = []
    for side, quote in ((Side.BID, targets.bid), (Side.ASK, targets.ask)):
        mine = [o for o in own if o.side is side and o.status.is_live]
        exact = (
            quote is not None
            and len(mine) == 1
            and (mine[0].price, mine[0].remaining)
            == (
                quote.price,
                quote.size,
            )
        )
        if exact:
            continue
        for order in mine:
            actions.append(
                Action(ActionKind.CANCEL, targets.ticker, side, order.price, 0, order, "replace")
            )
        if quote is not None:
            actions.append(
                Action(
                    ActionKind.PLACE, targets.ticker, side, quote.price, quote.size, None, "replace"
                )
            )
    return actions


def _signature(world: World, ticker: str) -> tuple[object, ...]:
    book = world.exchange.books[ticker]
    bids, asks = book.bids, book.asks
    top_bids = bids.prices[-2:]
    top_asks = asks.prices[:2]
    return (
        *top_bids,
        *(bids.levels[p].size for p in top_bids),
        0,
        *top_asks,
        *(asks.levels[p].size for p in top_asks),
    )


def _yes_book(world: World, ticker: str, levels: int = 10) -> YesBook:
    book = world.exchange.books[ticker]
    bids, asks = book.bids, book.asks
    return YesBook(
        tuple((p, bids.levels[p].size) for p in reversed(bids.prices[-levels:])),
        tuple((p, asks.levels[p].size) for p in asks.prices[:levels]),
    )


class _Runner:
    def __init__(self, spec: BacktestSpec, name: str, strategy: Strategy) -> None:
        self.spec = spec
        self.name = name
        self.strategy = strategy
        self.world = World(spec.scenario, seed=spec.seed, n_markets=spec.n_markets)
        self.start_ms = DEFAULT_START_MS
        self.account = self.world.add_participant(KEY_ID, spec.balance_dollars)
        self.rounding = RoundingFee.for_member(self.account.direct_member)
        self.rounding_accumulators: dict[str, int] = {}  # order id -> its rounding overpaid
        self.markets: dict[str, _Market] = {}
        for ticker, market in self.world.exchange.markets.items():
            self.markets[ticker] = _Market(
                ticker,
                market,
                replace(spec.market_config, market_id=ticker),
                _meta(market),
                Position(ticker),
            )
        self.tickers = list(self.markets)
        # the other outcomes of each market's mutually exclusive event
        self.siblings: dict[str, tuple[str, ...]] = {}
        exchange = self.world.exchange
        for ticker, market in exchange.markets.items():
            event = exchange.events_by_ticker.get(market.event_ticker)
            if event is not None and event.mutually_exclusive:
                self.siblings[ticker] = tuple(
                    t
                    for t, m in exchange.markets.items()
                    if t != ticker and m.event_ticker == market.event_ticker
                )
        self.plot_ticker = self.tickers[min(spec.plot_market, len(self.tickers) - 1)]
        refill, capacity = _write_limits(spec.rate_tier)
        self.bucket = Bucket(refill, capacity, float(capacity), 0.0)
        self.inflight: list[tuple[int, int, str, list[Action]]] = []
        self.seq = itertools.count()
        self.fill_index = 0
        self.fills: list[FillRecord] = []
        self.tape = FairTape()
        self.series = Series()
        self.max_abs_inventory = 0
        self.write_tokens = 0
        self.counts = dict.fromkeys(
            (
                "decisions",
                "placed",
                "amended",
                "decreased",
                "canceled",
                "rejected",
                "denied",
                "throttled",
                "book_updates",
            ),
            0,
        )
        self.halted = False
        self.account_risk = AccountRisk(False, "", 0, 0)

    # ---- the loop ----------------------------------------------------------------------------

    def run(self) -> StrategyRun:
        spec, world = self.spec, self.world
        step_ms = world.tick_ms
        end_ms = self.start_ms + spec.duration_ms
        next_decision = self.start_ms + step_ms
        next_sample = self.start_ms
        next_risk = self.start_ms
        while True:
            next_land = self.inflight[0][0] if self.inflight else next_decision
            now = min(next_decision, next_land)
            if now > end_ms:
                break
            world.step_to(now)
            self._ingest_fills()
            while self.inflight and self.inflight[0][0] <= now:
                _, _, ticker, actions = heapq.heappop(self.inflight)
                self._land(ticker, actions, now)
            if now != next_decision:
                continue
            next_decision += step_ms
            self._record_fair(now)
            if now >= next_risk:
                next_risk += spec.risk_refresh_ms
                self._refresh_risk()
            if now >= next_sample:
                next_sample += spec.sample_ms
                self._sample(now)
            for market in self.markets.values():
                self._remember_book(market, now)
                seen = self._market_signature(market.ticker)
                if seen != market.seen_signature:  # the others' top two levels changed
                    self.counts["book_updates"] += 1
                    market.seen_signature = seen
                self._decide(market, now)
        world.step_to(end_ms)
        self._ingest_fills()
        self._record_fair(end_ms)
        self._sample(end_ms)
        return self._finish(end_ms)

    # ---- fills and marks ---------------------------------------------------------------------

    def _ingest_fills(self) -> None:
        fills = self.account.fills
        if self.fill_index == len(fills):
            return
        for fill in fills[self.fill_index :]:
            market = self.markets[fill.ticker]
            side = Side(fill.side.value)
            # what the balance lost, as the fills process books it: the trade fee plus the
            # rounding fee less the order accumulator's rebates (common/fees.py)
            rounded = self.rounding.apply(
                side is Side.BID,
                fill.price,
                fill.count,
                fill.fee,
                self.rounding_accumulators.get(fill.order_id, 0),
            )
            self.rounding_accumulators[fill.order_id] = rounded.accumulator
            market.position = market.position.apply_fill(
                Fill(
                    fill.fill_id,
                    fill.order_id,
                    fill.ticker,
                    side,
                    fill.price,
                    fill.count,
                    rounded.net,
                    fill.is_taker,
                    fill.created_ms,
                )
            )
            mids = market.memory.mids_x2  # the others' mid as last seen, before the fill
            market.markouts = note_fill(
                market.markouts,
                fill.created_ms,
                side.sign * fill.count,
                mids[-1][1] if mids else None,
                fill.price,
            )
            market.dirty = True
            self.max_abs_inventory = max(self.max_abs_inventory, abs(market.position.position))
            self.fills.append(
                FillRecord(
                    fill.created_ms,
                    fill.ticker,
                    side.sign * fill.count,
                    fill.price,
                    rounded.net,
                    fill.is_taker,
                )
            )
        self.fill_index = len(fills)

    def _mark(self, ticker: str) -> int:
        """Settlement value once determined, else the hidden fair value."""
        market = self.markets[ticker].sim
        if market.result:
            return ONE_DOLLAR if market.result == "yes" else 0
        return fair_price_units(self.world.fair_value(ticker))

    def _record_fair(self, now: int) -> None:
        self.tape.record(now, {t: self._mark(t) for t in self.tickers})

    def _sample(self, now: int) -> None:
        series = self.series
        marks = {t: self.tape.values[t][-1] for t in self.tickers}
        series.times_ms.append(now)
        series.pnl.append(total_pnl((m.position for m in self.markets.values()), marks))
        series.inventory.append(sum(abs(m.position.position) for m in self.markets.values()))
        series.fair.append(marks[self.plot_ticker])
        own = self._own_orders(self.plot_ticker)
        bids = [o.price for o in own if o.side is Side.BID]
        asks = [o.price for o in own if o.side is Side.ASK]
        series.bid.append(max(bids) if bids else None)
        series.ask.append(min(asks) if asks else None)

    def _refresh_risk(self) -> None:
        marks = {}
        for ticker in self.tickers:
            book = self.world.exchange.books[ticker]
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None:
                marks[ticker] = (bid.price + ask.price) // 2
        positions = [m.position for m in self.markets.values()]
        daily_pnl = total_pnl(positions, marks)
        orders = [o for t in self.tickers for o in self._own_orders(t)]
        if daily_pnl <= -self.spec.global_config.max_daily_loss and not self.halted:
            self.halted = True
            self.counts["halted_at_ms"] = self.world.now_ms - self.start_ms
        self.account_risk = AccountRisk(
            self.halted,
            "daily loss limit" if self.halted else "",
            daily_pnl,
            worst_case_exposure(positions, orders),
        )

    # ---- deciding and sending ----------------------------------------------------------------

    def _market_signature(self, ticker: str) -> tuple[object, ...]:
        """The top two levels of the others' book: what counts as a book update. Our own orders
        are left out so both executors are measured against the same market activity (an
        executor that churns its own quotes would otherwise inflate its own denominator)."""
        book = without_own_orders(_yes_book(self.world, ticker, 6), self._own_orders(ticker))
        return (book.bids[:2], book.asks[:2])

    def _own_orders(self, ticker: str) -> list[Order]:
        out = []
        for o in self.account.resting.values():
            if o.ticker == ticker:
                out.append(
                    Order(
                        ticker,
                        Side(o.side.value),
                        o.price,
                        o.initial_count,
                        o.client_order_id,
                        o.order_id,
                        OrderStatus.RESTING,
                        o.filled,
                        o.remaining,
                        o.created_ms,
                        o.updated_ms,
                    )
                )
        return out

    def _decide(self, market: _Market, now: int) -> None:
        if market.busy:
            return
        if market.meta.status != market.sim.status.value:
            market.meta = _meta(market.sim)
            market.dirty = True
        signature = _signature(self.world, market.ticker)
        if (
            not market.dirty
            and signature == market.last_signature
            and now - market.last_decision_ms < self.spec.full_pass_ms
        ):
            return
        market.dirty = False
        market.last_signature = signature
        market.last_decision_ms = now
        self.counts["decisions"] += 1
        own = self._own_orders(market.ticker)
        book = _yes_book(self.world, market.ticker)
        others = without_own_orders(book, own)
        market.recent = remember_mid(market.recent, now, others.mid_x2, RECENT_MS)
        market.markouts = score_due(market.markouts, now, others.mid_x2)
        if self.halted:
            targets = Targets(market.ticker, None, None, "halted", now)
        else:
            view = MarketView(
                market.ticker,
                book,
                tuple(own),
                market.position,
                market.config,
                market.meta,
                now,
                market.recent,
                market.memory,
                tuple(self._others_mid_x2(t) for t in self.siblings.get(market.ticker, ())),
                market.markouts,
            )
            targets = self.strategy(view)
        if self.spec.executor == "cancel_replace":
            actions = cancel_replace_actions(own, targets)
        else:
            actions = diff_orders(own, targets, market.meta.grid)
        if not actions:
            return
        approved = self._approve(market, own, actions)
        if approved:
            market.busy = True
            heapq.heappush(
                self.inflight,
                (now + self.spec.latency_ms, next(self.seq), market.ticker, approved),
            )

    def _others_mid_x2(self, ticker: str) -> int | None:
        """Twice the mid of the others' book in ``ticker`` (our orders out), None if one-sided."""
        return without_own_orders(_yes_book(self.world, ticker, 4), self._own_orders(ticker)).mid_x2

    def _remember_book(self, market: _Market, now: int) -> None:
        """Every agent tick (the live process: every book update it reads), the others' book
        into the market's ``BookMemory``."""
        book = without_own_orders(
            _yes_book(self.world, market.ticker), self._own_orders(market.ticker)
        )
        market.memory = remember_book(market.memory, book, now)

    def _approve(self, market: _Market, own: list[Order], actions: list[Action]) -> list[Action]:
        """The executor's approval (``common.risk.approve_actions``, unchanged) with the write
        tokens the rate bucket holds now; an action it cannot pay for is throttled."""
        now_s = self.world.now_ms / 1000
        self.bucket.take(0, now_s)  # refilled up to now
        approval = approve_actions(
            actions,
            market.position,
            own,
            market.config,
            self.spec.global_config,
            self.account_risk,
            WriteBudget(math.floor(self.bucket.tokens), _COSTS),
        )
        for action in approval.approved:
            paid = self.bucket.take(_COSTS[action.kind], now_s)
            assert paid, "the approval spent only the tokens the bucket held"
        for _, denial in approval.denied:
            self.counts["throttled" if denial.rule == RATE_LIMITED else "denied"] += 1
        self.write_tokens += approval.tokens_spent
        return list(approval.approved)

    def _land(self, ticker: str, actions: list[Action], now: int) -> None:
        market = self.markets[ticker]
        world, exchange = self.world, self.world.exchange
        for action in actions:
            order = action.order
            try:
                if action.kind is ActionKind.PLACE:
                    world.submit(
                        KEY_ID,
                        OrderRequest(
                            ticker,
                            BookSide(action.side.value),
                            action.price,
                            action.size,
                            client_order_id=f"bt-{next(self.seq)}",
                            post_only=True,
                            cancel_on_pause=True,
                        ),
                    )
                    self.counts["placed"] += 1
                elif action.kind is ActionKind.CANCEL:
                    assert order is not None and order.order_id is not None
                    world.cancel(KEY_ID, order.order_id)
                    self.counts["canceled"] += 1
                elif action.kind is ActionKind.DECREASE:
                    assert order is not None and order.order_id is not None
                    exchange.decrease_order(KEY_ID, order.order_id, now, reduce_to=action.size)
                    self.counts["decreased"] += 1
                else:
                    assert order is not None and order.order_id is not None
                    filled = exchange.accounts[KEY_ID].orders[order.order_id].filled
                    exchange.amend_order(
                        KEY_ID,
                        order.order_id,
                        now,
                        ticker=ticker,
                        side=BookSide(action.side.value),
                        price=action.price,
                        count=filled + action.size,
                    )
                    self.counts["amended"] += 1
            except EngineError:
                self.counts["rejected"] += 1  # filled or moved meanwhile, or a post-only cross
        market.busy = False
        market.dirty = True

    # ---- the end -----------------------------------------------------------------------------

    def _finish(self, end_ms: int) -> StrategyRun:
        marks = {t: self._mark(t) for t in self.tickers}
        positions = {t: m.position for t, m in self.markets.items()}
        summary = summarize(
            positions,
            marks,
            self.fills,
            self.tape,
            self.series.pnl,
            self.max_abs_inventory,
        )
        per_market = {
            t: p.net_realized_pnl + (p.unrealized_pnl(marks[t]) if p.position else 0)
            for t, p in positions.items()
        }
        return StrategyRun(
            self.name,
            summary,
            dict(self.counts),
            self.write_tokens,
            self.series,
            self.plot_ticker,
            per_market,
        )


def _write_limits(tier: str) -> tuple[int, int]:
    if tier not in TIERS:
        return 10**9, 10**9
    _, _, refill, capacity = TIERS[tier]
    return refill, capacity
