"""Strategy quality (``make bench`` item 5): paired-seed backtests of every scenario.

Run: ``python -m bench.bench_strategy [--hours H] [--jobs N] [--tuning 1-20]
[--held-out 1001-1020] [--scenarios calm,finance]``.
Backtests dora, ``naive`` and ``avellaneda_stoikov`` on every scenario in ``sim/scenarios`` for
each seed (each strategy in its own world from the same scenario and seed: the same fair-value
path and the same taker arrivals, so the seeds are *paired*). Per scenario and seed set it
reports dora - naive and dora - Avellaneda-Stoikov (net PnL after fees) as a mean with a 95 %
t-interval (``bench.stats``) and the share of seeds dora was ahead.

Two fixed seed sets: ``TUNING_SEEDS`` are the seeds dora's rules may be chosen on;
``HELD_OUT_SEEDS`` are never tuned on and are the ones a claim rests on. Everything goes to
``bench/results-strategy.json`` (the per-strategy means of every column are over the held-out
seeds); the markdown tables are printed.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.stats import paired_diff
from sim.backtest import BacktestSpec, run_backtest
from sim.backtest.report import COLUMNS, markdown_table, result_json
from sim.scenario import available_scenarios, load_scenario

RESULTS = Path(__file__).parent / "results-strategy.json"
TUNING_SEEDS = tuple(range(1, 21))  # dora's rules may be chosen on these
HELD_OUT_SEEDS = tuple(range(1001, 1021))  # never tuned on
DEFAULT_HOURS = 0.5
BASELINES = ("naive", "avellaneda_stoikov")


def run_one(job: tuple[str, int, float]) -> dict[str, Any]:
    """One backtest of the three strategies, the columns of the tables only."""
    scenario, seed, hours = job
    data = result_json(run_backtest(BacktestSpec(load_scenario(scenario), seed=seed, hours=hours)))
    return {
        "scenario": scenario,
        "seed": seed,
        "hours": hours,
        "strategies": {
            name: {key: strategy[key] for _, key in COLUMNS}
            for name, strategy in data["strategies"].items()
        },
    }


def mean_rows(runs: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """Per (scenario, strategy): the mean of each table column over the seeds."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        for name, data in run["strategies"].items():
            grouped.setdefault((run["scenario"], name), []).append(data)
    rows = []
    for (scenario, name), items in grouped.items():
        mean: dict[str, Any] = {}
        for _, key in COLUMNS:
            total = sum(Decimal(str(item[key])) for item in items)
            value = total / len(items)
            mean[key] = str(value) if isinstance(items[0][key], str) else round(value)
        rows.append((scenario, name, mean))
    return rows


def net(runs: list[dict[str, Any]], strategy: str) -> list[float]:
    """Net PnL in dollars per run, in the runs' (seed) order."""
    return [float(run["strategies"][strategy]["net_pnl_dollars"]) for run in runs]


def paired(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """dora against each baseline over the paired seeds of one scenario and seed set."""
    runs = sorted(runs, key=lambda r: r["seed"])
    pnl = {name: net(runs, name) for name in ("dora", *BASELINES)}
    out: dict[str, Any] = {
        "seeds": [r["seed"] for r in runs],
        "mean_net_pnl_dollars": {n: round(sum(v) / len(v), 4) for n, v in pnl.items()},
    }
    for baseline in BASELINES:
        out[f"dora_minus_{baseline}"] = paired_diff(pnl["dora"], pnl[baseline]).as_json()
    return out


def _interval(diff: dict[str, Any]) -> str:
    return f"{diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}]"


def paired_table(stats: dict[str, dict[str, Any]]) -> str:
    header = (
        "| scenario | seeds | dora $ | naive $ | A-S $ | dora - naive $ [95 % CI] | ahead | "
        "dora - A-S $ [95 % CI] | ahead |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for scenario, by_set in stats.items():
        for label, key in (("tuning", "tuning"), ("held out", "held_out")):
            s = by_set.get(key)
            if not s:
                continue
            means = s["mean_net_pnl_dollars"]
            naive, a_s = s["dora_minus_naive"], s["dora_minus_avellaneda_stoikov"]
            lines.append(
                f"| {scenario} | {label} {s['seeds'][0]}-{s['seeds'][-1]} | {means['dora']:.2f} "
                f"| {means['naive']:.2f} | {means['avellaneda_stoikov']:.2f} | {_interval(naive)} "
                f"| {naive['wins']}/{naive['n']} | {_interval(a_s)} | {a_s['wins']}/{a_s['n']} |"
            )
    return "\n".join(lines)


def markdown_of(out: dict[str, Any]) -> str:
    """The tables of one run's results (what ``main`` printed), from its JSON."""
    held = set(out["held_out_seeds"])
    rows = mean_rows([r for r in out["runs"] if r["seed"] in held] or out["runs"])
    return (
        paired_table(out["paired"])
        + "\n\nMean over the held-out seeds, every column:\n\n"
        + markdown_table(rows)
    )


def seed_range(text: str) -> tuple[int, ...]:
    """``1-20`` or ``1,2,5``."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return tuple(range(first, last + 1))
    return tuple(int(part) for part in text.split(",") if part)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS)
    parser.add_argument("--tuning", type=seed_range, default=TUNING_SEEDS)
    parser.add_argument("--held-out", type=seed_range, default=HELD_OUT_SEEDS)
    parser.add_argument("--scenarios", default=",".join(available_scenarios()))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    sets = {"tuning": tuple(args.tuning), "held_out": tuple(args.held_out)}
    seeds = [*sets["tuning"], *sets["held_out"]]
    jobs = [(name, seed, args.hours) for name in scenarios for seed in seeds]
    started = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        runs = list(pool.map(run_one, jobs))
    stats: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        for key, members in sets.items():
            chosen = [r for r in runs if r["scenario"] == scenario and r["seed"] in members]
            if len(chosen) >= 2:
                stats.setdefault(scenario, {})[key] = paired(chosen)
    held_out = [r for r in runs if r["seed"] in sets["held_out"]] or runs
    rows = mean_rows(held_out)
    goals = {}
    for scenario, by_set in stats.items():
        judged = by_set.get("held_out") or by_set["tuning"]
        means = judged["mean_net_pnl_dollars"]
        goals[scenario] = {
            "dora_net_pnl_positive": means["dora"] > 0,
            "dora_beats_naive": judged["dora_minus_naive"]["mean"] > 0,
            "dora_beats_avellaneda_stoikov": judged["dora_minus_avellaneda_stoikov"]["mean"] > 0,
            "dora_beats_naive_95": judged["dora_minus_naive"]["low"] > 0,
            "dora_beats_avellaneda_stoikov_95": judged["dora_minus_avellaneda_stoikov"]["low"] > 0,
            "naive_net_pnl_negative": means["naive"] < 0,
        }
    elapsed = round(time.perf_counter() - started, 1)
    out = {
        "hours": args.hours,
        "seeds": seeds,
        "tuning_seeds": list(sets["tuning"]),
        "held_out_seeds": list(sets["held_out"]),
        "elapsed_s": elapsed,
        "mean_over_seeds": [{"scenario": s, "strategy": n, **d} for s, n, d in rows],
        "paired": stats,
        "goals": goals,
        "runs": runs,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    markdown = markdown_of(out)
    print(markdown)
    print(f"\n{len(jobs)} backtests of {args.hours:g} h, {elapsed} s with {args.jobs} jobs")
    return markdown


if __name__ == "__main__":
    main()
