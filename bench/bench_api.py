"""API efficiency (issue 8, item 3): write tokens per 1,000 book updates, dora's executor (amend in
place, decrease, keep an order up to one tick behind its target) against a naive cancel/replace
executor, with the same quoting and the same simulated flow. A book update is a change of the
other participants' top two levels (our own orders left out, so neither executor's writes count
toward its own denominator); the raw token totals of the two runs are compared too.
``python -m bench.bench_api`` writes bench/results-api.json."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from common.numbers import format_money
from sim.backtest.engine import BacktestSpec, run_backtest
from sim.scenario import available_scenarios, load_scenario

RESULTS = Path(__file__).resolve().parent / "results-api.json"


def measure(scenario: str, seed: int = 1, hours: float = 0.5) -> dict[str, Any]:
    spec = BacktestSpec(load_scenario(scenario), seed=seed, hours=hours, strategies=("dora",))
    out: dict[str, Any] = {"scenario": scenario, "seed": seed, "hours": hours}
    for executor in ("diff", "cancel_replace"):
        run = run_backtest(replace(spec, executor=executor)).runs["dora"]
        updates = max(1, run.counts["book_updates"])
        out[executor] = {
            "write_tokens": run.write_tokens,
            "book_updates": run.counts["book_updates"],
            "tokens_per_1000_updates": round(1000 * run.write_tokens / updates, 1),
            "net_pnl_dollars": format_money(run.summary.net_pnl),
            "counts": run.counts,
        }
    naive = out["cancel_replace"]["tokens_per_1000_updates"]
    out["reduction_pct"] = (
        round(100 * (1 - out["diff"]["tokens_per_1000_updates"] / naive), 1) if naive else None
    )
    raw = out["cancel_replace"]["write_tokens"]
    out["raw_reduction_pct"] = (
        round(100 * (1 - out["diff"]["write_tokens"] / raw), 1) if raw else None
    )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    rows = [measure(name) for name in available_scenarios()]
    result = {"rows": rows, "goal": ">= 50% fewer write tokens than the naive executor"}
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    for row in rows:
        print(
            f"{row['scenario']:12} dora {row['diff']['tokens_per_1000_updates']:8} naive "
            f"{row['cancel_replace']['tokens_per_1000_updates']:8} tokens/1k updates: "
            f"{row['reduction_pct']}% fewer",
            file=sys.stderr,
        )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
