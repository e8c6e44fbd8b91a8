"""The report of ``make bench``: the tables of ``docs/performance.md`` from ``bench/results.json``."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PERF_DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
LIMITS_HEADING = "## What limits these numbers"
TICK_TO_ORDER_HEADING = "## Tick-to-order: what was changed, before and after"
HAND_WRITTEN_HEADINGS = (TICK_TO_ORDER_HEADING, "## The REST client", LIMITS_HEADING)
STAGE_NAMES = {
    "marketdata": "marketdata: frame received -> book published",
    "md_hop": "Redis hop: published -> strategy reads it",
    "strategy": "strategy: read -> targets published",
    "targets_hop": "Redis hop: published -> executor reads them",
    "executor": "executor: read -> order request sent",
}


def ratio(lat: dict[str, Any], p: str) -> str:
    """dora's percentile over the floor's, e.g. "2.3x"."""
    floor = lat.get(f"floor_{p}_ms") or 0
    return f"{lat[f'{p}_ms'] / floor:.1f}x" if floor else "n/a"


def floor_note(lat: dict[str, Any]) -> str:
    per_s = lat.get("floor_per_s")
    relays = "3 relay processes, each leading a session of its own as each of dora's does"
    return f"{per_s} messages/s through {relays}" if per_s else relays


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table, then a blank line."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*out, ""]


SECTIONS = (
    ("latency", "latency"),
    ("throughput", "throughput"),
    ("throughput_cluster", "cluster throughput"),
    ("throughput_dynamo_paused", "throughput with DynamoDB paused"),
    ("recovery", "recovery"),
    ("api", "API efficiency"),
    ("strategy", "strategy"),
)


def runs_line(results: dict[str, Any]) -> str:
    """When each part was measured: a partial run (``python -m bench.run latency``) re-measures
    its parts and keeps the others' numbers, so one date for the page would not be true."""
    default = results["machine"]["date"]
    parts = [
        f"{name} {(results[key] or {}).get('measured_at', default)}"
        for key, name in SECTIONS
        if isinstance(results.get(key), dict)
    ]
    return "Each part's run: " + ", ".join(parts) + "." if parts else ""


def write_doc(results: dict[str, Any]) -> None:
    lines = [
        "# Performance",
        "",
        f"Measured by `make bench` ({results['machine']['cpus']} cores, Python "
        f"{results['machine']['python']}; `bench/results.json`). {runs_line(results)}",
        "",
    ]
    lat = results.get("latency")
    if lat:
        lines += [
            "## Tick-to-order latency (100 markets, goal p50 and p99 <= 2x the floor's, same run)",
            "",
            f"The floor is measured during the same seconds as dora's samples ({floor_note(lat)}); "
            f"dora is {ratio(lat, 'p50')} the floor at p50 and {ratio(lat, 'p99')} at p99"
            + (", on uvloop's event loop." if lat.get("uvloop") else "."),
            "",
        ]
        lines += table(
            ["", "p50 ms", "p99 ms", "max ms", "samples"],
            [
                (
                    "WS frame -> order request sent",
                    lat["p50_ms"],
                    lat["p99_ms"],
                    lat["max_ms"],
                    lat["samples"],
                ),
                (
                    "floor: 3 Redis stream hops between processes",
                    lat["floor_p50_ms"],
                    lat["floor_p99_ms"],
                    "",
                    lat["floor_samples"],
                ),
            ],
        )
        if lat.get("stages"):
            lines += [
                "Where the time goes (each stage's own percentiles, so they do not add up):",
                "",
            ]
            lines += table(
                ["stage", "p50 ms", "p99 ms"],
                [
                    (STAGE_NAMES.get(name, name), v["p50_ms"], v["p99_ms"])
                    for name, v in lat["stages"].items()
                ],
            )
    for part in ("throughput", "throughput_cluster", "throughput_dynamo_paused"):
        lines += throughput_section(results.get(part))
    rec = results.get("recovery")
    if rec:
        lines += ["## Recovery (goal <= 3 s)", "", rec["definition"] + ".", ""]
        lines += table(["process", "seconds"], rec["seconds"].items())
    api = results.get("api")
    if api:
        lines += [
            "## API efficiency (goal >= 50% fewer write tokens than a naive cancel/replace executor)",
            "",
            "Backtests, same quoting and same flow (30 min, seed 1); a book update is a change of the "
            "other participants' top two levels. Raw: the two runs' total write tokens.",
            "",
        ]
        lines += table(
            [
                "scenario",
                "dora tokens / 1k updates",
                "naive tokens / 1k updates",
                "fewer",
                "fewer (raw)",
            ],
            [
                (
                    r["scenario"],
                    r["diff"]["tokens_per_1000_updates"],
                    r["cancel_replace"]["tokens_per_1000_updates"],
                    f"{r['reduction_pct']}%",
                    f"{r.get('raw_reduction_pct', '')}%",
                )
                for r in api["rows"]
            ],
        )
    strategy = results.get("strategy")
    if strategy and strategy.get("markdown"):
        lines += [
            "## Strategy quality (paired-seed backtests; goal: dora ahead of both baselines "
            "with the 95 % interval above zero on held-out seeds)",
            "",
            strategy_note(strategy),
            "",
            strategy["markdown"],
            "",
        ]
    lines += goal_table(results)
    # Everything from the first hand-written section on (the REST client's bench, which make
    # bench does not run, then "## What limits these numbers") is kept as it is.
    old = PERF_DOC.read_text() if PERF_DOC.exists() else ""
    starts = [old.index(h) for h in HAND_WRITTEN_HEADINGS if h in old]
    kept = old[min(starts) :] if starts else LIMITS_HEADING + "\n"
    PERF_DOC.write_text("\n".join(lines) + "\n" + kept)


def strategy_goals(goals: dict[str, dict[str, bool]]) -> list[tuple[str, str, str]]:
    """Issue #21's goals on the held-out seeds."""
    behind = {
        name: [
            label
            for label, key in (
                ("naive", "dora_beats_naive_95"),
                ("A-S", "dora_beats_avellaneda_stoikov_95"),
            )
            if not g.get(key, g.get(key.removesuffix("_95"), False))
        ]
        for name, g in goals.items()
    }
    lagging = [f"{name} ({', '.join(b)})" for name, b in behind.items() if b]
    naive_loses = [name for name, g in goals.items() if g.get("naive_net_pnl_negative")]
    positive_there = [name for name in naive_loses if goals[name]["dora_net_pnl_positive"]]
    return [
        (
            "dora ahead of naive and A-S, 95 % interval above 0 (held out)",
            "not on " + "; ".join(lagging) if lagging else "on every scenario",
            "no" if lagging else "yes",
        ),
        (
            "dora positive where naive loses (held out)",
            f"naive loses on {', '.join(naive_loses) or 'no scenario'}; "
            f"dora positive on {', '.join(positive_there) or 'none of them'}",
            "yes" if positive_there else "no",
        ),
    ]


def strategy_note(strategy: dict[str, Any]) -> str:
    tuning, held = strategy.get("tuning_seeds") or [], strategy.get("held_out_seeds") or []
    seeds = (
        f"tuning seeds {tuning[0]}-{tuning[-1]} (dora's rules may be chosen on them), held-out "
        f"seeds {held[0]}-{held[-1]} (never tuned on)"
        if tuning and held
        else f"seeds {strategy.get('seeds')}"
    )
    when = strategy.get("measured_at")
    return (
        (f"Measured on {when} (the strategy part of `make bench`). " if when else "")
        + f"{strategy.get('hours', 1):g} h of 6 markets per backtest, {seeds}; each seed runs "
        "dora, naive and Avellaneda-Stoikov on the same fair-value path and takers, so the "
        "differences are paired. Mean difference of net PnL after fees with its 95 % t-interval "
        "and on how many seeds dora was ahead "
        f"({strategy.get('elapsed_s')} s with 2 jobs)."
    )


def throughput_section(thr: dict[str, Any] | None) -> list[str]:
    if not thr:
        return []
    if thr.get("cluster"):
        single = thr.get("single_max_kept_up_deltas_per_s")
        lines = [
            f"### The same on a Redis Cluster with {thr.get('shards', 2)} shards "
            f"({thr['markets']} markets, same run)",
            "",
            "Three masters with one replica each (a local `redis-cli --cluster create`), keys "
            "hash-tagged per shard (docs/redis.md), and two strategy/executor pairs each under its "
            "own supervisord, every process still on this one 2-core machine; a lag is the worse "
            "of the two shards'. Highest churn kept up: "
            f"{thr['max_kept_up_deltas_per_s']:,}/s on the cluster"
            + (f" against {single:,}/s on one Redis" if single is not None else "")
            + top_note(thr)
            + ". Why the ceiling moves (or not) is under 'What limits these numbers'.",
            "",
        ]
    elif thr.get("dynamo_paused"):
        lines = [
            f"### The same with DynamoDB off the box ({thr['markets']} markets)",
            "",
            "In production DynamoDB is another machine; here its stand-in (moto) shares the 2 "
            "cores. In this run moto is stopped (SIGSTOP) during each step: the persister keeps "
            "the trade log, decisions and fills in Redis and writes them once moto is back, "
            "before the next step. So neither moto nor the persister's own writing loads the "
            "box while a step is measured.",
            "",
        ]
        first = thr.get("first_attempt")
        if first and thr.get("run_at"):
            stopped = first["steps"][-1]
            lines[-1:-1] = [
                "",
                f"Re-run alone at {thr['run_at']} (`python -m bench.run "
                "throughput_dynamo_paused`): in the full run this part stopped at "
                f"{stopped['target_deltas_per_s']:,}/s (worst backlog "
                f"{stopped.get('ws_backlog')} msgs, targets lag {stopped.get('targets_lag_ms')} "
                "ms); both attempts are in `bench/results.json`.",
            ]
    else:
        lines = [
            f"## Throughput ({thr['markets']} markets, goal >= 3,000 book updates/s)",
            "",
            "md and targets lag: how long the oldest entry of each read waited in its stream "
            "(written -> read by the strategy / executor; the newest of a batch looks fresh "
            "even when the consumer is behind); "
            "backlog: messages the simulator has queued for a socket but not yet written (a slow "
            "marketdata backs it up); worst over each 15 s step. Kept up: both lags under 100 ms "
            "and the backlog under 100 ms worth of messages. Feed lag (exchange timestamp of the "
            "newest delta -> its book published) is shown but not judged; sim age is the part of "
            "it spent inside the simulator (exchange timestamp -> the delta written to dora's "
            "socket, its tick granularity and agent steps included), so feed lag minus sim age "
            "is the kernel's and marketdata's share.",
            "",
            *churn_note(thr),
        ]
    lines += table(
        [
            "churn target/s",
            "churn achieved/s",
            "all book updates/s",
            "WS msgs/s",
            "backlog msgs",
            "feed lag ms",
            "sim age ms",
            "md lag ms",
            "targets lag ms",
            "kept up",
        ],
        [
            (
                s["target_deltas_per_s"],
                s["load_deltas_per_s"],
                s.get("book_updates_per_s", ""),
                s["ws_messages_per_s"],
                s.get("ws_backlog", ""),
                s.get("feed_lag_ms", ""),
                s.get("sim_delta_age_ms", ""),
                s.get("md_lag_ms"),
                s.get("targets_lag_ms"),
                "yes" if s["kept_up"] else "no",
            )
            for s in thr["steps"]
        ],
    )
    last = thr["steps"][-1]["usage"] if thr["steps"] else {}
    lines += ["CPU and RSS per process at the last step:", ""]
    lines += table(
        ["process", "CPU %", "RSS MB"],
        [(n, u["cpu_pct"], u["rss_mb"]) for n, u in sorted(last.items())],
    )
    return lines


def churn_note(thr: dict[str, Any]) -> list[str]:
    touch = thr.get("touch_pct")
    if touch is None:
        return []
    return [
        f"The churn: {touch} % of its orders join the best bid or ask (a change of the top "
        "level's size, which the strategy has to look at), the rest rest deep (1-5 / 95-99 "
        "cents, which marketdata absorbs without waking the strategy); besides it the flow "
        "agents trade and re-quote as in the calm scenario.",
        "",
    ]


def top_note(thr: dict[str, Any]) -> str:
    return ", the top of the ladder: the limit is higher" if thr.get("top_of_ladder") else ""


def goal_table(results: dict[str, Any]) -> list[str]:
    """Each goal of the issue against this run's numbers."""
    rows: list[tuple[str, str, str]] = []
    lat = results.get("latency")
    if lat:
        met = lat["p50_ms"] <= 2 * lat["floor_p50_ms"] and lat["p99_ms"] <= 2 * lat["floor_p99_ms"]
        rows.append(
            (
                "tick-to-order p50 and p99 <= 2x the floor's",
                f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.0f} ms (three Redis hops alone: "
                f"{lat['floor_p50_ms']:.1f} / {lat['floor_p99_ms']:.1f} ms; "
                f"{ratio(lat, 'p50')} / {ratio(lat, 'p99')})",
                "yes" if met else "no",
            )
        )
    thr = results.get("throughput")
    if thr:
        kept = thr.get("max_kept_up_book_updates_per_s", 0)
        said = (
            f"kept up with {thr['max_kept_up_deltas_per_s']:,} churn deltas/s "
            f"({kept:,} book updates/s in all{top_note(thr)})"
        )
        met = "yes" if kept >= 3000 else "no"
        off_box = results.get("throughput_dynamo_paused")
        if off_box:
            kept_off = off_box.get("max_kept_up_book_updates_per_s", 0)
            said += (
                f" with moto on the box; {off_box['max_kept_up_deltas_per_s']:,} deltas/s "
                f"({kept_off:,} book updates/s{top_note(off_box)}) with DynamoDB off it"
            )
            if met == "no" and kept_off >= 3000:
                met = "only with DynamoDB off the box"
        rows.append((">= 3,000 book updates/s across 500 markets", said, met))
    api = results.get("api")
    if api:
        per = [r["reduction_pct"] for r in api["rows"]]
        raw = [r.get("raw_reduction_pct") or 0 for r in api["rows"]]
        rows.append(
            (
                ">= 50 % fewer write tokens than naive",
                f"{min(per)}-{max(per)} % per book update, {min(raw)}-{max(raw)} % in raw tokens",
                "yes" if min(per) >= 50 else "no",
            )
        )
    rec = results.get("recovery")
    if rec:
        worst = max(rec["seconds"].values())
        rows.append(
            ("recovery <= 3 s for every process", f"worst {worst} s", "yes" if worst <= 3 else "no")
        )
    goals = (results.get("strategy") or {}).get("goals")
    if goals:
        rows += strategy_goals(goals)
    if not rows:
        return []
    return ["## Goals against this run", "", *table(["goal", "this run", "met"], rows)]
