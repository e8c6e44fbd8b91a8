"""Strategy quality (``make bench`` item 5): the backtest table over every scenario.

Run: ``python -m bench.bench_strategy [--hours H] [--seeds 1,2,3,4,5,6] [--jobs N]``.
Backtests dora, ``naive`` and ``avellaneda_stoikov`` on every scenario in ``sim/scenarios`` for
each seed (each strategy in its own world from the same scenario and seed), writes every run
plus the mean over seeds to ``bench/results-strategy.json`` and prints the markdown table of the
means. Six seeds by default: near_expiry's settlements and news_jumps' jumps moved three-seed
means by several dollars from one seed set to the next.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from sim.backtest import BacktestSpec, run_backtest
from sim.backtest.report import COLUMNS, markdown_table, result_json
from sim.scenario import available_scenarios, load_scenario

RESULTS = Path(__file__).parent / "results-strategy.json"
DEFAULT_SEEDS = (1, 2, 3, 4, 5, 6)


def run_one(job: tuple[str, int, float]) -> dict[str, Any]:
    scenario, seed, hours = job
    return result_json(run_backtest(BacktestSpec(load_scenario(scenario), seed=seed, hours=hours)))


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


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [(name, seed, args.hours) for name in available_scenarios() for seed in seeds]
    started = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        runs = list(pool.map(run_one, jobs))
    rows = mean_rows(runs)
    table = markdown_table(rows)
    goals = {}
    for scenario in available_scenarios():
        by_name = {name: Decimal(d["net_pnl_dollars"]) for s, name, d in rows if s == scenario}
        goals[scenario] = {
            "dora_net_pnl_positive": by_name["dora"] > 0,
            "dora_beats_naive": by_name["dora"] > by_name["naive"],
            "dora_beats_avellaneda_stoikov": by_name["dora"] > by_name["avellaneda_stoikov"],
        }
    out = {
        "hours": args.hours,
        "seeds": seeds,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "mean_over_seeds": [{"scenario": s, "strategy": n, **d} for s, n, d in rows],
        "goals": goals,
        "runs": runs,
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(table)
    print(f"\nmean over seeds {seeds}, {args.hours:g} h each: {out['elapsed_s']} s")
    return table


if __name__ == "__main__":
    main()
