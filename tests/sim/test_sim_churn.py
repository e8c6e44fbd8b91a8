"""Deep book churn for throughput benchmarks (sim/churn.py, ``POST /_sim/churn``)."""

from __future__ import annotations

from common.numbers import COUNT_SCALE
from sim.churn import ASK_PRICES, BID_PRICES, CHURN_KEY, Churn
from sim.engine import OrderRequest
from sim.events import BookDelta
from sim.model import BookSide
from sim.server import RunningSim
from sim.world import DEFAULT_START_MS, World
from tests.sim.simtest_helpers import Signed


def test_churn_makes_deep_deltas_at_the_rate_and_never_trades() -> None:
    world = World("calm", seed=1, n_markets=5, agents=False, collect_events=True)
    churn = Churn(world.exchange, seed=1)
    churn.set_rate(2_000)
    now = DEFAULT_START_MS
    churn.tick(now)
    for _ in range(100):  # one second in 10 ms steps
        now += 10
        churn.tick(now)
    assert 1_900 <= churn.deltas <= 2_000
    deltas = [e for e in world.exchange.drain_events() if isinstance(e, BookDelta)]
    assert len(deltas) == churn.deltas
    assert not world.exchange.trades
    account = world.exchange.accounts[CHURN_KEY]
    assert len(account.resting) <= 4 * len(world.exchange.markets)
    for order in account.resting.values():
        assert order.price in (BID_PRICES if order.side is BookSide.BID else ASK_PRICES)
    churn.set_rate(0)
    before = churn.deltas
    churn.tick(now + 1_000)
    assert churn.deltas == before


def test_touch_churn_changes_the_top_levels() -> None:
    """With touch_pct 100 every churn order joins the best bid or ask of its market."""
    world = World("calm", seed=1, n_markets=5, agents=False, collect_events=True)
    world.exchange.open_account("maker", 10**12, is_agent=True)
    for ticker in world.exchange.books:  # a book of 40 / 60 cents that the churn never moves
        for side, price in ((BookSide.BID, 4000), (BookSide.ASK, 6000)):
            request = OrderRequest(ticker, side, price, 10 * COUNT_SCALE, post_only=True)
            world.exchange.create_order("maker", request, DEFAULT_START_MS)
    churn = Churn(world.exchange, seed=1)
    churn.set_rate(500, touch_pct=100)
    now = DEFAULT_START_MS
    churn.tick(now)
    for _ in range(20):
        now += 10
        churn.tick(now)
    placed = list(world.exchange.accounts[CHURN_KEY].resting.values())
    assert len(placed) >= 10
    assert {o.price for o in placed if o.side is BookSide.BID} == {4000}
    assert {o.price for o in placed if o.side is BookSide.ASK} == {6000}
    assert not world.exchange.trades


async def test_churn_control_endpoint(client: Signed, sim: RunningSim) -> None:
    assert (await client.control("POST", "/churn", {"deltas_per_s": 500})).json() == {
        "deltas_per_s": 500,
        "touch_pct": 0,
    }
    stats = (await client.control("GET", "/stats")).json()
    assert stats["churn_deltas_per_s"] == 500 and stats["ws_backlog"] >= 0
    body = {"deltas_per_s": 500, "touch_pct": 50}
    assert (await client.control("POST", "/churn", body)).json() == body
    for bad in (
        {"deltas_per_s": -1},
        {"deltas_per_s": "fast"},
        {"deltas_per_s": 10**9},
        {},
        {"deltas_per_s": 10, "touch_pct": 101},
        {"deltas_per_s": 10, "touch_pct": "half"},
    ):
        assert (await client.control("POST", "/churn", bad)).status_code == 400
    assert (await client.control("POST", "/churn", {"deltas_per_s": 0})).status_code == 200
