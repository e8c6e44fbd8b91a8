"""``dora sim facts``: the simulated market's statistics, measured from its own trade tape.

A run is the scenario's flow on a virtual clock (``sim.world.World``) with every market closing
at the end of the run (``market_lifetime_s`` set to the run's hours), then determined, so every
trade has an outcome. From the exchange's trade tape (``Exchange.trades``):

- ``maker_excess_return_pp`` / ``taker_excess_return_pp``: per contract, payout - price in
  percentage points of $1, volume-weighted over the settled markets, before fees; the maker is the
  resting side of each trade, the taker the incoming one (so the two are mirrors);
- ``win_rate_by_price_bucket``: every trade is two contracts bought, YES at p and NO at 1 - p;
  per 10-cent bucket of the price paid, the contracts, their mean price (cents) and how often they
  won (percent): a price is a forecast, so a fair market has win rate = mean price;
- ``median_spread_cents``: the median of best ask - best bid, sampled every second per open
  market with both sides quoted (``one_sided_share`` counts the samples without);
- ``trades_per_hour`` (all markets) and ``trades_per_market_hour``.

Outcomes are binary, so a run's realized figures carry the luck of a few settlements. Each comes
with its expectation given the hidden fair value at the time of the trade (``*_vs_fair_pp``,
``fair_win_rate``): the fair value is a martingale (``sim.fair``), so the realized figure averages
to it over seeds, and its seed-to-seed noise is far smaller. ``PUBLISHED`` holds the figures of
``research/kalshi-market-facts.md`` they are printed beside.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from common.numbers import ONE_DOLLAR
from sim.fair import fair_price
from sim.model import BookSide
from sim.scenario import Scenario
from sim.world import World

CENT = ONE_DOLLAR // 100
BUCKETS = 10  # [0, 10) c, [10, 20) c, ... [90, 100) c
SAMPLE_MS = 1_000
MAX_HOURS = 48.0
DEFAULT_HOURS = 4.0
DEFAULT_MARKETS = 40

# (label, value, source) as the research file names them
PUBLISHED: dict[str, tuple[str, str]] = {
    "maker_excess_return_pp": ("+1.12", "Becker, 72.1M Kalshi trades"),
    "taker_excess_return_pp": ("-1.12", "Becker"),
    "median_spread_cents": ("1-5 in active markets", "Books (NBA 2-5 pre-game, 1-3 live)"),
    "trades_per_hour": ("-", "no published rate per market"),
    "0-10": ("5 c contracts win 4.18 %; YES at 1 c returns -41 %", "Becker"),
    "90-100": ("expensive contracts earn small positive returns", "Burgi, Deng & Whelan"),
}


@dataclass(frozen=True, slots=True)
class FactsSpec:
    scenario: Scenario
    hours: float = DEFAULT_HOURS
    seed: int = 0
    n_markets: int = DEFAULT_MARKETS


@dataclass(slots=True)
class _Bucket:
    contracts: int = 0  # 1/100 contract
    paid: int = 0  # price x count
    won: int = 0  # count of the contracts that won
    fair_won: int = 0  # fair probability x count: the expected number won

    def add(self, price: int, count: int, won: bool, fair: int) -> None:
        self.contracts += count
        self.paid += price * count
        self.won += count if won else 0
        self.fair_won += fair * count


@dataclass(slots=True)
class FactsTape:
    """What the run saw, in the engine's integer units."""

    trade_fairs: list[int] = field(default_factory=list)  # fair price at each trade, tape order
    spreads: list[int] = field(default_factory=list)
    one_sided: int = 0
    fair_min: int = ONE_DOLLAR
    fair_max: int = 0


def facts_scenario(scenario: Scenario, hours: float) -> Scenario:
    """The scenario with every market open from the start and closing at the end of the run."""
    return replace(scenario, open_delay_s=0, market_lifetime_s=max(10, round(hours * 3600)))


def _sample(world: World, tape: FactsTape) -> None:
    for ticker, market in world.exchange.markets.items():
        if not market.is_trading:
            continue
        fair = fair_price(world.fair_value(ticker))
        tape.fair_min, tape.fair_max = min(tape.fair_min, fair), max(tape.fair_max, fair)
        book = world.exchange.books[ticker]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            tape.one_sided += 1
        else:
            tape.spreads.append(ask.price - bid.price)


def run_world(spec: FactsSpec) -> tuple[World, FactsTape]:
    """Run the scenario until every market is determined, recording the fair value at each
    trade and a sample of every open book each second."""
    scenario = facts_scenario(spec.scenario, spec.hours)
    world = World(scenario, seed=spec.seed, n_markets=spec.n_markets)
    tape = FactsTape()
    trades = world.exchange.trades
    close_ms = world.now_ms + scenario.market_lifetime_s * 1000
    next_sample_ms = world.now_ms
    while world.now_ms < close_ms:
        world.step(world.tick_ms)
        for trade in trades[len(tape.trade_fairs) :]:
            tape.trade_fairs.append(fair_price(world.fair_value(trade.ticker)))
        if world.now_ms >= next_sample_ms:
            _sample(world, tape)
            next_sample_ms += SAMPLE_MS
    world.step_to(close_ms + (scenario.determination_delay_s + 1) * 1000 + world.tick_ms)
    return world, tape


def measure(world: World, tape: FactsTape, spec: FactsSpec) -> dict[str, Any]:
    markets = world.exchange.markets
    taker_excess = taker_vs_fair = volume = 0
    buckets = [_Bucket() for _ in range(BUCKETS)]
    settled = 0
    for trade, fair in zip(world.exchange.trades, tape.trade_fairs, strict=False):
        result = markets[trade.ticker].result
        if result not in ("yes", "no"):
            continue
        settled += 1
        yes_won = result == "yes"
        payout = ONE_DOLLAR if yes_won else 0
        sign = 1 if trade.taker_side is BookSide.BID else -1  # taker holds YES (+) or NO (-)
        taker_excess += sign * (payout - trade.price) * trade.count
        taker_vs_fair += sign * (fair - trade.price) * trade.count
        volume += trade.count
        yes_price, no_price = trade.price, ONE_DOLLAR - trade.price
        buckets[yes_price * BUCKETS // ONE_DOLLAR].add(yes_price, trade.count, yes_won, fair)
        buckets[no_price * BUCKETS // ONE_DOLLAR].add(
            no_price, trade.count, not yes_won, ONE_DOLLAR - fair
        )
    trades = len(world.exchange.trades)
    hours = spec.hours
    n_markets = len(markets)

    def pp(money: int) -> float:
        return round(100 * money / (volume * ONE_DOLLAR), 3) if volume else 0.0

    return {
        "scenario": spec.scenario.name,
        "seed": spec.seed,
        "hours": hours,
        "markets": n_markets,
        "settled_markets": sum(1 for m in markets.values() if m.result in ("yes", "no")),
        "yes_settlements": sum(1 for m in markets.values() if m.result == "yes"),
        "trades": trades,
        "settled_trades": settled,
        "contracts": volume // 100,
        "trades_per_hour": round(trades / hours, 1),
        "trades_per_market_hour": round(trades / hours / n_markets, 2),
        "maker_excess_return_pp": -pp(taker_excess),
        "taker_excess_return_pp": pp(taker_excess),
        "maker_excess_vs_fair_pp": -pp(taker_vs_fair),
        "taker_excess_vs_fair_pp": pp(taker_vs_fair),
        "win_rate_by_price_bucket": {
            f"{10 * i}-{10 * i + 10}": _bucket_json(b) for i, b in enumerate(buckets)
        },
        "median_spread_cents": (
            round(statistics.median(tape.spreads) / CENT, 2) if tape.spreads else None
        ),
        "one_sided_share": round(tape.one_sided / max(1, tape.one_sided + len(tape.spreads)), 3),
        "fair_value_min_cents": round(tape.fair_min / CENT, 2),
        "fair_value_max_cents": round(tape.fair_max / CENT, 2),
    }


def _bucket_json(bucket: _Bucket) -> dict[str, Any]:
    n = bucket.contracts
    return {
        "contracts": n // 100,
        "mean_price": round(bucket.paid / n / CENT, 2) if n else None,
        "win_rate": round(100 * bucket.won / n, 2) if n else None,
        "fair_win_rate": round(bucket.fair_won / n / CENT, 2) if n else None,
    }


def run_facts(spec: FactsSpec) -> dict[str, Any]:
    world, tape = run_world(spec)
    return measure(world, tape, spec)


def facts_table(facts: dict[str, Any]) -> str:
    """The measured figures beside the published ones, as markdown."""

    def signed(value: float) -> str:
        return f"{value:+.2f}"

    rows = [
        "| measure | simulated (vs fair value) | published | source |",
        "|---|---|---|---|",
    ]
    for key, measured in (
        (
            "maker_excess_return_pp",
            f"{signed(facts['maker_excess_return_pp'])} ({signed(facts['maker_excess_vs_fair_pp'])})",
        ),
        (
            "taker_excess_return_pp",
            f"{signed(facts['taker_excess_return_pp'])} ({signed(facts['taker_excess_vs_fair_pp'])})",
        ),
        ("median_spread_cents", f"{facts['median_spread_cents']}"),
        ("trades_per_hour", f"{facts['trades_per_hour']:g}"),
    ):
        value, source = PUBLISHED[key]
        rows.append(f"| {key} | {measured} | {value} | {source} |")
    rows += [
        "",
        "| price bucket c | contracts | mean price c | win rate % (fair) | published |",
        "|---|---|---|---|---|",
    ]
    for label, bucket in facts["win_rate_by_price_bucket"].items():
        if not bucket["contracts"]:
            rows.append(f"| {label} | 0 | | | |")
            continue
        published = PUBLISHED.get(label, ("", ""))[0]
        rows.append(
            f"| {label} | {bucket['contracts']} | {bucket['mean_price']:.2f} | "
            f"{bucket['win_rate']:.2f} ({bucket['fair_win_rate']:.2f}) | {published} |"
        )
    head = (
        f"{facts['scenario']}, seed {facts['seed']}, {facts['hours']:g} h, "
        f"{facts['markets']} markets ({facts['yes_settlements']} settled YES), "
        f"{facts['trades']} trades; fair values {facts['fair_value_min_cents']:.1f}-"
        f"{facts['fair_value_max_cents']:.1f} c"
    )
    return head + "\n\n" + "\n".join(rows)
