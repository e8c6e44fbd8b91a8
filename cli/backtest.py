"""``dora backtest``: the live quoting, diff and risk code against the simulator on a virtual clock.

Runs dora and the two baselines (``naive``, ``avellaneda_stoikov``), each in its own simulated
world from the same scenario and seed, and prints a markdown table of the results. ``--json
FILE`` writes the full results (``--json -`` prints them to stdout instead of the table),
``--plot FILE`` a PNG. See docs/backtest.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from cli.main import CliError
from cli.support import check_output_file, write_output_file
from common.errors import ConfigError

HELP = "evaluate the strategy and two baselines on a simulated scenario (virtual clock)"
MAX_HOURS = 1_000.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", required=True, help="scenario name (calm, trending, ...) or JSON file path"
    )
    parser.add_argument("--hours", type=float, default=1.0, help="virtual hours (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the flow agents (default 0)")
    parser.add_argument(
        "--strategy",
        help="run only this one: dora, naive or avellaneda_stoikov (default: all three)",
    )
    parser.add_argument("--markets", type=int, default=6, help="number of markets (default 6)")
    parser.add_argument(
        "--latency-ms", type=int, default=50, help="order latency in virtual ms (default 50)"
    )
    parser.add_argument("--json", help="write the results as JSON here ('-' = stdout)")
    parser.add_argument("--plot", type=Path, help="write a PNG plot here")


def _validate(args: argparse.Namespace) -> tuple[str, ...]:
    from sim.backtest.strategies import STRATEGY_NAMES

    if not math.isfinite(args.hours) or args.hours <= 0 or args.hours > MAX_HOURS:
        raise CliError(f"--hours must be > 0 and <= {MAX_HOURS:g}, was {args.hours:g}")
    if not 1 <= args.markets <= 200:
        raise CliError(f"--markets must be 1-200, was {args.markets}")
    if not 0 <= args.latency_ms <= 60_000:
        raise CliError(f"--latency-ms must be 0-60000, was {args.latency_ms}")
    if args.strategy is None:
        return STRATEGY_NAMES
    if args.strategy not in STRATEGY_NAMES:
        raise CliError(f"unknown strategy {args.strategy!r}; known: {', '.join(STRATEGY_NAMES)}")
    return (args.strategy,)


def run(args: argparse.Namespace) -> int:
    from sim.backtest import BacktestSpec, run_backtest
    from sim.backtest.report import result_json, summary_table, write_plot
    from sim.scenario import load_scenario

    strategies = _validate(args)
    try:
        scenario = load_scenario(args.scenario)
    except ConfigError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    if args.plot is not None:
        check_output_file("--plot", args.plot)
    if args.json not in (None, "-"):
        check_output_file("--json", Path(args.json))
    spec = BacktestSpec(
        scenario,
        seed=args.seed,
        hours=args.hours,
        strategies=strategies,
        n_markets=args.markets,
        latency_ms=args.latency_ms,
    )
    started = time.perf_counter()
    result = run_backtest(spec)
    elapsed = time.perf_counter() - started
    data = result_json(result)
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
    else:
        print(summary_table(result))
        print(
            f"\n{scenario.name}, seed {args.seed}, {args.hours:g} h of market, "
            f"{len(result.tickers)} markets: {elapsed:.1f} s"
        )
        if args.json:
            write_output_file("--json", Path(args.json), text)
    if args.plot is not None:
        try:
            write_plot(result, args.plot)
        except OSError as exc:
            raise CliError(f"--plot: cannot write {args.plot}: {exc.strerror or exc}") from None
    return 0
