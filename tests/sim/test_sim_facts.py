"""``dora sim facts``: the statistics of the simulated market, measured from its trade tape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from common.numbers import COUNT_SCALE
from sim import lifecycle
from sim.engine import OrderRequest
from sim.facts import FactsSpec, FactsTape, facts_scenario, measure, run_facts, run_world
from sim.model import BookSide, MarketStatus, TimeInForce
from sim.scenario import load_scenario
from sim.world import World

KEYS = {
    "maker_excess_return_pp",
    "taker_excess_return_pp",
    "win_rate_by_price_bucket",
    "median_spread_cents",
    "trades_per_hour",
}


def one_trade_world(result: str) -> tuple[World, FactsSpec]:
    """One market, no agents: A rests a bid of 10 at 40 c, B sells 10 into it."""
    world = World("calm", seed=1, n_markets=1, agents=False)
    ticker = world.tickers[0]
    world.add_participant("A")
    world.add_participant("B")
    world.submit("A", OrderRequest(ticker, BookSide.BID, 4000, 10 * COUNT_SCALE))
    world.submit(
        "B", OrderRequest(ticker, BookSide.ASK, 4000, 10 * COUNT_SCALE, tif=TimeInForce.IOC)
    )
    lifecycle.close_now(world.exchange, ticker, world.now_ms)
    lifecycle.determine(world.exchange, ticker, result, world.now_ms)
    return world, FactsSpec(world.scenario, hours=1.0)


@pytest.mark.parametrize(("result", "maker_pp"), [("yes", 60.0), ("no", -40.0)])
def test_excess_returns_of_a_known_trade(result: str, maker_pp: float) -> None:
    world, spec = one_trade_world(result)
    # the hidden fair value at the trade was 45 c: the maker bought 5 c under it
    facts = measure(world, FactsTape(trade_fairs=[4500]), spec)
    assert facts["maker_excess_return_pp"] == maker_pp
    assert facts["taker_excess_return_pp"] == -maker_pp
    assert facts["maker_excess_vs_fair_pp"] == 5.0
    buckets = facts["win_rate_by_price_bucket"]
    yes_won = 100.0 if result == "yes" else 0.0
    # YES bought at 40 c by the maker, NO at 60 c by the taker
    assert buckets["40-50"] == {
        "contracts": 10,
        "mean_price": 40.0,
        "win_rate": yes_won,
        "fair_win_rate": 45.0,
    }
    assert buckets["60-70"]["win_rate"] == 100.0 - yes_won
    assert buckets["60-70"]["fair_win_rate"] == 55.0
    assert buckets["0-10"]["contracts"] == 0 and buckets["0-10"]["win_rate"] is None
    assert facts["trades"] == 1 and facts["trades_per_hour"] == 1.0


def test_every_market_is_settled_inside_the_run_and_trades_have_fairs() -> None:
    spec = FactsSpec(load_scenario("news_jumps"), hours=0.05, seed=2, n_markets=3)
    assert facts_scenario(spec.scenario, spec.hours).market_lifetime_s == 180
    world, tape = run_world(spec)
    markets = world.exchange.markets.values()
    assert all(m.status in (MarketStatus.DETERMINED, MarketStatus.FINALIZED) for m in markets)
    assert len(tape.trade_fairs) == len(world.exchange.trades) > 0
    facts = measure(world, tape, spec)
    assert facts["settled_markets"] == 3 and facts["settled_trades"] == facts["trades"]


def test_same_seed_same_facts() -> None:
    spec = FactsSpec(load_scenario("calm"), hours=0.05, seed=4, n_markets=3)
    assert run_facts(spec) == run_facts(spec)


def test_the_command_prints_the_table_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "facts.json"
    args = ["--scenario", "trending", "--hours", "0.05", "--markets", "3", "--seed", "5"]
    assert main(["sim", "facts", *args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "maker_excess_return_pp" in printed and "+1.12" in printed and "Becker" in printed
    data = json.loads(out.read_text())
    assert set(data) >= KEYS
    assert (data["scenario"], data["seed"], data["hours"], data["markets"]) == (
        "trending",
        5,
        0.05,
        3,
    )
    for bucket in data["win_rate_by_price_bucket"].values():
        assert {"mean_price", "win_rate", "contracts"} <= set(bucket)
    assert main(["sim", "facts", *args, "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == data


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "nope"], "unknown scenario"),
        (["--scenario", "calm", "--hours", "0"], "--hours must be > 0"),
        (["--scenario", "calm", "--hours", "nan"], "--hours must be > 0"),
        (["--scenario", "calm", "--markets", "1"], "--markets must be 2-500"),
        (["--scenario", "calm", "--json", "/nonexistent/dir/f.json"], "does not exist"),
        (["--hours", "1"], "required: --scenario"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "facts", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_json_file_that_is_a_directory_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sim", "facts", "--scenario", "calm", "--hours", "0.05", "--json", str(tmp_path)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert f"--json: {tmp_path} is a directory" in captured.err
