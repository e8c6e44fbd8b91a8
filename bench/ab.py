"""Paired A/B of one change to dora's quoting knobs: dora with the change against dora without.

Run: ``python -m bench.ab --scenarios finance,sports_live --seeds 1-20
--set tox_touch_join=true [--set NAME=VALUE ...] [--jobs 2] [--cache FILE]``.
Each (scenario, seed) is backtested as ``bench.bench_strategy`` runs it (0.5 h, 6 markets,
net PnL after fees) for dora with the ``QuotingParams`` overrides, dora with the shipped
defaults, and the naive rule, each in its own world from the same seed (paired). Per scenario it
prints the means, with - without and with - naive with a 95 % t-interval (``bench.stats``) and
the seeds ahead, the mean max drawdown, and the same pairs for the expected edge (spread
captured against the hidden fair value, less fees: net PnL without the settlement's luck).
``--cache`` keeps every run's numbers in a JSON file keyed by scenario, seed, hours and knobs,
so the runs without the change are made once.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.bench_strategy import DEFAULT_HOURS, seed_range
from bench.stats import paired_diff
from common.quoting_params import QuotingParams
from sim.backtest import BacktestSpec, run_backtest
from sim.backtest.report import result_json
from sim.scenario import load_scenario

Job = tuple[str, int, float, str, tuple[tuple[str, Any], ...]]  # scenario, seed, h, name, knobs


def parse_override(text: str) -> tuple[str, Any]:
    """``name=value`` for a ``QuotingParams`` field, the value typed as the field's default."""
    name, _, raw = text.partition("=")
    default = getattr(QuotingParams(), name)  # AttributeError: no such knob
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} is a bool, not {raw!r}")
        return name, raw.lower() in ("true", "1")
    return name, type(default)(raw)


def key_of(job: Job) -> str:
    scenario, seed, hours, name, knobs = job
    return json.dumps([scenario, seed, hours, name, sorted(knobs)])


def run_one(job: Job) -> dict[str, float]:
    """One strategy's net PnL and max drawdown ($) on one scenario and seed."""
    scenario, seed, hours, name, knobs = job
    params = replace(QuotingParams(), **dict(knobs)) if knobs else None
    spec = BacktestSpec(
        load_scenario(scenario), seed=seed, hours=hours, strategies=(name,), dora_params=params
    )
    data = result_json(run_backtest(spec))["strategies"][name]
    return {
        "net": float(data["net_pnl_dollars"]),
        "dd": float(data["max_drawdown_dollars"]),
        "edge": float(data["spread_captured_dollars"]) - float(data["fees_dollars"]),
    }


def _ci(a: list[float], b: list[float]) -> str:
    d = paired_diff(a, b)
    return f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] | {d.wins}/{d.n}"


def row(scenario: str, runs: dict[str, list[dict[str, float]]]) -> str:
    """One scenario's table row from the per-seed runs of ``with``, ``without`` and ``naive``
    (each list in the same seed order)."""
    net = {k: [r["net"] for r in v] for k, v in runs.items()}
    mean = {k: sum(v) / len(v) for k, v in net.items()}
    dd = "/".join(f"{sum(r['dd'] for r in runs[k]) / len(runs[k]):.2f}" for k in net)
    edges = "- | - | - | -"  # runs cached before the edge was kept
    if all("edge" in r for v in runs.values() for r in v):
        edge = {k: [r["edge"] for r in v] for k, v in runs.items()}
        edges = f"{_ci(edge['with'], edge['without'])} | {_ci(edge['with'], edge['naive'])}"
    return (
        f"| {scenario} | {mean['with']:.2f} | {mean['without']:.2f} | {mean['naive']:.2f} "
        f"| {_ci(net['with'], net['without'])} | {_ci(net['with'], net['naive'])} | {dd} "
        f"| {edges} |"
    )


HEADER = (
    "| scenario | with $ | without $ | naive $ | with - without $ [95 % CI] | ahead "
    "| with - naive $ [95 % CI] | ahead | max DD $ with/without/naive "
    "| edge with - without $ | ahead | edge with - naive $ | ahead |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", required=True)
    parser.add_argument("--seeds", type=seed_range, required=True)
    parser.add_argument("--set", dest="knobs", action="append", type=parse_override, default=[])
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    arms = {"with": ("dora", tuple(args.knobs)), "without": ("dora", ()), "naive": ("naive", ())}
    jobs = {
        (s, seed, arm): (s, seed, args.hours, name, knobs)
        for s in scenarios
        for seed in args.seeds
        for arm, (name, knobs) in arms.items()
    }
    cache: dict[str, dict[str, float]] = {}
    if args.cache and args.cache.exists():
        cache = json.loads(args.cache.read_text())
    todo = list({key_of(j): j for j in jobs.values() if key_of(j) not in cache}.values())
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for job, result in zip(todo, pool.map(run_one, todo), strict=True):
            cache[key_of(job)] = result
    if args.cache:
        args.cache.write_text(json.dumps(cache))
    knobs = ", ".join(f"{k}={v}" for k, v in args.knobs) or "(none)"
    lines = [f"with: {knobs}; seeds {args.seeds[0]}-{args.seeds[-1]}", HEADER]
    for s in scenarios:
        runs = {arm: [cache[key_of(jobs[(s, seed, arm)])] for seed in args.seeds] for arm in arms}
        lines.append(row(s, runs))
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
