"""The backtester: CLI contract, determinism, JSON keys, metrics on hand-made cases, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from common.domain import Fill, Position, Side
from common.numbers import COUNT_SCALE, MONEY_SCALE, ONE_DOLLAR
from sim.backtest import BacktestSpec, run_backtest
from sim.backtest.engine import KEY_ID, _Runner
from sim.backtest.metrics import FairTape, FillRecord, markouts, max_drawdown, summarize
from sim.backtest.strategies import STRATEGIES
from sim.scenario import load_scenario

REQUIRED = {
    "net_pnl_dollars",
    "fees_dollars",
    "fills",
    "contracts_traded",
    "max_abs_inventory",
    "max_drawdown_dollars",
    "markout_10s_dollars",
    "write_tokens",
}
HOURS = "0.04"  # 144 s of market: enough for fills on every strategy


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["backtest", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_contract_keys_and_is_deterministic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for path in (first, second):
        code, out, _ = run_cli(
            ["--scenario", "news_jumps", "--hours", HOURS, "--seed", "3", "--json", str(path)],
            capsys,
        )
        assert code == 0 and "| news_jumps | dora |" in out
    assert first.read_bytes() == second.read_bytes()
    data = json.loads(first.read_text())
    assert (data["scenario"], data["seed"], data["hours"]) == ("news_jumps", 3, 0.04)
    assert set(data["strategies"]) == {"dora", "naive", "avellaneda_stoikov"}
    for strategy in data["strategies"].values():
        assert set(strategy) >= REQUIRED
        assert strategy["fills"] > 0 and strategy["write_tokens"] > 0
        float(strategy["net_pnl_dollars"])  # a decimal string


def test_other_seed_other_result(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for seed in ("1", "2"):
        code, out, _ = run_cli(
            [
                "--scenario",
                "calm",
                "--hours",
                "0.02",
                "--seed",
                seed,
                "--strategy",
                "naive",
                "--json",
                "-",
            ],
            capsys,
        )
        assert code == 0
        outputs.append(json.loads(out))
    assert set(outputs[0]["strategies"]) == {"naive"}
    assert outputs[0]["strategies"] != outputs[1]["strategies"]


def test_any_scenario_file_works_and_the_plot_is_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "mine.json"
    scenario.write_text(
        json.dumps(
            {
                "name": "mine",
                "market_lifetime_s": 120,
                "tick_ms": 200,
                "noise_rate_per_min": 30,
                "jump_rate_per_hour": 30,
            }
        )
    )
    plot = tmp_path / "out.png"
    code, out, _ = run_cli(
        ["--scenario", str(scenario), "--hours", "0.05", "--markets", "2", "--plot", str(plot)],
        capsys,
    )
    assert code == 0 and "| mine | naive |" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "no-such"], "unknown scenario"),
        (["--scenario", "/nonexistent/x.json"], "cannot read scenario file"),
        (["--scenario", "calm", "--hours", "-1"], "--hours must be > 0"),
        (["--scenario", "calm", "--hours", "0"], "--hours must be > 0"),
        (["--scenario", "calm", "--strategy", "magic"], "unknown strategy 'magic'"),
        (["--scenario", "calm", "--seed", "x"], "invalid int value"),
        (["--scenario", "calm", "--plot", "/nonexistent/dir/p.png"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_an_output_file_that_is_a_directory_exits_2_before_the_run(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["--scenario", "calm", "--hours", "0.05", flag, str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"{flag}: {tmp_path} is a directory" in err


def test_a_bad_scenario_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_cli(["--scenario", str(bad)], capsys)
    assert code == 2 and "not valid JSON" in err and err.count("\n") == 1


# ---- metrics on hand-made cases ------------------------------------------------------------


def tape(samples: list[tuple[int, int]]) -> FairTape:
    t = FairTape()
    for ms, fair in samples:
        t.record(ms, {"KX": fair})
    return t


def test_markouts_and_spread_of_a_known_round_trip() -> None:
    # fair 0.50 until t=5 s, then 0.53. Buy 10 at 0.49 at t=0, sell 10 at 0.54 at t=6 s.
    fair = tape([(ms, 5000 if ms < 5_000 else 5300) for ms in range(0, 80_000, 1_000)])
    fills = [
        FillRecord(0, "KX", 10 * COUNT_SCALE, 4900, 0, False),
        FillRecord(6_000, "KX", -10 * COUNT_SCALE, 5400, 0, False),
    ]
    spread, marks = markouts(fills, fair)
    # spread: 10 x (0.50 - 0.49) + -10 x (0.53 - 0.54) = $0.10 + $0.10
    assert spread == 200_000
    # 1 s: neither fill saw a move; 10 s: the buy saw +0.03 (=$0.30), the sell none
    assert marks[1_000] == 0
    assert marks[10_000] == 300_000
    assert marks[60_000] == 300_000
    position = Position("KX")
    for fill in fills:
        position = position.apply_fill(
            Fill(
                str(fill.ms),
                "o",
                "KX",
                Side.BID if fill.signed_count > 0 else Side.ASK,
                fill.price,
                abs(fill.signed_count),
                1_000,
                False,
                fill.ms,
            )
        )
    summary = summarize({"KX": position}, {"KX": 5300}, fills, fair, [0, 5, 2, 7, 1], 1000)
    assert summary.realized_pnl == 500_000  # 10 x $0.05
    assert summary.fees == 2_000 and summary.net_pnl == 498_000
    assert summary.contracts_traded == 2_000 and summary.max_drawdown == 6


def test_max_drawdown_counts_from_the_start() -> None:
    assert max_drawdown([]) == 0
    assert max_drawdown([-5, -2, -9]) == 9
    assert max_drawdown([1, 4, 2, 6, 0, 3]) == 6


def test_net_pnl_agrees_with_the_exchange_ledger() -> None:
    """Our Position bookkeeping against the simulator's own cash: they must agree exactly."""
    spec = BacktestSpec(load_scenario("news_jumps"), seed=4, hours=0.03, n_markets=3)
    runner = _Runner(spec, "naive", STRATEGIES["naive"])
    run = runner.run()
    account = runner.world.exchange.accounts[KEY_ID]
    marks = {t: runner._mark(t) for t in runner.tickers}
    value = 0
    for ticker, pos in account.positions.items():
        held = pos.position
        value += held * marks[ticker] if held > 0 else -held * (ONE_DOLLAR - marks[ticker])
    exchange_pnl = account.cash - spec.balance_dollars * MONEY_SCALE + value
    assert run.summary.fills > 0
    assert run.summary.net_pnl == exchange_pnl


def test_every_strategy_sees_the_same_fair_value_path() -> None:
    spec = BacktestSpec(load_scenario("trending"), seed=9, hours=0.02, n_markets=3)
    result = run_backtest(spec)
    fairs = [run.series.fair for run in result.runs.values()]
    assert fairs[0] == fairs[1] == fairs[2]


def test_the_naive_executor_cancels_and_replaces_every_change() -> None:
    from common.domain import Order, OrderStatus, Quote, Side, Targets
    from common.order_diff import ActionKind
    from sim.backtest.engine import cancel_replace_actions

    resting = Order("KX", Side.BID, 4000, 500, "c1", "o1", OrderStatus.RESTING, 0, 500)
    same = Targets("KX", Quote(Side.BID, 4000, 500), None, "t", 0)
    assert cancel_replace_actions([resting], same) == []
    moved = Targets("KX", Quote(Side.BID, 4100, 500), None, "t", 0)  # one tick: dora would keep it
    kinds = [(a.kind, a.price) for a in cancel_replace_actions([resting], moved)]
    assert kinds == [(ActionKind.CANCEL, 4000), (ActionKind.PLACE, 4100)]


def test_book_updates_count_the_market_not_our_own_orders() -> None:
    # The API-efficiency denominator: both executors meet the same market, so they count about
    # the same updates (fills still change the others' book a little). Counting our own orders
    # gave the churning executor ~30 % more updates, which flattered it.
    from dataclasses import replace

    spec = BacktestSpec(load_scenario("calm"), seed=1, hours=0.1, strategies=("dora",), n_markets=3)
    runs = {
        executor: run_backtest(replace(spec, executor=executor)).runs["dora"]
        for executor in ("diff", "cancel_replace")
    }
    diff, churn = (runs[e].counts["book_updates"] for e in ("diff", "cancel_replace"))
    assert diff > 0 and abs(diff - churn) * 100 <= 15 * diff
    assert runs["cancel_replace"].write_tokens > 2 * runs["diff"].write_tokens


def test_dora_is_fed_its_fills_markouts_and_the_event_siblings() -> None:
    """Every fill the backtest books reaches the market's markouts (scored once 10 s old), and
    each outcome of a mutually exclusive event knows the event's other outcomes."""
    spec = BacktestSpec(load_scenario("event"), seed=2, hours=0.05, n_markets=6)
    runner = _Runner(spec, "dora", STRATEGIES["dora"])
    run = runner.run()
    assert run.summary.fills > 0
    for ticker in runner.markets:
        siblings = runner.siblings[ticker]
        assert len(siblings) == 2 and ticker not in siblings
        event = runner.world.exchange.markets[ticker].event_ticker
        assert all(runner.world.exchange.markets[t].event_ticker == event for t in siblings)
    contracts = sum(abs(f.signed_count) for f in runner.fills)
    noted = sum(
        m.markouts.contracts + sum(abs(c) for _, c, *_ in m.markouts.pending)
        for m in runner.markets.values()
    )
    assert 0 < noted <= contracts  # a fill with no two-sided book before it is not scored
    assert any(m.markouts.contracts for m in runner.markets.values())
