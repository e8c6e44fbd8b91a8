"""Scenarios, flow agents and the virtual-clock World."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import ConfigError
from sim.model import MarketStatus
from sim.scenario import available_scenarios, load_scenario
from sim.world import DEFAULT_START_MS, World

HOUR_MS = 3_600_000


def fingerprint(world: World) -> list[tuple[str, int, int, str]]:
    return [(t.ticker, t.price, t.count, t.taker_side.value) for t in world.exchange.trades]


def test_shipped_scenarios_load() -> None:
    assert set(available_scenarios()) >= {
        "calm",
        "trending",
        "news_jumps",
        "illiquid",
        "near_expiry",
    }
    for name in available_scenarios():
        assert load_scenario(name).name == name


def test_any_scenario_file_works_and_bad_ones_say_why(tmp_path: Path) -> None:
    good = tmp_path / "mine.json"
    good.write_text(json.dumps({"name": "mine", "market_lifetime_s": 60, "noise_rate_per_min": 30}))
    assert load_scenario(str(good)).defaults.noise_rate_per_min == 30
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "per_market": [{"volatility": 1}]}))
    with pytest.raises(ConfigError, match=r"per_market\[0\]\.volatility: unknown field"):
        load_scenario(str(bad))
    bad.write_text(json.dumps({"name": "bad", "fair_min": 0.9, "fair_max": 0.1}))
    with pytest.raises(ConfigError, match="fair_min"):
        load_scenario(str(bad))
    with pytest.raises(ConfigError, match="unknown scenario"):
        load_scenario("no-such-scenario")


def test_same_seed_same_flow_and_other_seed_other_flow() -> None:
    runs = []
    for seed in (5, 5, 6):
        world = World("news_jumps", seed=seed, n_markets=3)
        world.step(HOUR_MS // 6)
        runs.append(fingerprint(world))
    assert runs[0] == runs[1] and runs[0]
    assert runs[0] != runs[2]


def test_virtual_clock_runs_markets_to_settlement_in_seconds() -> None:
    world = World("near_expiry", seed=2, n_markets=4)
    me = world.add_participant("backtester", 1_000)
    ticker = world.tickers[0]
    world.step(60_000)
    from sim.engine import OrderRequest
    from sim.model import BookSide, TimeInForce

    ask = world.exchange.books[ticker].best_ask()
    assert ask is not None
    world.submit(
        "backtester", OrderRequest(ticker, BookSide.BID, ask.price, 100, tif=TimeInForce.IOC)
    )
    assert me.positions[ticker].position == 100
    world.step(HOUR_MS)
    assert all(m.status is MarketStatus.FINALIZED for m in world.exchange.markets.values())
    assert (
        ticker not in me.positions
        and me.settlements[0].yes_count + me.settlements[0].no_count == 100
    )
    assert world.exchange.total_money() == world.exchange.deposits
    assert world.now_ms == DEFAULT_START_MS + 60_000 + HOUR_MS


def test_informed_takers_trade_toward_fair_value() -> None:
    world = World("calm", seed=3, n_markets=2)
    world.step(HOUR_MS)
    for ticker in world.tickers:
        book = world.exchange.books[ticker]
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None and ask is not None and bid.price < ask.price
        fair = round(world.fair_value(ticker) * 10_000)
        assert bid.price - 600 <= fair <= ask.price + 600
