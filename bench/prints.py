"""Does the public trade tape say when a taker is informed? Session 20's diagnostic (issue #21).

Run: ``python -m bench.prints news_jumps 1-8 [hours [NAME=VALUE ...]]`` (knobs as ``bench.ab``'s). It backtests dora (0.5 h, 6 markets, as
``bench.ab`` does) and, from the world it traded in, reads the public tape: every trade, with its
taker's side and count, as Kalshi's ``trade`` channel publishes it. Consecutive trades of one
market in one tick with the same taker side are one **print** (one taker order walking the book;
the feed has no taker order id, so two takers on one side in one tick merge, as they would live).
For each print it measures, in cents, with the hidden fair value (``World.fair_value``, which a
live bot never sees: this is for choosing a rule, not a rule):
- sign x (fair - others' mid) 0, 0.5, 1, 2 and 4 s after the print (sign: +1 for a taker that
  bought YES): how much of the taker's information the book has not priced in yet;
- by the print's size (1-10, 11-20, 21+ contracts), by its size against that market's last 50
  prints (above their maximum, above their 90th percentile, the rest; only once 20 are seen),
  and by the taker's hidden identity (informed or noise: what a rule would want to know);
- how often a fill of dora's on the same side (the side the taker hit) follows within 4 s, and
  those fills' edge a contract against the fair value at the fill (and 10 s later).
"""

from __future__ import annotations

import math
import statistics
import sys
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import partial

from bench.ab import parse_override
from common.numbers import COUNT_SCALE, ONE_DOLLAR
from common.quoting_params import QuotingParams
from sim.agents import INFORMED_KEY
from sim.backtest.engine import BacktestSpec, _Market, _Runner
from sim.backtest.strategies import dora
from sim.model import BookSide, Trade
from sim.scenario import load_scenario

CENT = ONE_DOLLAR / 100
LAGS_MS = (0, 500, 1_000, 2_000, 4_000)
FOLLOW_MS = 4_000  # a fill of ours this long after a print "follows" it
RELATIVE_WINDOW = 50  # the market's own recent prints a size is judged against
RELATIVE_MIN = 20  # no relative bucket before this many prints were seen


@dataclass(frozen=True, slots=True)
class Print:
    ticker: str
    ms: int
    sign: int  # +1: the taker bought YES (hit asks); -1: sold YES (hit bids)
    count: int  # contracts
    informed: bool  # hidden: any of its trades was the informed agent's


def prints_of(trades: list[Trade], informed_ids: set[str]) -> list[Print]:
    """Consecutive trades of one market, tick and taker side merged into one print."""
    out: list[Print] = []
    last: tuple[str, int, BookSide] | None = None
    for trade in sorted(trades, key=lambda t: t.seq):
        key = (trade.ticker, trade.created_ms, trade.taker_side)
        count = trade.count // COUNT_SCALE
        informed = trade.trade_id in informed_ids
        if key == last:
            prev = out[-1]
            out[-1] = Print(
                prev.ticker, prev.ms, prev.sign, prev.count + count, prev.informed or informed
            )
        else:
            sign = 1 if trade.taker_side is BookSide.BID else -1
            out.append(Print(trade.ticker, trade.created_ms, sign, count, informed))
        last = key
    return out


class _Recording(_Runner):
    """A dora backtest that also keeps the others' mid of every market after every agent tick."""

    def __init__(self, spec: BacktestSpec) -> None:
        strategy = partial(dora, params=spec.dora_params) if spec.dora_params else dora
        super().__init__(spec, "dora", strategy)
        self.mids: dict[str, tuple[list[int], list[int | None]]] = {
            t: ([], []) for t in self.tickers
        }

    def _remember_book(self, market: _Market, now: int) -> None:
        super()._remember_book(market, now)
        times, mids = self.mids[market.ticker]
        times.append(now)
        mids.append(self._others_mid_x2(market.ticker))


def _size_bucket(count: int) -> str:
    return "1-10" if count <= 10 else "11-20" if count <= 20 else "21+"


def _p90(earlier: list[int]) -> int:
    ranked = sorted(earlier)
    return ranked[math.ceil(0.9 * len(ranked)) - 1]


def _ratio_buckets(count: int, earlier: list[int]) -> list[str]:
    """A print this many times the market's 90th percentile; and one of at least k contracts
    where at most x % of the market's last 50 prints reached k (large prints are rare there:
    session 20's rule's judgement)."""
    if len(earlier) < RELATIVE_MIN:
        return []
    p90 = _p90(earlier)
    out = [f">= {r / 2:g} x p90" for r in (3, 4) if 2 * count >= r * p90]
    for k in (11, 15):
        share = 100 * sum(1 for c in earlier if c >= k) / len(earlier)
        out += [
            f">= {k}, <= {x} % of last 50 >= {k}" for x in (10, 20, 30) if count >= k and share <= x
        ]
    return out


def _relative_bucket(count: int, earlier: list[int]) -> str | None:
    if len(earlier) < RELATIVE_MIN:
        return None
    ranked = sorted(earlier)
    if count > ranked[-1]:
        return "> max of last 50"
    if count > ranked[math.ceil(0.9 * len(ranked)) - 1]:
        return "> p90 of last 50"
    return "<= p90 of last 50"


@dataclass(slots=True)
class Bucket:
    prints: int = 0
    lags: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    followed: int = 0  # prints followed within FOLLOW_MS by a fill of ours on the hit side
    fill_contracts: int = 0
    fill_edge: float = 0.0  # cents x contracts against the fair value at the fill
    fill_edge_10s: float = 0.0  # ... against the fair value 10 s later
    same_tick_contracts: int = 0  # ours taken in the print itself
    fill_edge_mid: float = 0.0  # ... against the others' mid 10 s later (what a bot can score)
    drift: list[float] = field(default_factory=list)  # sign x (mid 10 s later - mid at 0 s)
    next_same: int = 0  # the market's next print (within 10 s) was on the same side
    next_any: int = 0


def measure(
    scenario: str, seeds: list[int], hours: float, params: QuotingParams | None = None
) -> dict[str, Bucket]:
    buckets: dict[str, Bucket] = defaultdict(Bucket)
    for seed in seeds:
        spec = BacktestSpec(
            load_scenario(scenario),
            seed=seed,
            hours=hours,
            strategies=("dora",),
            dora_params=params,
        )
        runner = _Recording(spec)
        runner.run()
        exchange = runner.world.exchange
        informed_ids = {f.trade_id for f in exchange.accounts[INFORMED_KEY].fills if f.is_taker}
        tape = runner.tape
        ours: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # ms, signed qty, price
        for fill in runner.fills:
            ours[fill.ticker].append((fill.ms, fill.signed_count // COUNT_SCALE, fill.price))
        history: dict[str, list[int]] = defaultdict(list)
        tape_prints = prints_of(exchange.trades, informed_ids)
        next_sign: dict[int, int | None] = {}
        last_of: dict[str, int] = {}
        for index, p in enumerate(tape_prints):
            prev = last_of.get(p.ticker)
            if prev is not None and p.ms - tape_prints[prev].ms <= 10_000:
                next_sign[prev] = p.sign
            last_of[p.ticker] = index
        for index, p in enumerate(tape_prints):
            earlier = history[p.ticker][-RELATIVE_WINDOW:]
            history[p.ticker].append(p.count)
            names = [
                f"size {_size_bucket(p.count)}",
                "taker " + ("informed" if p.informed else "noise"),
            ]
            names += _ratio_buckets(p.count, earlier)
            relative = _relative_bucket(p.count, earlier)
            if relative is not None:
                names.append(relative)
                names.append(f"{relative}, size {_size_bucket(p.count)}")
            times, mids = runner.mids[p.ticker]
            values: dict[int, float] = {}
            for lag in LAGS_MS:
                i = bisect_left(times, p.ms + lag)
                if i < len(times) and mids[i] is not None:
                    mid = mids[i] / 2
                    values[lag] = p.sign * (tape.at(p.ticker, times[i]) - mid) / CENT
            i0, i10 = bisect_left(times, p.ms), bisect_left(times, p.ms + 10_000)
            drift = None
            if i10 < len(times) and mids[i0] is not None and mids[i10] is not None:
                drift = p.sign * (mids[i10] - mids[i0]) / 2 / CENT  # type: ignore[operator]
            fills = ours[p.ticker]
            lo = bisect_right(fills, (p.ms, 10**18, 0))
            hi = bisect_right(fills, (p.ms + FOLLOW_MS, 10**18, 0))
            same = [f for f in fills[bisect_left(fills, (p.ms, -(10**18), 0)) : lo]]
            after = [f for f in fills[lo:hi] if f[1] * p.sign < 0]  # we sold to a buyer, ...
            for name in ["all", *names]:
                b = buckets[name]
                b.prints += 1
                for lag, v in values.items():
                    b.lags[lag].append(v)
                b.same_tick_contracts += sum(abs(q) for _, q, _ in same if q * p.sign < 0)
                if after:
                    b.followed += 1
                if drift is not None:
                    b.drift.append(drift)
                if index in next_sign:
                    b.next_any += 1
                    b.next_same += next_sign[index] == p.sign
                for ms, qty, price in after:
                    b.fill_contracts += abs(qty)
                    b.fill_edge += qty * (tape.at(p.ticker, ms) - price) / CENT
                    b.fill_edge_10s += qty * (tape.at(p.ticker, ms + 10_000) - price) / CENT
                    j = min(bisect_left(times, ms + 10_000), len(times) - 1)
                    later = mids[j]
                    if later is not None:
                        b.fill_edge_mid += qty * (later / 2 - price) / CENT
    return buckets


def _mean_ci(values: list[float]) -> str:
    n = len(values)
    if n < 2:
        return f"n={n}"
    half = 1.96 * statistics.stdev(values) / math.sqrt(n)
    return f"{statistics.fmean(values):+.2f}±{half:.2f}"


def report(scenario: str, seeds: list[int], buckets: dict[str, Bucket]) -> list[str]:
    lags = " | ".join(f"{lag / 1000:g} s" for lag in LAGS_MS)
    lines = [
        f"{scenario} seeds {seeds[0]}-{seeds[-1]}: sign x (fair - others' mid), c (mean ± 95 %)",
        f"| bucket | prints | {lags} | followed ≤ 4 s | our fills c | edge c/contract | "
        "edge 10 s later | edge vs mid 10 s | ours in the print | mid drift 0-10 s | "
        "next print same side |",
        "|---" * (11 + len(LAGS_MS)) + "|",
    ]
    for name in sorted(buckets, key=lambda n: (n != "all", n)):
        b = buckets[name]
        cells = " | ".join(_mean_ci(b.lags[lag]) for lag in LAGS_MS)
        per = b.fill_contracts or 1
        lines.append(
            f"| {name} | {b.prints} | {cells} | {b.followed / max(1, b.prints):.1%} | {b.fill_contracts} "
            f"| {b.fill_edge / per:+.2f} | {b.fill_edge_10s / per:+.2f} "
            f"| {b.fill_edge_mid / per:+.2f} | {b.same_tick_contracts} | {_mean_ci(b.drift)} "
            f"| {b.next_same / max(1, b.next_any):.0%} |"
        )
    return lines


def main(argv: list[str]) -> None:
    low, _, high = argv[1].partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    hours = float(argv[2]) if len(argv) > 2 else 0.5
    knobs = dict(parse_override(k) for k in argv[3:])  # dora with NAME=VALUE knobs (bench.ab's)
    params = replace(QuotingParams(), **knobs) if knobs else None
    print("\n".join(report(argv[0], seeds, measure(argv[0], seeds, hours, params))))


if __name__ == "__main__":
    main(sys.argv[1:])
