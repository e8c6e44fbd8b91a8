"""A backtest's results for people and programs: JSON, a PNG plot and a markdown table.

Money and counts stay exact integers until here; the JSON carries them as decimal strings
(dollars with 6 places, contracts with 2), never floats, so the same seed gives byte-identical
JSON. The plot is the only place floats appear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.numbers import (
    MONEY_SCALE,
    PRICE_SCALE,
    format_count,
    format_money,
)
from sim.backtest.engine import BacktestResult, StrategyRun

COLUMNS = (
    ("net PnL $", "net_pnl_dollars"),
    ("fees $", "fees_dollars"),
    ("fills", "fills"),
    ("contracts", "contracts_traded"),
    ("spread $", "spread_captured_dollars"),
    ("mk 1s $", "markout_1s_dollars"),
    ("mk 10s $", "markout_10s_dollars"),
    ("mk 60s $", "markout_60s_dollars"),
    ("max |inv|", "max_abs_inventory"),
    ("max DD $", "max_drawdown_dollars"),
    ("tokens", "write_tokens"),
)


def _dollars(money: int) -> str:
    return format_money(money, 6)


def strategy_json(run: StrategyRun) -> dict[str, Any]:
    s = run.summary
    return {
        "net_pnl_dollars": _dollars(s.net_pnl),
        "realized_pnl_dollars": _dollars(s.realized_pnl),
        "unrealized_pnl_dollars": _dollars(s.unrealized_pnl),
        "fees_dollars": _dollars(s.fees),
        "fills": s.fills,
        "maker_fills": s.maker_fills,
        "contracts_traded": format_count(s.contracts_traded),
        "volume_dollars": _dollars(s.volume),
        "spread_captured_dollars": _dollars(s.spread_captured),
        "markout_1s_dollars": _dollars(s.markouts[1_000]),
        "markout_10s_dollars": _dollars(s.markouts[10_000]),
        "markout_60s_dollars": _dollars(s.markouts[60_000]),
        "max_abs_inventory": format_count(s.max_abs_inventory),
        "max_drawdown_dollars": _dollars(s.max_drawdown),
        "write_tokens": run.write_tokens,
        "orders": {k: v for k, v in run.counts.items() if k != "decisions"},
        "decisions": run.counts.get("decisions", 0),
        "final_positions": {t: format_count(p) for t, p in sorted(s.final_positions.items())},
        "per_market_net_pnl_dollars": {
            t: _dollars(v) for t, v in sorted(run.per_market_pnl.items())
        },
    }


def result_json(result: BacktestResult) -> dict[str, Any]:
    spec = result.spec
    config = spec.market_config.to_item()
    config.pop("market_id", None)
    config.pop("updated_at", None)
    return {
        "scenario": spec.scenario.name,
        "seed": spec.seed,
        "hours": spec.hours,
        "markets": list(result.tickers),
        "latency_ms": spec.latency_ms,
        "rate_tier": spec.rate_tier,
        "market_config": config,
        "global_config": {
            k: v for k, v in spec.global_config.to_item().items() if k != "updated_at"
        },
        "strategies": {name: strategy_json(run) for name, run in result.runs.items()},
    }


def markdown_table(rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Rows of (scenario, strategy, strategy JSON) as a markdown table (dollars to cents)."""
    head = "| scenario | strategy | " + " | ".join(title for title, _ in COLUMNS) + " |"
    rule = "|" + "---|" * (len(COLUMNS) + 2)
    lines = [head, rule]
    for scenario, strategy, data in rows:
        cells = []
        for _, key in COLUMNS:
            value = data[key]
            if key.endswith("_dollars"):
                cells.append(f"{float(value):.2f}")
            elif key in ("contracts_traded", "max_abs_inventory"):
                cells.append(f"{float(value):.0f}")
            else:
                cells.append(str(value))
        lines.append(f"| {scenario} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_table(result: BacktestResult) -> str:
    data = result_json(result)
    return markdown_table([(data["scenario"], name, s) for name, s in data["strategies"].items()])


def write_plot(result: BacktestResult, path: Path) -> None:
    """PnL, total |inventory| and, for one market, the fair value against our quotes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_pnl, ax_inv, ax_quotes) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    start = None
    for name, run in result.runs.items():
        series = run.series
        if start is None and series.times_ms:
            start = series.times_ms[0]
        hours = [(t - (start or 0)) / 3_600_000 for t in series.times_ms]
        ax_pnl.plot(hours, [v / MONEY_SCALE for v in series.pnl], label=name, lw=1)
        ax_inv.plot(hours, [v / 100 for v in series.inventory], label=name, lw=1)
    ax_pnl.set_ylabel("net PnL marked at fair ($)")
    ax_pnl.legend(loc="upper left")
    ax_pnl.set_title(
        f"backtest: scenario {result.spec.scenario.name}, seed {result.spec.seed}, "
        f"{result.spec.hours:g} h, {len(result.tickers)} markets"
    )
    ax_inv.set_ylabel("sum of |inventory| (contracts)")
    first = next(iter(result.runs.values()), None)
    if first is not None:
        series = first.series
        hours = [(t - (start or 0)) / 3_600_000 for t in series.times_ms]
        ax_quotes.plot(hours, [v / PRICE_SCALE for v in series.fair], "k-", lw=1, label="fair")
        ax_quotes.plot(
            hours,
            [None if v is None else v / PRICE_SCALE for v in series.bid],
            "g.",
            ms=1.5,
            label=f"{first.name} bid",
        )
        ax_quotes.plot(
            hours,
            [None if v is None else v / PRICE_SCALE for v in series.ask],
            "r.",
            ms=1.5,
            label=f"{first.name} ask",
        )
        ax_quotes.set_ylabel(f"{first.plot_ticker} ($)")
        ax_quotes.legend(loc="upper left", markerscale=6)
    ax_quotes.set_xlabel("hours")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
