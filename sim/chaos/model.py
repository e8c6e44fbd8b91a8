"""The values a chaos run passes around: faults planned and injected, invariants and their results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class FaultKind(Enum):
    KILL9 = "kill -9 a process"
    REDIS_RESTART = "Redis restart (kill -9, AOF)"
    BURST_429 = "429 burst"
    ERROR_5XX = "5xx errors"
    LATENCY = "latency spike"
    DROP_WS = "WebSocket drop"
    SKIP_SEQ = "WebSocket seq gap"
    STALL_BOOK = "book feed stall"
    DYNAMO_OUTAGE = "DynamoDB outage"
    MARKET_PAUSE = "market paused + resumed"
    MARKET_CLOSE = "market closed"
    HALT = "halt + resume"
    # issues 18-20
    REDIS_FREEZE = "Redis frozen (SIGSTOP)"
    REDIS_FLUSH = "Redis loses its data (FLUSHALL)"
    REDIS_WIPE = "Redis restarted empty (no AOF)"
    PRIVATE_DELAY = "private WebSocket delayed, takers hit us"
    TIGHT_RESUME = "resume under a tight exposure cap"
    ONE_SIDED = "book collapses to one side"
    STRAY_EXECUTOR = "a second executor starts"
    EXCHANGE_PAUSE = "exchange maintenance pause"
    DAILY_LOSS = "daily loss breached by marks"


@dataclass(frozen=True, slots=True)
class PlannedFault:
    at_s: float  # seconds after the fault phase starts
    kind: FaultKind
    duration_s: float = 0.0
    target: str = ""  # a process or a market, when the fault has one


@dataclass
class FaultRecord:
    """One fault as injected: times are wall/sim-clock milliseconds (the same clock)."""

    kind: FaultKind
    target: str
    start_ms: int
    end_ms: int
    ok: bool = True
    detail: str = ""


@dataclass
class InvariantResult:
    name: str
    checks: str  # what was looked at, e.g. "6,012 polls, 1,840 orders"
    violations: list[str] = field(default_factory=list)
    notes: str = ""  # measurements worth printing even when it held

    @property
    def held(self) -> bool:
        return not self.violations


# The invariants of issue 9, in the order the report prints them.
NO_DUPLICATES = "no duplicate orders"
INVENTORY_CAP = "inventory never above its cap"
NOTHING_WHILE_HALTED = "no order accepted while halted"
NO_BAD_BOOK_QUOTES = "no quote on a stale, paused or closed book"
POSITIONS_MATCH = "positions in Redis equal the exchange's"
FILLS_ONCE = "every fill exactly once in DynamoDB"
CANCEL_ALL = "cancel-all always succeeds"
NO_CRASH_LOOP = "no process in a crash loop"
NO_SECRETS = "no secret in any log"
KEPT_QUOTING = "quoting resumed after the faults"
# issues 18-20
TOTAL_EXPOSURE = "worst case <= max_total_exposure"
EVENT_LOSS = "event worst loss <= max_event_loss"
REDIS_OUTAGE = "nothing resting 10 s into a Redis outage"
DAILY_LOSS_HALT = "daily loss breach halts within one check"
PAUSE = "nothing refused for the pause"
DATA_LOSS = "positions restored after Redis data loss"
ONE_EXECUTOR = "a second executor never writes"
