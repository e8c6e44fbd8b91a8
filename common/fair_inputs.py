"""Fair-value inputs from outside the market's own book: its event's other outcomes, and an
external model's value (``dora:fv:{ticker}``).

- **Event**: the outcomes of a mutually exclusive event settle YES exactly once, so their fair
  values sum to $1. Each market's mid carries its own makers' error; the others' mids give a
  second, independent estimate, ``$1 - sum(others' mids)``. ``event_fair_x2`` is that estimate
  (twice the price, exact), or None when an outcome's book is not two-sided (a missing outcome
  would make the sum meaningless) or the event's mids sum too far from $1 (outcomes not all
  listed, or a book far out of line).
- **External**: a value the trader's own model writes, with its time and an optional confidence
  (0-100 %); ``external_fair`` returns it when fresh and on the price scale, else None.

Pure: the strategy process and the backtester compute the inputs and hand them to
``common.quoting.compute_targets``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.numbers import ONE_DOLLAR


@dataclass(frozen=True, slots=True)
class ExternalFair:
    """``dora:fv:{ticker}``: price (1/10,000 $), when it was written, confidence in %."""

    price: int
    ts_ms: int
    confidence_pct: int = 100


def event_fair_x2(
    own_mid_x2: int, sibling_mids_x2: Iterable[int | None], max_off_x2: int
) -> int | None:
    """Twice the fair value the event's other outcomes imply (``$1 - their mids``), or None:
    no siblings, a sibling without a two-sided book, or all the event's mids (this one's
    included) summing more than ``max_off_x2 / 2`` away from $1."""
    total = 0
    count = 0
    for mid_x2 in sibling_mids_x2:
        if mid_x2 is None:
            return None
        total += mid_x2
        count += 1
    if count == 0:
        return None
    if abs(own_mid_x2 + total - 2 * ONE_DOLLAR) > max_off_x2:
        return None
    return 2 * ONE_DOLLAR - total


def blend_x2(own_x2: int, other_x2: int, weight_pct: int) -> int:
    """``weight_pct`` % of the way from ``own_x2`` to ``other_x2`` (integers, rounded down)."""
    weight_pct = max(0, min(100, weight_pct))
    return own_x2 + (other_x2 - own_x2) * weight_pct // 100


def external_fair(value: ExternalFair | None, now_ms: int, stale_ms: int) -> ExternalFair | None:
    """The external value when it is usable: on the price scale (0, $1), written no more than
    ``stale_ms`` ago (and not in the future by more than that), with a positive confidence."""
    if value is None or stale_ms <= 0:
        return None
    if not 0 < value.price < ONE_DOLLAR or value.confidence_pct <= 0:
        return None
    if abs(now_ms - value.ts_ms) > stale_ms:
        return None
    return value
