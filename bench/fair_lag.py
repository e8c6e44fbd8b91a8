"""How far the sim makers' mid sits from the hidden fair value: session 17's diagnostic.

Run: ``python -m bench.fair_lag near_expiry 1-8 [hours]``. It steps a ``sim.world.World`` (6
markets, no strategy in it) one agent tick at a time and, for every trading market with a
two-sided book, compares the makers' mid with the hidden fair value (``World.fair_value``, which
a live bot never sees: this is for choosing a rule, not a rule). It prints, in cents:
- fair - mid by the **mid's** 10 c bucket and the time to close (what a rule could condition
  on: E[fair | mid], not E[mid | fair]);
- after each hidden news jump, sign x (fair - mid) and sign x (mid - mid before) k ticks
  later: how long the others' mid lags the news;
- after each move of the mid of at least 2 c within 1 s (what a bot sees), sign x (fair - mid)
  k ticks later: whether a seen move says the mid has further to go.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict

from common.numbers import ONE_DOLLAR
from sim.world import DEFAULT_START_MS, World

CENT = ONE_DOLLAR / 100
LAGS = (0, 1, 2, 4, 8, 16, 40)  # agent ticks after the event
MOVE_CENTS = 2.0  # a seen move: the mid this far from where it was 4 ticks before


def _bucket(minutes: float) -> str:
    for top, name in ((1, "<1"), (2, "1-2"), (5, "2-5"), (10, "5-10")):
        if minutes < top:
            return name
    return ">10"


def _stats(values: list[float]) -> str:
    n = len(values)
    if n < 2:
        return f"n={n}"
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return f"n={n:6d} mean={mean:+.2f} c sd={sd:.2f}"


def measure(scenario: str, seeds: list[int], hours: float) -> list[str]:
    by_mid: dict[tuple[int, str], list[float]] = defaultdict(list)
    after_jump: dict[int, list[tuple[float, float]]] = defaultdict(list)
    after_move: dict[int, list[float]] = defaultdict(list)
    for seed in seeds:
        world = World(scenario, seed=seed, n_markets=6)
        assert world.agents is not None
        seen: dict[str, list[tuple[float, float]]] = {t: [] for t in world.tickers}
        jumps: list[tuple[str, int]] = []
        moves: list[tuple[str, int, int]] = []
        now, end = DEFAULT_START_MS, DEFAULT_START_MS + int(hours * 3_600_000)
        while now < end:
            now += world.tick_ms
            world.step_to(now)
            for ticker in world.tickers:
                market = world.exchange.markets[ticker]
                book = world.exchange.books[ticker]
                bid, ask = book.best_bid(), book.best_ask()
                if not market.is_trading or bid is None or ask is None:
                    continue
                mid = (bid.price + ask.price) / 2 / CENT
                fair = world.fair_value(ticker) * 100
                history = seen[ticker]
                history.append((mid, fair))
                left = (market.close_ms - now) / 60_000
                by_mid[(min(int(mid // 10), 9), _bucket(left))].append(fair - mid)
                if world.agents.event_of[ticker].jumped and len(history) > 1:
                    jumps.append((ticker, len(history) - 1))
                if len(history) > 4 and abs(mid - history[-5][0]) >= MOVE_CENTS:
                    last = moves[-1] if moves else None
                    if not (last and last[0] == ticker and len(history) - 1 - last[1] < 8):
                        moves.append((ticker, len(history) - 1, 1 if mid > history[-5][0] else -1))
        for ticker, i in jumps:
            history = seen[ticker]
            sign = 1 if history[i][1] > history[i - 1][1] else -1
            for k in LAGS:
                if i + k < len(history):
                    mid, fair = history[i + k]
                    after_jump[k].append((sign * (fair - mid), sign * (mid - history[i - 1][0])))
        for ticker, i, sign in moves:
            history = seen[ticker]
            for k in LAGS:
                if i + k < len(history):
                    after_move[k].append(sign * (history[i + k][1] - history[i + k][0]))
    lines = [f"{scenario} seeds {seeds[0]}-{seeds[-1]}: fair - mid by mid bucket, time to close"]
    lines += [
        f"  {10 * b:2d}-{10 * b + 10} c, {left} min: {_stats(v)}"
        for (b, left), v in sorted(by_mid.items())
    ]
    lines.append("after a hidden jump, k ticks: sign x (fair - mid) | sign x (mid - mid before)")
    for k, pairs in sorted(after_jump.items()):
        lines.append(f"  {k:3d}: {_stats([a for a, _ in pairs])} | {_stats([b for _, b in pairs])}")
    lines.append(f"after a seen move of >= {MOVE_CENTS} c in 1 s, k ticks: sign x (fair - mid)")
    lines += [f"  {k:3d}: {_stats(v)}" for k, v in sorted(after_move.items())]
    return lines


def main(argv: list[str]) -> None:
    low, _, high = argv[1].partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    print("\n".join(measure(argv[0], seeds, float(argv[2]) if len(argv) > 2 else 0.5)))


if __name__ == "__main__":
    main(sys.argv[1:])
