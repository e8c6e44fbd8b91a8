"""What the web process's handlers share: clients, the latest view, the history, the hub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from common.clock import Clock
from common.dynamo import Dynamo
from common.keys import Keys
from common.log import EventLogger
from common.settings import Settings
from services.web.auth import Auth
from services.web.history import DayPnl, MarketHistory
from services.web.hub import Hub


@dataclass
class WebState:
    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    clock: Clock
    log: EventLogger
    auth: Auth
    hub: Hub = field(default_factory=Hub)
    day_pnl: DayPnl = field(default_factory=DayPnl)
    markets: MarketHistory = field(default_factory=MarketHistory)
    past_days: list[dict[str, Any]] = field(default_factory=list)
    history_note: str = "loading the day's history"
    view: dict[str, Any] | None = None
    reread_config: bool = False  # set by a control: the next tick reads every config again
    full_message: Callable[[], bytes] | None = None
    _dynamo: Dynamo | None = None
    _dynamo_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def dynamo(self) -> Dynamo:
        """The DynamoDB stores, built on first use (a boto3 client takes a moment)."""
        async with self._dynamo_lock:
            if self._dynamo is None:
                self._dynamo = await asyncio.to_thread(Dynamo.from_settings, self.settings)
            return self._dynamo

    def full(self) -> dict[str, Any]:
        """Everything a page needs to draw itself from nothing."""
        return {
            **(self.view or {}),
            "day_pnl": self.day_pnl.to_json(),
            "past_days": self.past_days,
            "history_note": self.history_note,
        }
