"""The limits of DESIGN.md §3 checked at the exchange, at every poll of a chaos run (issue 18).

From the simulator's own view of the account (``/_sim/accounts/{key}``: positions and resting
orders), never from dora's:

- ``account_worst_case``: positions plus every resting order filling, by the same formula as dora's
  ``common.risk.worst_case_exposure`` (exposure of the positions, plus each resting order's
  opening part); it must stay at or under ``max_total_exposure`` as it was at that moment (a
  lowered cap counts from ``CAP_GRACE_MS`` after it was set: config reaches the processes within
  seconds);
- ``event_worst_losses``: each event's worst loss at settlement, positions and resting orders
  included, fees left out. Per market and outcome the loss is what the position loses if that
  outcome happens plus every resting order that would lose filling (a bid loses its price when
  NO happens, an ask one dollar less its price when YES happens). A mutually exclusive event
  takes the worst over which of its markets wins (or none); any other event the sum of its
  markets' worst losses. It must stay at or under ``max_event_loss``.

``LimitWatch`` is a hook of ``AccountWatch`` (one call per poll) that keeps a compact history;
the checks are pure functions of that history.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.domain import Order, OrderStatus, Position, Side
from common.numbers import (
    MONEY_SCALE,
    ONE_DOLLAR,
    format_money,
    parse_count,
    parse_money,
    parse_price,
)
from common.risk import worst_case_exposure
from sim.chaos.model import EVENT_LOSS, TOTAL_EXPOSURE, InvariantResult

CAP_GRACE_MS = 2_000
MAX_EVIDENCE = 20


@dataclass(frozen=True, slots=True)
class EventInfo:
    event_ticker: str
    mutually_exclusive: bool
    tickers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Leg:
    """One market of the account: signed position, money paid for it, resting orders."""

    position: int
    cost: int  # money paid for the contracts held (YES or NO), >= 0 as the exchange shows it
    bids: tuple[tuple[int, int], ...]  # (price, remaining)
    asks: tuple[tuple[int, int], ...]


def _legs(account: Mapping[str, Any]) -> dict[str, _Leg]:
    bids: dict[str, list[tuple[int, int]]] = {}
    asks: dict[str, list[tuple[int, int]]] = {}
    for o in account["resting_orders"]:
        book = bids if o["book_side"] == "bid" else asks
        remaining = parse_count(o["remaining_count_fp"])
        book.setdefault(o["ticker"], []).append((parse_price(o["yes_price_dollars"]), remaining))
    legs = {}
    positions = account["positions"]
    for ticker in set(positions) | set(bids) | set(asks):
        p = positions.get(ticker)
        legs[ticker] = _Leg(
            parse_count(p["position_fp"], signed=True) if p else 0,
            parse_money(p["cost_dollars"]) if p else 0,
            tuple(bids.get(ticker, ())),
            tuple(asks.get(ticker, ())),
        )
    return legs


def account_worst_case(account: Mapping[str, Any]) -> int:
    """Positions plus every resting order filling (money), as ``common.risk`` counts it."""
    positions, orders = [], []
    for ticker, leg in _legs(account).items():
        # dora's cost is the signed YES cost: a short's is the NO cost less a dollar a contract
        signed_cost = leg.cost if leg.position >= 0 else leg.cost - ONE_DOLLAR * -leg.position
        positions.append(Position(ticker, leg.position, signed_cost))
        for side, book in ((Side.BID, leg.bids), (Side.ASK, leg.asks)):
            for i, (price, remaining) in enumerate(book):
                orders.append(
                    Order(
                        ticker,
                        side,
                        price,
                        remaining,
                        f"x{i}",
                        None,
                        OrderStatus.RESTING,
                        0,
                        remaining,
                    )
                )
    return worst_case_exposure(positions, orders)


def _losses(leg: _Leg) -> tuple[int, int]:
    """(loss if YES happens, loss if NO happens) of one market: negative is a gain."""
    pos = leg.position
    payout_yes = pos * ONE_DOLLAR if pos > 0 else 0
    payout_no = -pos * ONE_DOLLAR if pos < 0 else 0
    if_yes = leg.cost - payout_yes + sum((ONE_DOLLAR - p) * n for p, n in leg.asks)
    if_no = leg.cost - payout_no + sum(p * n for p, n in leg.bids)
    return if_yes, if_no


def event_worst_losses(account: Mapping[str, Any], events: Sequence[EventInfo]) -> dict[str, int]:
    """Each event's worst loss (money, >= 0) where the account holds or quotes anything."""
    legs = _legs(account)
    worst: dict[str, int] = {}
    for event in events:
        held = {t: _losses(legs[t]) for t in event.tickers if t in legs}
        if not held:
            continue
        if event.mutually_exclusive:
            none_wins = sum(no for _, no in held.values())
            outcomes = [none_wins]
            outcomes += [none_wins - held[t][1] + held[t][0] for t in held]
            # a market of the event we do not hold winning is the "none of ours" outcome
            loss = max(outcomes)
        else:
            loss = sum(max(0, yes, no) for yes, no in held.values())
        worst[event.event_ticker] = max(0, loss)
    return worst


# ---- the caps in force -----------------------------------------------------------------------


@dataclass
class CapTimeline:
    """A limit's value over time: (ms it was set, value); the first entry is the start's."""

    changes: list[tuple[int, int]] = field(default_factory=list)

    def set(self, ms: int, value: int) -> None:
        self.changes.append((ms, value))

    def at(self, ms: int, grace_ms: int = CAP_GRACE_MS) -> int | None:
        """The cap a poll at ``ms`` is held to: a lowered cap binds ``grace_ms`` after it was
        set, a raised one at once (the larger of the caps of the last ``grace_ms``)."""
        before = [v for t, v in self.changes if t <= ms - grace_ms]
        recent = [v for t, v in self.changes if ms - grace_ms < t <= ms]
        candidates = before[-1:] + recent
        return max(candidates) if candidates else None


# ---- the watch -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitSample:
    ms: int
    worst_case: int
    event_losses: Mapping[str, int]


class LimitWatch:
    """Called by ``AccountWatch`` on every poll: the account's worst case and each event's."""

    def __init__(self, events: Sequence[EventInfo]) -> None:
        self.events = list(events)
        self.history: list[LimitSample] = []
        self.lock = threading.Lock()

    def __call__(self, account: Mapping[str, Any], ms: int) -> None:
        sample = LimitSample(
            ms, account_worst_case(account), event_worst_losses(account, self.events)
        )
        with self.lock:
            self.history.append(sample)

    def samples(self) -> list[LimitSample]:
        with self.lock:
            return list(self.history)


def dollars(money: int) -> str:
    """Money for the table: whole cents, toward zero."""
    cents = abs(money) // (MONEY_SCALE // 100)
    return f"{'-' if money < 0 else ''}${format_money(cents * (MONEY_SCALE // 100), 2)}"


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_EVIDENCE:
        return lines
    return [*lines[:MAX_EVIDENCE], f"... and {len(lines) - MAX_EVIDENCE} more"]


def check_total_exposure(
    samples: Sequence[LimitSample], caps: CapTimeline, *, grace_ms: int = CAP_GRACE_MS
) -> InvariantResult:
    """At every poll, the account-wide worst case at the exchange <= ``max_total_exposure``."""
    violations = []
    worst_ratio = 0.0
    tightest = ""
    for s in samples:
        cap = caps.at(s.ms, grace_ms)
        if cap is None:
            continue
        if cap > 0 and s.worst_case / cap > worst_ratio:
            worst_ratio = s.worst_case / cap
            tightest = f"{dollars(s.worst_case)} of {dollars(cap)}"
        if s.worst_case > cap:
            violations.append(f"t={s.ms} worst case {dollars(s.worst_case)} > cap {dollars(cap)}")
    return InvariantResult(
        TOTAL_EXPOSURE,
        f"{len(samples):,} polls, {len(caps.changes)} cap settings",
        _cap(violations),
        notes=f"closest: {tightest} ({worst_ratio:.0%})" if tightest else "",
    )


def check_event_loss(
    samples: Sequence[LimitSample], limits: CapTimeline, events: Sequence[EventInfo]
) -> InvariantResult:
    """At every poll, every event's worst loss at the exchange <= ``max_event_loss``."""
    violations = []
    top, top_event = 0, ""
    for s in samples:
        limit = limits.at(s.ms)
        for event, loss in s.event_losses.items():
            if loss > top:
                top, top_event = loss, event
            if limit is not None and loss > limit:
                violations.append(f"t={s.ms} {event} worst loss {dollars(loss)} > {dollars(limit)}")
    exclusive = sum(1 for e in events if e.mutually_exclusive and len(e.tickers) > 1)
    checks = f"{len(samples):,} polls, {len(events)} events ({exclusive} mutually exclusive)"
    notes = f"largest {dollars(top)} ({top_event})" if top_event else "no event held"
    if not limits.changes:
        violations.insert(0, f"no max_event_loss was set for the run ({notes})")
    return InvariantResult(EVENT_LOSS, checks, _cap(violations), notes=notes)
