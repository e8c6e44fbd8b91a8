"""Everything one running simulator holds, shared by the REST, WebSocket and control handlers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sim import lifecycle
from sim.auth import KeyRegistry
from sim.calendar import Calendar
from sim.churn import Churn
from sim.engine import Exchange
from sim.faults import Faults
from sim.ratelimit import RateLimiter
from sim.world import World
from sim.ws import WsHub


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class SimState:
    world: World
    registry: KeyRegistry
    limiter: RateLimiter
    faults: Faults
    balance_money: int
    clock_ms: Callable[[], int] = wall_clock_ms
    stats: Counter[str] = field(default_factory=Counter)
    calendar: Calendar = field(default_factory=Calendar)
    direct_members: bool = False  # the accounts of registered keys (agents always are)
    hub: WsHub = field(init=False)
    churn: Churn = field(init=False)

    def __post_init__(self) -> None:
        self.hub = WsHub(self.world.exchange, self.faults, self.stats, self.clock_ms)
        self.churn = Churn(self.world.exchange, self.world.seed)
        for key_id in self.registry.key_ids:
            self.ensure_account(key_id)

    @property
    def exchange(self) -> Exchange:
        return self.world.exchange

    def ensure_account(self, key_id: str) -> None:
        self.exchange.open_account(key_id, self.balance_money, direct_member=self.direct_members)

    def follow_calendar(self) -> None:
        """The exchange's pause as of now; sockets drop when one starts and when it ends."""
        now = self.clock_ms()
        lifecycle.apply_fee_changes(self.exchange, now)
        pause = self.calendar.pause_at(now)
        kind = None if pause is None else pause.kind
        if kind != self.exchange.pause:
            self.exchange.pause = kind
            self.stats["pause_changes"] += 1
            self.hub.drop_all()

    def register_key(self, key_id: str, pem: bytes) -> None:
        self.registry.add_pem(key_id, pem)
        self.ensure_account(key_id)

    def flush(self) -> None:
        """Send what the engine did to the WebSocket subscribers, in order."""
        events = self.exchange.drain_events()
        if events or self.hub.holding:
            self.hub.publish(events)

    def step(self) -> None:
        """Advance the agents and the market clock to now, then publish."""
        now = self.clock_ms()
        self.follow_calendar()
        self.world.step_to(now)
        self.churn.tick(now)
        self.flush()
