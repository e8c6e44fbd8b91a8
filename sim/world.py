"""The engine and the flow agents on a clock you drive: the backtester's exchange.

``World(scenario, seed=..., n_markets=...)`` builds the catalog, the agents and an engine;
``step_to(now_ms)`` runs every agent tick (every ``scenario.tick_ms``) up to ``now_ms``, plus
expiries, opens, closes, determinations (YES with the fair probability at close) and
settlements. The server runs the same object on the wall clock; a backtester runs it on a
virtual one, hours of market in seconds, and trades through ``submit``/``cancel``/``amend``
with its own account (``add_participant``) exactly as a client of the server would.
"""

from __future__ import annotations

from common.numbers import MONEY_SCALE
from sim import lifecycle
from sim.agents import FlowAgents
from sim.catalog import build_catalog
from sim.engine import Exchange, Execution, OrderRequest
from sim.events import EngineEvent
from sim.model import Account, MarketStatus, Order
from sim.scenario import Scenario, load_scenario

DEFAULT_START_MS = 1_798_761_600_000  # 2027-01-01T00:00:00Z


class World:
    def __init__(
        self,
        scenario: Scenario | str = "calm",
        *,
        seed: int = 0,
        n_markets: int = 10,
        start_ms: int = DEFAULT_START_MS,
        collect_events: bool = False,
        agents: bool = True,
    ) -> None:
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.seed = seed
        self.exchange = Exchange(id_salt=seed, collect_events=collect_events)
        build_catalog(self.exchange, self.scenario, n_markets, start_ms)
        self.now_ms = start_ms
        self.tick_ms = self.scenario.tick_ms
        self._next_tick_ms = start_ms
        self.agents = FlowAgents(self.exchange, self.scenario, seed, start_ms) if agents else None
        for market in self.exchange.markets.values():
            lifecycle.announce_created(self.exchange, market, start_ms)
        lifecycle.advance(self.exchange, start_ms)
        self._determined: set[str] = set()

    # ----- time --------------------------------------------------------------------------

    def step_to(self, now_ms: int) -> None:
        """Run the world up to ``now_ms`` (never backwards)."""
        while self._next_tick_ms <= now_ms:
            self._tick(self._next_tick_ms)
            self._next_tick_ms += self.tick_ms
        if now_ms > self.now_ms:
            self.now_ms = now_ms
            lifecycle.advance(self.exchange, now_ms)

    def step(self, dt_ms: int) -> None:
        self.step_to(self.now_ms + dt_ms)

    def _tick(self, tick_ms: int) -> None:
        self.now_ms = max(self.now_ms, tick_ms)
        lifecycle.advance(self.exchange, tick_ms)
        if self.agents is not None:
            self.agents.tick(tick_ms, self.tick_ms)
        self._determine_due(tick_ms)

    def _determine_due(self, now_ms: int) -> None:
        delay_ms = self.scenario.determination_delay_s * 1000
        for ticker, market in self.exchange.markets.items():
            if (
                market.status is MarketStatus.CLOSED
                and ticker not in self._determined
                and market.close_ms + delay_ms <= now_ms
            ):
                self._determined.add(ticker)
                lifecycle.determine(self.exchange, ticker, self.resolve(ticker), now_ms)

    def resolve(self, ticker: str) -> str:
        """The result of a closed market: YES with the fair probability at close."""
        if self.agents is None:
            return "no"
        return self.agents.resolve(ticker)

    # ----- participants ------------------------------------------------------------------

    def add_participant(self, key_id: str, balance_dollars: int = 10_000) -> Account:
        return self.exchange.open_account(key_id, balance_dollars * MONEY_SCALE)

    def fair_value(self, ticker: str) -> float:
        """The hidden fair probability of YES (for markouts; a strategy should not peek)."""
        if self.agents is None:
            return 0.5
        return self.agents.probability(ticker)

    def submit(self, key_id: str, request: OrderRequest) -> Execution:
        return self.exchange.create_order(key_id, request, self.now_ms)

    def cancel(self, key_id: str, order_id: str) -> tuple[Order, int]:
        return self.exchange.cancel_order(key_id, order_id, self.now_ms)

    def drain_events(self) -> list[EngineEvent]:
        return self.exchange.drain_events()

    @property
    def tickers(self) -> list[str]:
        return list(self.exchange.markets)
