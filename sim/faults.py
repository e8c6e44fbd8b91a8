"""Fault injection: what the simulator does wrong on purpose, set by flags or ``/_sim/faults``.

- ``latency_ms``: added before every REST answer;
- ``error_5xx_rate``: the share of REST requests answered 500 (seeded, reproducible);
- ``burst_429_s``: every REST request answered 429 for that many seconds;
- ``drop_ws``: close every WebSocket connection now (one-shot);
- ``skip_seq``: the next N orderbook messages skip a ``seq`` number;
- ``stall_book_feed_s``: orderbook deltas are held back for that many seconds, then sent;
- ``silence_ws_s``: every socket goes completely silent (no frame, no ping) for that many seconds;
- ``delay_private_ws_s``: the private channels (fills, user orders, positions) are held back for
  that many seconds, then sent in order (the books keep flowing).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from common.errors import ConfigError


@dataclass(slots=True)
class Faults:
    latency_ms: int = 0
    error_5xx_rate: float = 0.0
    burst_429_until_ms: int = 0
    skip_seq: int = 0
    stall_book_until_ms: int = 0
    silence_ws_until_ms: int = 0
    delay_private_until_ms: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def inject_5xx(self) -> bool:
        return self.error_5xx_rate > 0 and self.rng.random() < self.error_5xx_rate

    def in_429_burst(self, now_ms: int) -> bool:
        return now_ms < self.burst_429_until_ms

    def book_stalled(self, now_ms: int) -> bool:
        return now_ms < self.stall_book_until_ms

    def ws_silenced(self, now_ms: int) -> bool:
        return now_ms < self.silence_ws_until_ms

    def private_delayed(self, now_ms: int) -> bool:
        return now_ms < self.delay_private_until_ms

    def take_seq_skip(self) -> bool:
        if self.skip_seq > 0:
            self.skip_seq -= 1
            return True
        return False

    def as_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_5xx_rate": self.error_5xx_rate,
            "burst_429_remaining_ms": max(0, self.burst_429_until_ms - now_ms),
            "skip_seq": self.skip_seq,
            "stall_book_feed_remaining_ms": max(0, self.stall_book_until_ms - now_ms),
            "silence_ws_remaining_ms": max(0, self.silence_ws_until_ms - now_ms),
            "delay_private_ws_remaining_ms": max(0, self.delay_private_until_ms - now_ms),
        }

    def apply(self, changes: dict[str, Any], now_ms: int) -> bool:
        """Apply a control request; returns True when ``drop_ws`` was asked for."""
        known = {
            "latency_ms",
            "error_5xx_rate",
            "burst_429_s",
            "drop_ws",
            "skip_seq",
            "stall_book_feed_s",
            "silence_ws_s",
            "delay_private_ws_s",
            "clear",
        }
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(known)}")
        if changes.get("clear"):
            self.latency_ms = 0
            self.error_5xx_rate = 0.0
            self.burst_429_until_ms = 0
            self.skip_seq = 0
            self.stall_book_until_ms = 0
            self.silence_ws_until_ms = 0
            self.delay_private_until_ms = 0
        if "latency_ms" in changes:
            self.latency_ms = _number(changes, "latency_ms", int, 0, 60_000)
        if "error_5xx_rate" in changes:
            self.error_5xx_rate = _number(changes, "error_5xx_rate", float, 0.0, 1.0)
        if "burst_429_s" in changes:
            seconds = _number(changes, "burst_429_s", float, 0.0, 3600.0)
            self.burst_429_until_ms = now_ms + int(seconds * 1000)
        if "skip_seq" in changes:
            self.skip_seq = _number(changes, "skip_seq", int, 0, 1_000_000)
        if "stall_book_feed_s" in changes:
            seconds = _number(changes, "stall_book_feed_s", float, 0.0, 3600.0)
            self.stall_book_until_ms = now_ms + int(seconds * 1000)
        if "silence_ws_s" in changes:
            seconds = _number(changes, "silence_ws_s", float, 0.0, 3600.0)
            self.silence_ws_until_ms = now_ms + int(seconds * 1000)
        if "delay_private_ws_s" in changes:
            seconds = _number(changes, "delay_private_ws_s", float, 0.0, 3600.0)
            self.delay_private_until_ms = now_ms + int(seconds * 1000)
        return bool(changes.get("drop_ws"))


def _number(changes: dict[str, Any], key: str, kind: type, low: float, high: float) -> Any:
    value = changes[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, was {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, was {value!r}")
    return kind(value)
