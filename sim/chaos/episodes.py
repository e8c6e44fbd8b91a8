"""The invariants of the faults of issues 18-20, each a pure check over what the run observed.

- ``check_redis_outage``: from 10 s into every Redis freeze to its end, nothing of ours rests at
  the exchange (every poll); after it, quoting again (a two-sided market count) within the
  recovery time;
- ``check_daily_loss_halt``: when the driver made the marks cross a tight ``max_daily_loss`` (a
  collapsed book under our position), ``dora:risk`` shows halted with a daily-loss reason within
  ``bound_ms``;
- ``check_pause``: no create or amend refused for the exchange's pause (the simulator's own
  count), nothing of ours resting at any poll during the pause, and quoting again after it;
- ``check_data_loss``: after Redis lost its data (flushed, or restarted empty), Redis' positions
  equal the exchange's within 30 s and still 10 s after that, and quoting again;
- ``check_one_executor``: the second executor's requests (seen by a proxy in front of it) hold no
  write at all: no create, amend, decrease or cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sim.chaos.model import (
    DAILY_LOSS_HALT,
    DATA_LOSS,
    ONE_EXECUTOR,
    PAUSE,
    REDIS_OUTAGE,
    FaultKind,
    FaultRecord,
    InvariantResult,
)
from sim.chaos.watch import AccountSample, Episode

OUTAGE_CANCEL_BY_MS = 10_000
QUOTING_AGAIN_MS = 20_000
POSITIONS_WITHIN_MS = 30_000
STILL_EQUAL_AFTER_MS = 10_000
STILL_EQUAL_SLACK_MS = 4_000  # fills in flight: one equal reading in this window after the 10 s


def _quoting_again(
    samples: Sequence[AccountSample], after_ms: int, within_ms: int, at_least: int
) -> int | None:
    """ms from ``after_ms`` to the first poll with ``at_least`` two-sided markets, or None."""
    for s in samples:
        if after_ms <= s.ms <= after_ms + within_ms and s.two_sided >= at_least:
            return s.ms - after_ms
    return None


def check_redis_outage(
    faults: Sequence[FaultRecord], samples: Sequence[AccountSample], *, at_least: int
) -> InvariantResult:
    violations = []
    cleared: list[int] = []
    back: list[int] = []
    freezes = [f for f in faults if f.kind is FaultKind.REDIS_FREEZE and f.ok]
    for f in freezes:
        checked = [s for s in samples if f.start_ms + OUTAGE_CANCEL_BY_MS <= s.ms <= f.end_ms]
        resting = [s for s in checked if s.resting]
        if resting:
            violations.append(
                f"freeze at t={f.start_ms}: {max(s.resting for s in resting)} orders resting "
                f"{(resting[0].ms - f.start_ms) / 1000:.1f} s in ({len(resting)} of "
                f"{len(checked)} polls)"
            )
        first_empty = next((s.ms for s in samples if s.ms >= f.start_ms and not s.resting), None)
        if first_empty is not None and first_empty <= f.end_ms:
            cleared.append(first_empty - f.start_ms)
        took = _quoting_again(samples, f.end_ms, QUOTING_AGAIN_MS, at_least)
        if took is None:
            violations.append(
                f"freeze at t={f.start_ms}: fewer than {at_least} two-sided markets within "
                f"{QUOTING_AGAIN_MS / 1000:.0f} s of SIGCONT"
            )
        else:
            back.append(took)
    notes = []
    if cleared:
        notes.append(f"zero resting after {max(cleared) / 1000:.1f} s at most")
    if back:
        notes.append(f"two-sided again {max(back) / 1000:.1f} s after SIGCONT at most")
    return InvariantResult(
        REDIS_OUTAGE, f"{len(freezes)} freezes", violations, notes="; ".join(notes)
    )


@dataclass(frozen=True, slots=True)
class LossCrossing:
    """The driver made the marks cross the daily loss limit at ``ms`` (a book collapsed under a
    position); ``detail`` says how."""

    ms: int
    detail: str


def check_daily_loss_halt(
    crossings: Sequence[LossCrossing], halts: Sequence[Episode], *, bound_ms: int
) -> InvariantResult:
    violations = []
    took: list[int] = []
    for c in crossings:
        match = [
            h
            for h in halts
            if "daily loss" in h.detail
            and h.start_ms <= c.ms + bound_ms
            and (h.end_ms is None or h.end_ms >= c.ms)
        ]
        if not match:
            seen = [f"t={h.start_ms} {h.detail[:60]}" for h in halts if h.start_ms >= c.ms][:2]
            violations.append(
                f"marks crossed the limit at t={c.ms} ({c.detail}): no daily-loss halt within "
                f"{bound_ms} ms" + (f" (halts seen: {seen})" if seen else "")
            )
        else:
            took.append(max(0, match[0].start_ms - c.ms))
    return InvariantResult(
        DAILY_LOSS_HALT,
        f"{len(crossings)} breaches by marks",
        violations,
        notes=f"halted {max(took)} ms after the crossing at most" if took else "",
    )


def check_pause(
    faults: Sequence[FaultRecord],
    samples: Sequence[AccountSample],
    refused: Mapping[int, int],
    *,
    at_least: int,
) -> InvariantResult:
    """``refused``: for each pause (by its start), the simulator's count of creates and amends
    refused because trading was paused, over the pause."""
    violations = []
    pauses = [f for f in faults if f.kind is FaultKind.EXCHANGE_PAUSE and f.ok]
    back: list[int] = []
    ahead: list[int] = []
    for f in pauses:
        before = [s for s in samples if s.ms < f.start_ms]
        last_resting = next((s.ms for s in reversed(before) if s.resting), None)
        if last_resting is not None:
            ahead.append(f.start_ms - last_resting)
        n = refused.get(f.start_ms, 0)
        if n:
            violations.append(f"pause at t={f.start_ms}: {n} creates/amends refused for it")
        during = [s for s in samples if f.start_ms <= s.ms < f.end_ms and s.resting]
        if during:
            violations.append(
                f"pause at t={f.start_ms}: our orders rested during it ({len(during)} polls, "
                f"first t={during[0].ms})"
            )
        took = _quoting_again(samples, f.end_ms, QUOTING_AGAIN_MS, at_least)
        if took is None:
            violations.append(f"pause at t={f.start_ms}: not quoting again after it")
        else:
            back.append(took)
    notes = [f"quotes gone {min(ahead) / 1000:.1f} s before it"] if ahead else []
    if back:
        notes.append(f"two-sided again {max(back) / 1000:.1f} s after it at most")
    return InvariantResult(PAUSE, f"{len(pauses)} pauses", violations, notes="; ".join(notes))


@dataclass(frozen=True, slots=True)
class PositionsReading:
    """One comparison of Redis' positions with the exchange's after a data loss."""

    ms: int
    equal: bool
    detail: str = ""  # the first differences when not equal


def check_data_loss(
    readings: Mapping[int, Sequence[PositionsReading]],
    faults: Sequence[FaultRecord],
    samples: Sequence[AccountSample],
    *,
    at_least: int,
) -> InvariantResult:
    """``readings``: by the fault's start, the comparisons made after it (about every second)."""
    violations = []
    kinds = (FaultKind.REDIS_FLUSH, FaultKind.REDIS_WIPE)
    losses = [f for f in faults if f.kind in kinds and f.ok]
    equal_after: list[int] = []
    for f in losses:
        rows = readings.get(f.start_ms, [])
        first = next((r for r in rows if r.equal), None)
        if first is None or first.ms - f.start_ms > POSITIONS_WITHIN_MS:
            last = next((r.detail for r in reversed(rows) if not r.equal), "no reading")
            violations.append(
                f"{f.kind.value} at t={f.start_ms}: positions not equal within "
                f"{POSITIONS_WITHIN_MS / 1000:.0f} s ({last})"
            )
            continue
        equal_after.append(first.ms - f.start_ms)
        later = [
            r
            for r in rows
            if first.ms + STILL_EQUAL_AFTER_MS
            <= r.ms
            <= first.ms + STILL_EQUAL_AFTER_MS + STILL_EQUAL_SLACK_MS
        ]
        if not any(r.equal for r in later):
            detail = later[0].detail if later else "no reading then"
            violations.append(
                f"{f.kind.value} at t={f.start_ms}: equal at t={first.ms}, not 10 s later "
                f"({detail})"
            )
        if _quoting_again(samples, f.start_ms, POSITIONS_WITHIN_MS, at_least) is None:
            violations.append(f"{f.kind.value} at t={f.start_ms}: not quoting again in 30 s")
    return InvariantResult(
        DATA_LOSS,
        f"{len(losses)} data losses",
        violations,
        notes=f"equal after {max(equal_after) / 1000:.1f} s at most" if equal_after else "",
    )


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    ms: int
    method: str
    path: str
    status: int


def is_write(r: ProxiedRequest) -> bool:
    return r.method not in ("GET", "HEAD", "OPTIONS") and "/portfolio/" in r.path


def check_one_executor(
    strays: Mapping[int, Sequence[ProxiedRequest]], faults: Sequence[FaultRecord]
) -> InvariantResult:
    """``strays``: by the fault's start, every request the second executor sent."""
    violations = []
    runs = [f for f in faults if f.kind is FaultKind.STRAY_EXECUTOR and f.ok]
    requests = 0
    for f in runs:
        sent = strays.get(f.start_ms, [])
        requests += len(sent)
        writes = [r for r in sent if is_write(r)]
        if writes:
            first = writes[0]
            violations.append(
                f"second executor at t={f.start_ms} wrote {len(writes)} times "
                f"(first t={first.ms}: {first.method} {first.path} -> {first.status})"
            )
    return InvariantResult(
        ONE_EXECUTOR,
        f"{len(runs)} second executors, {requests} requests from them",
        violations,
    )
