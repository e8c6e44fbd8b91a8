"""What the caller remembers of one market's mid between calls, and two measures of it.

``Recent`` holds the others' mid (twice the mid, exact) each time it changed; the backtester
and the live strategy feed it (``remember_mid``), and ``common.quoting`` reads how far the mid ranged over a window (the shock guard)
and its standard deviation (volatility widening). Pure, exact integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt


@dataclass(frozen=True, slots=True)
class Recent:
    """What the caller remembers of one market between calls: the mid of the others' book
    (twice the mid, exact) each time it changed, oldest first, over the last minute or so."""

    mids_x2: tuple[tuple[int, int], ...] = ()  # (ms, best bid + best ask)


NO_RECENT = Recent()
KEEP_MS = 60_000  # mids older than this are forgotten


def remember_mid(recent: Recent, now_ms: int, mid_x2: int | None, keep_ms: int = KEEP_MS) -> Recent:
    """``recent`` with the others' mid seen at ``now_ms`` (added when it changed; None: a
    one-sided book, nothing added) and the mids older than ``keep_ms`` forgotten. The live
    strategy and the backtester call it at each decision."""
    mids = recent.mids_x2
    if mid_x2 is not None and (not mids or mids[-1][1] != mid_x2):
        mids = (*mids, (now_ms, mid_x2))
    start = 0
    while start < len(mids) and mids[start][0] < now_ms - keep_ms:
        start += 1
    return recent if mids is recent.mids_x2 and not start else Recent(mids[start:])


def mid_range_x2(recent: Recent, now_ms: int, window_ms: int, mid_x2: int) -> int:
    """How far (twice the price) the others' mid ranged over the last ``window_ms``, the
    current mid included."""
    low = high = mid_x2
    before: int | None = None
    for ms, value in recent.mids_x2:
        if ms < now_ms - window_ms:
            before = value  # the mid in effect when the window opened
            continue
        low, high = min(low, value), max(high, value)
    if before is not None:
        low, high = min(low, before), max(high, before)
    return high - low


def mid_sigma_x2(recent: Recent, now_ms: int, horizon_ms: int, window_ms: int) -> int:
    """Standard deviation of the mid over ``horizon_ms`` (twice the price), from the squared
    changes over the last ``window_ms``: exact integers (``isqrt``)."""
    window = window_ms
    squares = 0
    previous: int | None = None
    for ms, value in recent.mids_x2:
        if previous is not None and ms >= now_ms - window:
            squares += (value - previous) ** 2
        previous = value
    if squares == 0 or window <= 0:
        return 0
    return isqrt(squares * horizon_ms // window)
