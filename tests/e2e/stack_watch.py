"""Watching the exchange's truth while a full stack runs: positions, resting orders, caps."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from common.numbers import parse_count


@dataclass
class Violations:
    duplicate_side: list[str] = field(default_factory=list)
    over_cap: list[str] = field(default_factory=list)
    max_abs_position: dict[str, int] = field(default_factory=dict)
    polls: int = 0


class ExchangeWatcher:
    """Polls the simulator's view of one account every ``interval_s`` in a thread: never more
    than one resting order per market side, never a position beyond ``cap``."""

    def __init__(self, control_url: str, key_id: str, cap: int, interval_s: float = 0.1) -> None:
        self.url = f"{control_url}/accounts/{key_id}"
        self.cap = cap
        self.interval_s = interval_s
        self.found = Violations()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def account(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(self.url, timeout=5).json()
        return data

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    self.check(client.get(self.url).json())
                self._stop.wait(self.interval_s)

    def check(self, account: dict[str, Any]) -> None:
        self.found.polls += 1
        sides = Counter((o["ticker"], o["book_side"]) for o in account["resting_orders"])
        for (ticker, side), n in sides.items():
            if n > 1:
                self.found.duplicate_side.append(f"{ticker} {side} x{n}")
        for ticker, pos in account["positions"].items():
            size = abs(parse_count(pos["position_fp"], signed=True))
            self.found.max_abs_position[ticker] = max(
                self.found.max_abs_position.get(ticker, 0), size
            )
            if size > self.cap:
                self.found.over_cap.append(f"{ticker} {pos['position_fp']}")

    def __enter__(self) -> ExchangeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def two_sided_markets(account: dict[str, Any]) -> set[str]:
    sides: dict[str, set[str]] = {}
    for order in account["resting_orders"]:
        sides.setdefault(order["ticker"], set()).add(order["book_side"])
    return {t for t, s in sides.items() if s == {"bid", "ask"}}


def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` was true, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval_s)
    return None
