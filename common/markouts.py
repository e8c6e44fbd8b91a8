"""Toxicity measured from our own fills' markouts: how the market moved after each fill.

A maker's fill is *toxic* when the market moves through its price right after: an informed
taker bought before the value rose. For each of our fills in a market this keeps the fill
(time, signed contracts, the others' mid just before it) until ``horizon_ms`` has passed, then
scores it against the others' mid seen then: its move is ``sign x (mid_then - mid_before)`` per
contract (negative: the market went against the fill). The spread the fill earned is left out
on purpose: it depends on the market's tick and spread, while the move after a fill is what
informed flow leaves behind (measured over the tuning seeds, the mean move is within -0.2 c in
calm and finance markets and -0.3 to -2.4 c in sports_live's).

``toxicity`` turns the contract-weighted mean move of the last ``keep_contracts`` or so scored
contracts into a score on the config's scale (``FACTOR_SCALE`` = 1.0): 0 while the mean move is
no worse than ``-free``, rising linearly to 1.0 at ``-(free + span)``. None until
``min_contracts`` have been scored: the static ``toxicity_score`` of the market's config stands
until there is enough data.

It also keeps every fill's time and signed size for ``FILLS_KEEP_MS`` (scored or not): a
single fill that took our whole quote in a thin market (``taken_sides``) is the quoting
function's sign of a taker larger than our quote, and so likely an informed one. And the last
``RECORD_KEEP`` scored fills one by one, each with its edge (the others' mid at the horizon
against the fill's own price, signed for us): ``whole_record`` sums those of at least a
given size, the market's own record of whether a taker who took our whole quote was informed.

Pure and immutable, exact integers (prices in 1/10,000 $, counts in 1/100 contract): the live
strategy process (fills from ``dora:stream:fills``, mids from the books it reads) and the
backtester keep one per market and feed it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from common.config import FACTOR_SCALE
from common.numbers import COUNT_SCALE

HORIZON_MS = 10_000  # a fill is scored against the mid this long after it
KEEP_CONTRACTS = 200 * COUNT_SCALE  # about the last 200 contracts scored
FILLS_KEEP_MS = 120_000  # each fill's time and size kept this long (``taken_sides``)
RECORD_KEEP = 64  # the last scored fills kept one by one (``whole_record``)


@dataclass(frozen=True, slots=True)
class Markouts:
    # (ms, signed count, mid x2 before, fill price x2), by time
    pending: tuple[tuple[int, int, int, int], ...] = ()
    scored: tuple[tuple[int, int], ...] = ()  # (count, move x count x 2), oldest first
    contracts: int = 0  # sum of the scored counts
    move_x2: int = 0  # sum of the scored moves x count x 2
    fills: tuple[tuple[int, int], ...] = ()  # (ms, signed count) of the last FILLS_KEEP_MS
    # (signed count, edge x count x 2) of the last RECORD_KEEP scored fills
    record: tuple[tuple[int, int], ...] = ()


NO_MARKOUTS = Markouts()


def note_fill(
    state: Markouts, ms: int, signed_count: int, mid_x2: int | None, price: int | None = None
) -> Markouts:
    """A fill of ours: ``signed_count`` > 0 bought YES, < 0 sold YES; ``mid_x2`` twice the
    others' mid just before it (None: no two-sided book then, the fill is not scored);
    ``price`` its YES price (None: the mid before, so its edge is the move alone)."""
    if signed_count == 0:
        return state
    newest = max(ms, state.fills[-1][0]) if state.fills else ms
    fills = tuple(f for f in (*state.fills, (ms, signed_count)) if f[0] > newest - FILLS_KEEP_MS)
    if len(fills) > 1 and fills[-2][0] > ms:
        fills = tuple(sorted(fills))
    if mid_x2 is None:
        return replace(state, fills=fills)
    price_x2 = mid_x2 if price is None else 2 * price
    pending = (*state.pending, (ms, signed_count, mid_x2, price_x2))
    if len(pending) > 1 and pending[-2][0] > ms:  # out of order (a backfill): keep time order
        pending = tuple(sorted(pending))
    return replace(state, pending=pending, fills=fills)


def score_due(
    state: Markouts,
    now_ms: int,
    mid_x2: int | None,
    horizon_ms: int = HORIZON_MS,
    keep_contracts: int = KEEP_CONTRACTS,
) -> Markouts:
    """Every fill at least ``horizon_ms`` old scored against the mid now (``mid_x2``: twice the
    others' mid; None leaves them waiting). Old scores past ``keep_contracts`` are dropped."""
    if mid_x2 is None or not state.pending or state.pending[0][0] > now_ms - horizon_ms:
        return state
    due = 0
    while due < len(state.pending) and state.pending[due][0] <= now_ms - horizon_ms:
        due += 1
    scored = list(state.scored)
    record = list(state.record)
    contracts, move_x2 = state.contracts, state.move_x2
    for _, signed, before_x2, price_x2 in state.pending[:due]:
        move = (mid_x2 - before_x2) * signed  # sign x (mid now - mid before) x count, doubled
        scored.append((abs(signed), move))
        record.append((signed, (mid_x2 - price_x2) * signed))
        contracts += abs(signed)
        move_x2 += move
    start = 0
    while start < len(scored) - 1 and contracts - scored[start][0] >= keep_contracts:
        contracts -= scored[start][0]
        move_x2 -= scored[start][1]
        start += 1
    return Markouts(
        state.pending[due:],
        tuple(scored[start:]),
        contracts,
        move_x2,
        state.fills,
        tuple(record[-RECORD_KEEP:]),
    )


def taken_sides(state: Markouts, now_ms: int, window_ms: int, min_count: int) -> tuple[bool, bool]:
    """Whether a single fill of at least ``min_count`` bought YES (a taker sold to our bid)
    and whether one sold YES (a taker bought our ask), within the last ``window_ms`` (at most
    ``FILLS_KEEP_MS``)."""
    bought = sold = False
    for ms, signed in reversed(state.fills):
        if ms <= now_ms - window_ms:
            break
        bought = bought or signed >= min_count
        sold = sold or -signed >= min_count
    return bought, sold


def whole_record(state: Markouts, min_count: int) -> tuple[int, int, int]:
    """The scored fills of at least ``min_count`` among the last ``RECORD_KEEP``: how many,
    their contracts, and the sum of their edges x count x 2 (negative: such fills lost)."""
    n = contracts = edge_x2 = 0
    for signed, edge in state.record:
        if abs(signed) >= min_count:
            n += 1
            contracts += abs(signed)
            edge_x2 += edge
    return n, contracts, edge_x2


def taken_moved(
    state: Markouts,
    mids_x2: tuple[tuple[int, int], ...],
    now_ms: int,
    window_ms: int,
    min_count: int,
    mid_x2: int,
    move_x2: int,
) -> tuple[bool, bool]:
    """``taken_sides``, but only a fill after which the others' mid (``mid_x2`` now) has moved
    at least ``move_x2`` the taker's way from the one in effect just before it (``mids_x2``:
    (ms, mid x2), oldest first): the book re-priced after the taker, as after news."""
    bought = sold = False
    for ms, signed in reversed(state.fills):
        if ms <= now_ms - window_ms:
            break
        if abs(signed) < min_count:
            continue
        before = None
        for seen_ms, seen_x2 in mids_x2:
            if seen_ms >= ms:
                break
            before = seen_x2
        if before is None:
            continue
        bought = bought or (signed > 0 and mid_x2 <= before - move_x2)
        sold = sold or (signed < 0 and mid_x2 >= before + move_x2)
    return bought, sold


def toxicity(state: Markouts, min_contracts: int, free: int, span: int) -> int | None:
    """The score (0..``FACTOR_SCALE``) from the mean move per contract (price units), or None
    with fewer than ``min_contracts`` scored."""
    if state.contracts < max(1, min_contracts) or span <= 0:
        return None
    # how far the mean move (x2: move_x2 / contracts) is below -free, over the span
    shortfall_x2 = -state.move_x2 - 2 * free * state.contracts
    if shortfall_x2 <= 0:
        return 0
    return min(FACTOR_SCALE, shortfall_x2 * FACTOR_SCALE // (2 * span * state.contracts))
