"""The executor's mutable state, in small named objects that the parts share (no IO here)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.domain import MarketMeta, Position, Side, Targets
from common.errors import SchemaError
from common.meta_cache import MetaCache
from common.redis_codec import decode_position
from common.redis_reads import refused
from common.risk import AccountRisk

SIDES = (Side.BID, Side.ASK)
PassKey = tuple[str, Side]  # one side of one market: at most one pass at a time
# A predecessor's last create may still land: when one may have died with a create in flight,
# look again this long after starting before quoting. A first start, or one after a clean stop with
# every create answered, has nothing in flight and quotes as soon as the feeds are alive.
START_FENCE_MS = 1_500


@dataclass(slots=True)
class Markets:
    """What the executor last heard of each market it owns."""

    targets: dict[str, Targets] = field(default_factory=dict)  # the strategy's latest
    meta: dict[str, MarketMeta] = field(default_factory=dict)  # read by each adding pass
    positions: dict[str, Position] = field(default_factory=dict)  # refreshed, moved by fills
    # fill events read so far, and the count when each market's position was last moved by one:
    # a read of the position hashes asked for before then may not hold that fill yet
    fills_read: int = 0
    moved_at: dict[str, int] = field(default_factory=dict)
    # markets whose ``dora:pos`` did not read when last read, and why: no quote rests there
    bad_positions: dict[str, str] = field(default_factory=dict)
    decoded: MetaCache = field(default_factory=MetaCache)  # ``meta`` as the refresh reads it

    def note_meta(self, ticker: str, fields: Any) -> None:
        """``meta`` from ``dora:market:{ticker}`` as read (non-empty); one that does not decode
        is skipped (the meta in hand stays)."""
        with contextlib.suppress(SchemaError):
            self.meta[ticker] = self.decoded.decode(ticker, fields)

    def read_position(self, ticker: str, fields: Any) -> Position | None:
        """``fields`` as read of ``dora:pos:{ticker}`` (in a pipeline run with
        ``raise_on_error=False``), or None when it does not read (a key of the wrong type, a
        field that is not a number): noted in ``bad_positions``. Other errors are raised."""
        why = refused(fields)
        try:
            if why is not None:
                raise SchemaError(why)
            position = decode_position(ticker, fields)
        except SchemaError as exc:
            self.bad_positions[ticker] = str(exc)
            return None
        self.bad_positions.pop(ticker, None)
        return position

    def moved_by_fill(self, position: Position) -> None:
        self.fills_read += 1
        self.positions[position.ticker] = position
        self.moved_at[position.ticker] = self.fills_read

    def newer_than(self, ticker: str, asked_at: int) -> bool:
        """Whether a fill moved ``ticker``'s position after a read asked for at ``asked_at``
        (``fills_read`` then): that read's answer is older than what we know."""
        return self.moved_at.get(ticker, 0) > asked_at


@dataclass(slots=True)
class Halt:
    """A halt heard on the control channel or read from ``dora:risk``; lifted only by a resume
    recorded after it."""

    halted: bool = False
    reason: str = ""
    heard_ms: int = 0


@dataclass(slots=True)
class Pulled:
    """Quotes pulled while a feed is silent or the risk state cannot be trusted: ``reason`` is
    "starting" until every feed has been seen alive and the start fence has passed, "" while
    quoting. ``blind`` says why the executor cannot see its own state (Redis not answering): it
    is set and cleared only by the Redis watch, never by the feed check."""

    reason: str = "starting"
    started_ms: int = 0
    fence_ms: int = START_FENCE_MS
    blind: str = ""


@dataclass(slots=True)
class RiskSeen:
    """The risk state as last read: its ``last_check_ms``, when (our monotonic clock) that last
    changed, so a risk process that stopped checking is noticed whatever its clock says (and so
    is a refresh that stopped reading it), and what risk said of its own checks."""

    last_check_ms: int = 0
    changed_mono_ms: float = 0.0
    failures: int = 0
    error: str = ""  # risk's check_error, or why dora:risk could not be read

    def problem(self, now_ms: int, now_mono_ms: float, stale_ms: int) -> str:
        """Why the risk state cannot be trusted now; "" when it can."""
        age_ms = max(now_ms - self.last_check_ms, int(now_mono_ms - self.changed_mono_ms))
        if not self.last_check_ms:
            return self.error or "risk has not checked yet"
        if age_ms > stale_ms:
            return f"risk state {age_ms / 1000:.1f}s old"
        if self.failures:
            return f"risk check failing ({self.failures}): {self.error}"[:300]
        return ""


@dataclass(slots=True)
class Blocked:
    """Adding risk waits on the state (Redis lost its data; positions not yet checked against
    the exchange) or the clock (``services.executor.gate``): ``reason`` says why, "" when not."""

    reason: str = "starting: waiting for the positions to be checked against the exchange"


@dataclass(slots=True)
class Exposure:
    """The risk refresh's account-wide figures, for the passes' checks."""

    daily_pnl: int = 0
    worst_case: int = 0  # positions plus every live order filling


def account_risk(
    halt: Halt,
    pulled: Pulled,
    exposure: Exposure,
    blocked: Blocked | None = None,
    lease_lost: str = "",
) -> AccountRisk:
    """What a pass checks its actions against: pulled quotes, and adding blocked for want of
    state, a good clock or the shard's lease, deny adding as a halt does."""
    waiting = (blocked.reason if blocked is not None else "") or lease_lost
    return AccountRisk(
        halt.halted or bool(pulled.reason) or bool(pulled.blind) or bool(waiting),
        halt.reason or pulled.blind or pulled.reason or waiting,
        exposure.daily_pnl,
        exposure.worst_case,
    )


@dataclass(slots=True)
class Schedule:
    """Which market sides want a pass, the passes running, and when the loop's background work
    last ran (monotonic ms)."""

    dirty: set[str] = field(default_factory=set)  # markets to look at again (both sides)
    due: set[PassKey] = field(default_factory=set)  # sides to look at once their pass is done
    inflight: dict[PassKey, asyncio.Task[None]] = field(default_factory=dict)
    trace: dict[PassKey, tuple[int, ...]] = field(default_factory=dict)  # oldest unanswered tick
    closing: bool = False  # stopping: no new passes
    last_reconcile_ms: float = 0.0
    last_risk_ms: float = 0.0
    last_positions_ms: float = 0.0

    def mark(self, ticker: str) -> None:
        self.dirty.add(ticker)

    def mark_all(self, tickers: Iterable[str]) -> None:
        self.dirty.update(tickers)

    def running(self) -> list[asyncio.Task[None]]:
        return [t for t in self.inflight.values() if not t.done()]

    def reconcile_soon(self) -> None:
        """Reconcile at the loop's next step (unless one is already running)."""
        self.last_reconcile_ms = 0.0


def new_counts() -> dict[str, int]:
    """What the executor did, for its heartbeat."""
    return dict.fromkeys(("placed", "amended", "decreased", "canceled", "rejected", "denied"), 0)
