"""What the exchange and dora's Redis held when an event's worst loss first passed its limit.

A breach of ``max_event_loss`` is a few cents in a run of a minute, found long after the run:
the checks say when, not why. ``BreachDump`` is an ``AccountWatch`` hook beside ``LimitWatch``:
it keeps the last polls of the account and, the first time each event passes its limit, writes
``breach-{event}.json`` in the run's directory: every poll of the last ~1.5 s, per market of the
event (position, cost, resting bids and asks, its losses if YES / if NO), and dora's view of the
same moment read from Redis (the ledger's parts of the event and its sums, each market's
position hash). Comparing the two per market names the market dora under-counted.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.chaos.limits import EventInfo, _legs, _losses, event_worst_losses

WINDOW = 15  # polls kept (every 100 ms)


class BreachDump:
    def __init__(
        self,
        events: Sequence[EventInfo],
        limit_at: Callable[[int], int | None],
        snapshot: Callable[[EventInfo], dict[str, Any]],
        directory: Path,
    ) -> None:
        self.events = list(events)
        self.limit_at = limit_at
        self.snapshot = snapshot  # dora's view of an event in Redis, read now
        self.directory = directory
        self.recent: collections.deque[tuple[int, Mapping[str, Any]]] = collections.deque(
            maxlen=WINDOW
        )
        self.dumped: set[str] = set()

    def __call__(self, account: Mapping[str, Any], ms: int) -> None:
        self.recent.append((ms, account))
        limit = self.limit_at(ms)
        if limit is None:
            return
        for event_ticker, loss in event_worst_losses(account, self.events).items():
            if loss > limit and event_ticker not in self.dumped:
                self.dumped.add(event_ticker)
                event = next(e for e in self.events if e.event_ticker == event_ticker)
                self._dump(event, loss, limit, ms)

    def _dump(self, event: EventInfo, loss: int, limit: int, ms: int) -> None:
        try:
            dora = self.snapshot(event)
        except Exception as exc:  # Redis away at that moment: the exchange's side still helps
            dora = {"error": f"{type(exc).__name__}: {exc}"}
        polls = []
        for at, account in self.recent:
            legs = _legs(account)
            markets = {}
            for ticker in event.tickers:
                leg = legs.get(ticker)
                if leg is None:
                    continue
                if_yes, if_no = _losses(leg)
                markets[ticker] = {
                    "position": leg.position,
                    "cost": leg.cost,
                    "bids": leg.bids,
                    "asks": leg.asks,
                    "if_yes": if_yes,
                    "if_no": if_no,
                }
            worst = event_worst_losses(account, [event]).get(event.event_ticker, 0)
            polls.append({"ms": at, "worst": worst, "markets": markets})
        record = {"event": event.event_ticker, "ms": ms, "loss": loss, "limit": limit}
        record |= {"exchange": polls, "dora": dora}
        path = self.directory / f"breach-{event.event_ticker}.json"
        path.write_text(json.dumps(record, indent=1, default=list))


def redis_view(connect: Callable[[], Any], keys: Any, event: EventInfo) -> dict[str, Any]:
    """dora's view of ``event`` in Redis: its ledger parts and sums, each market's position."""
    with connect() as redis:
        ledger: dict[str, str] = redis.hgetall(keys.ledger)
        positions = {t: redis.hgetall(keys.pos(t)) for t in event.tickers}
    prefix = f"em:{event.event_ticker}|"
    parts = {k[len(prefix) :]: json.loads(v) for k, v in ledger.items() if k.startswith(prefix)}
    marks = {k: v for k, v in ledger.items() if k.startswith("mark:")}
    return {
        "sums": ledger.get(f"ea:{event.event_ticker}"),
        "total": ledger.get("total"),
        "marks": marks,
        "parts": parts,
        "positions": {t: p for t, p in positions.items() if p},
    }
