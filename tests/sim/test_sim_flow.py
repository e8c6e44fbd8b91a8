"""The flow model: martingale fair values, mutually exclusive events, makers, longshot takers."""

from __future__ import annotations

import random
import statistics
from dataclasses import replace

import pytest

from common.numbers import COUNT_SCALE
from sim.agents import start_probability
from sim.catalog import event_group
from sim.fair import OutcomeFair
from sim.makers import anchor, ladder
from sim.model import BookSide, MarketStatus
from sim.scenario import MarketParams, load_scenario
from sim.server import RunningSim
from sim.world import World

HOUR_MS = 3_600_000
JUMPY = MarketParams(volatility_per_sqrt_hour=1.5, jump_rate_per_hour=6, jump_size=1.2)


@pytest.mark.parametrize("start", [0.04, 0.5, 0.9])
def test_a_binary_fair_value_is_a_martingale(start: float) -> None:
    """Without the drift corrections a longshot's logit walk drifts toward 50 % (here from
    4 % to ~20 % in an hour): the fair value would not be the probability it claims."""
    rng = random.Random(7)
    ends = []
    for _ in range(1500):
        fair = OutcomeFair.binary(start, JUMPY)
        for _ in range(120):
            fair.step(rng, 30_000)
        ends.append(fair.probabilities[0])
    error = statistics.stdev(ends) / len(ends) ** 0.5
    assert abs(statistics.mean(ends) - start) < 3.5 * error + 0.002


def test_event_outcomes_sum_to_one_and_each_is_a_martingale() -> None:
    rng = random.Random(3)
    starts = OutcomeFair([0.5, -1.0, -3.0], JUMPY).probabilities
    ends: list[list[float]] = [[], [], []]
    for _ in range(1200):
        fair = OutcomeFair([0.5, -1.0, -3.0], JUMPY)
        for _ in range(120):
            fair.step(rng, 30_000)
            assert abs(sum(fair.probabilities) - 1.0) < 1e-9
        for k in range(3):
            ends[k].append(fair.probabilities[k])
    for k in range(3):
        error = statistics.stdev(ends[k]) / len(ends[k]) ** 0.5
        assert abs(statistics.mean(ends[k]) - starts[k]) < 3.5 * error + 0.002


def test_starting_fair_values_cover_the_longshots_and_favourites_on_any_seed() -> None:
    params = MarketParams()  # 2 % .. 98 %
    for seed in range(20):
        rng = random.Random(seed)
        starts = [start_probability(params, k, 10, rng) for k in range(10)]
        assert min(starts) < 0.045 and max(starts) > 0.955  # the end strata
        assert all(0.02 <= p <= 0.98 for p in starts)


@pytest.mark.parametrize(
    ("n_markets", "groups"),
    [
        (6, [0, 0, 0, 1, 1, 1]),
        (7, [0, 0, 0, 1, 1, 1, 1]),  # a last group of one joins the event before it
        (8, [0, 0, 0, 1, 1, 1, 2, 2]),
        (1, [None]),
    ],
)
def test_markets_are_grouped_into_events(n_markets: int, groups: list[int | None]) -> None:
    assert [event_group(i, n_markets, 3) for i in range(n_markets)] == groups
    assert event_group(0, 6, 1) is None


def test_an_event_scenario_settles_exactly_one_outcome_yes() -> None:
    scenario = replace(load_scenario("event"), market_lifetime_s=600)
    world = World(scenario, seed=5, n_markets=7)
    events = {m.event_ticker for m in world.exchange.markets.values()}
    assert len(events) == 2
    assert all(world.exchange.events_by_ticker[e].mutually_exclusive for e in events)
    for _ in range(20):
        world.step(60_000)
        for event in events:
            total = sum(
                world.fair_value(t)
                for t, m in world.exchange.markets.items()
                if m.event_ticker == event
            )
            assert abs(total - 1.0) < 1e-9
    assert all(m.status is MarketStatus.FINALIZED for m in world.exchange.markets.values())
    for event in events:
        results = [m.result for m in world.exchange.markets.values() if m.event_ticker == event]
        assert sorted(results).count("yes") == 1
    assert world.exchange.trades  # its markets trade like any other
    assert world.exchange.total_money() == world.exchange.deposits


def test_a_maker_leans_against_its_position_and_stops_at_its_cap() -> None:
    world = World("calm", seed=1, n_markets=1, agents=False)
    market = world.exchange.markets[world.tickers[0]]  # linear cent grid
    params = MarketParams(maker_half_spread_ticks=1, maker_skew_contracts=10, maker_max_position=50)
    # estimate 50.3 c, a tick of margin, rounded outward onto the cent grid
    assert anchor(market, params, 0.503, 0) == (4900, 5200, 100)
    assert anchor(market, params, 0.503, -20) == (5100, 5400, 100)  # short 20: two ticks dearer
    assert anchor(market, params, 0.503, 50) == (None, 4700, 100)  # at the cap: no more bids
    levels = ladder(market, replace(params, maker_levels=3), (4900, 5100, 100))
    assert levels == [
        (BookSide.BID, 4900),
        (BookSide.ASK, 5100),
        (BookSide.BID, 4800),
        (BookSide.ASK, 5200),
        (BookSide.BID, 4700),
        (BookSide.ASK, 5300),
    ]
    tight = MarketParams(maker_half_spread_ticks=0)
    assert anchor(market, tight, 0.503, 0) == (5000, 5100, 100)
    assert anchor(market, tight, 0.5, 0) == (5000, 5100, 100)  # on the grid: one tick wide


def test_noise_takers_buy_the_longshot_more_often() -> None:
    world = World("calm", seed=2, n_markets=12)
    world.step(HOUR_MS // 2)
    agents = world.agents
    assert agents is not None
    bought_cheap = sold_cheap = 0
    for fill in world.exchange.accounts["agent-noise"].fills:
        probability = agents.probability(fill.ticker)
        if 0.1 < probability < 0.9:
            continue
        cheap = BookSide.BID if probability < 0.5 else BookSide.ASK
        if fill.side is cheap:
            bought_cheap += fill.count // COUNT_SCALE
        else:
            sold_cheap += fill.count // COUNT_SCALE
    assert bought_cheap > 2 * sold_cheap > 0


async def test_the_event_rest_answer_says_mutually_exclusive(start_sim) -> None:  # type: ignore[no-untyped-def]
    import httpx

    running: RunningSim = await start_sim(scenario="event", n_markets=6)
    async with httpx.AsyncClient(base_url=running.rest_url) as http:
        events = (await http.get("/events?with_nested_markets=true")).json()["events"]
        assert len(events) == 2
        for event in events:
            assert event["mutually_exclusive"] is True and len(event["markets"]) == 3
        one = (await http.get(f"/events/{events[0]['event_ticker']}")).json()
        assert one["event"]["mutually_exclusive"] is True
    plain: RunningSim = await start_sim(scenario="calm", n_markets=2)
    async with httpx.AsyncClient(base_url=plain.rest_url) as http:
        events = (await http.get("/events")).json()["events"]
        assert events and all(e["mutually_exclusive"] is False for e in events)
