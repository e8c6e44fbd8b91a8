"""The invariants of a chaos run, each a pure check over what the run observed.

Every function returns an ``InvariantResult``: what it looked at and one line of evidence per
violation (a time, a market, an order id, a file and line), never the secret it found. The exact
definitions are in docs/reliability.md; the short version is in each docstring.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from sim.chaos.model import (
    CANCEL_ALL,
    FILLS_ONCE,
    INVENTORY_CAP,
    KEPT_QUOTING,
    NO_BAD_BOOK_QUOTES,
    NO_CRASH_LOOP,
    NO_DUPLICATES,
    NO_SECRETS,
    NOTHING_WHILE_HALTED,
    POSITIONS_MATCH,
    FaultKind,
    FaultRecord,
    InvariantResult,
)
from sim.chaos.watch import AccountWatch, Episode

MAX_EVIDENCE = 20


@dataclass(frozen=True, slots=True)
class Window:
    """Orders on ``ticker`` (every market when empty) must not be created in [start, end]."""

    why: str
    ticker: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    fill_id: str
    ticker: str
    signed_count: int  # centi-contracts, + YES / - NO
    ts_ms: int
    post_position: int | None


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_EVIDENCE:
        return lines
    return [*lines[:MAX_EVIDENCE], f"... and {len(lines) - MAX_EVIDENCE} more"]


def _orders_in(order_log: Sequence[Mapping[str, Any]], window: Window) -> list[str]:
    return [
        f"{o['ticker']} {o['side']} {o['client_order_id']} created t={o['created_ms']} "
        f"during {window.why} [{window.start_ms}, {window.end_ms}]"
        for o in order_log
        if window.start_ms <= int(o["created_ms"]) <= window.end_ms
        and (not window.ticker or o["ticker"] == window.ticker)
    ]


# ---- no duplicate orders ---------------------------------------------------------------------


def check_no_duplicates(
    account: AccountWatch, order_log: Sequence[Mapping[str, Any]]
) -> InvariantResult:
    """Never two resting orders of ours on one market side at the exchange (every poll), and no
    ``client_order_id`` twice in the exchange's log of accepted orders."""
    counts = Counter(str(o["client_order_id"]) for o in order_log)
    twice = [f"client_order_id {c} accepted {n} times" for c, n in counts.items() if n > 1]
    return InvariantResult(
        NO_DUPLICATES,
        f"{account.polls:,} polls of resting orders, {len(order_log):,} accepted orders",
        _cap(account.duplicate_side + twice),
    )


# ---- inventory cap -------------------------------------------------------------------------


def check_inventory_cap(
    account: AccountWatch, fills: Sequence[ExchangeFill], cap: int
) -> InvariantResult:
    """No position beyond ``cap`` (centi-contracts) at any poll, nor after any fill (the
    exchange's own post-fill position, or the running sum of the fills of the market)."""
    violations = list(account.over_cap)
    running: dict[str, int] = defaultdict(int)
    worst: dict[str, int] = defaultdict(int)
    for fill in sorted(fills, key=lambda f: (f.ts_ms, f.fill_id)):
        running[fill.ticker] += fill.signed_count
        after = fill.post_position if fill.post_position is not None else running[fill.ticker]
        worst[fill.ticker] = max(worst[fill.ticker], abs(after))
        if abs(after) > cap:
            violations.append(
                f"{fill.ticker} position {after / 100:+.2f} after fill {fill.fill_id} "
                f"t={fill.ts_ms} (cap {cap / 100:.0f})"
            )
    top = max([*worst.values(), *account.max_abs_position.values()], default=0)
    return InvariantResult(
        INVENTORY_CAP,
        f"{account.polls:,} polls, {len(fills):,} fills replayed",
        _cap(violations),
        notes=f"max |position| {top / 100:.0f} of cap {cap / 100:.0f} contracts",
    )


# ---- nothing while halted ------------------------------------------------------------------


def halt_windows(
    faults: Iterable[FaultRecord], self_halts: Iterable[Episode], grace_ms: int
) -> list[Window]:
    """From ``grace_ms`` after each halt (the driver's, recorded with the sim clock right after
    it was issued, and the bot's own seen in ``dora:risk``) until just before its resume."""
    windows = [
        Window(f"halt ({f.detail or 'driver'})", "", f.start_ms + grace_ms, f.end_ms)
        for f in faults
        if f.kind is FaultKind.HALT and f.ok
    ]
    windows += [
        Window(f"bot halt ({e.detail})", "", e.start_ms + grace_ms, e.last_ms)
        for e in self_halts
        if e.last_ms > e.start_ms + grace_ms
    ]
    return windows


def check_nothing_while_halted(
    order_log: Sequence[Mapping[str, Any]], windows: Sequence[Window]
) -> InvariantResult:
    """No order of ours in the exchange's order log created inside a halt window."""
    violations = [line for w in windows for line in _orders_in(order_log, w)]
    halted_s = sum(max(0, w.end_ms - w.start_ms) for w in windows) / 1000
    return InvariantResult(
        NOTHING_WHILE_HALTED,
        f"{len(windows)} halt windows ({halted_s:.0f} s), {len(order_log):,} accepted orders",
        _cap(violations),
    )


# ---- stale, paused, closed books -----------------------------------------------------------


def bad_book_windows(
    faults: Iterable[FaultRecord],
    stale: Mapping[str, Sequence[Episode]],
    *,
    run_end_ms: int,
    stale_grace_ms: int,
    lifecycle_grace_ms: int,
) -> list[Window]:
    """Paused markets from ``lifecycle_grace_ms`` after the pause until just before the resume;
    closed markets from the grace after the close to the end of the run; stale books (the
    bot's own ``stale`` flag, polled) from ``stale_grace_ms`` after the flag was first seen until
    the last poll that still saw it."""
    windows: list[Window] = []
    for f in faults:
        if f.kind is FaultKind.MARKET_PAUSE and f.ok:
            windows.append(Window("pause", f.target, f.start_ms + lifecycle_grace_ms, f.end_ms))
        elif f.kind is FaultKind.MARKET_CLOSE and f.ok:
            windows.append(Window("close", f.target, f.start_ms + lifecycle_grace_ms, run_end_ms))
    for ticker, episodes in stale.items():
        for e in episodes:
            if e.last_ms > e.start_ms + stale_grace_ms:
                windows.append(
                    Window(
                        f"stale book ({e.detail})", ticker, e.start_ms + stale_grace_ms, e.last_ms
                    )
                )
    return windows


def check_no_bad_book_quotes(
    order_log: Sequence[Mapping[str, Any]],
    windows: Sequence[Window],
    account: AccountWatch,
    attempts: Sequence[tuple[int, str, str]],
    *,
    stale_episodes: int,
    stale_grace_ms: int,
) -> InvariantResult:
    """Inside every window: no order of ours accepted on that market (order log); no order of
    ours resting on a paused or closed market (exchange polls); no create or amend even tried
    on a paused or closed market (the executor's own log of refused actions: ``attempts`` are
    (ms, market, kind))."""
    violations = [line for w in windows for line in _orders_in(order_log, w)]
    lifecycle = [w for w in windows if w.why in ("pause", "close")]
    for w in lifecycle:
        resting = [s for s in account.samples(w.start_ms, w.end_ms) if w.ticker in s.tickers]
        if resting:
            violations.append(
                f"{w.ticker}: our orders rested at the exchange {len(resting)} polls during "
                f"{w.why} (first t={resting[0].ms})"
            )
        tried = [a for a in attempts if a[1] == w.ticker and w.start_ms <= a[0] <= w.end_ms]
        violations += [
            f"{w.ticker}: executor tried {k} at t={ms} during {w.why}" for ms, _, k in tried
        ]
    stale_windows = [w for w in windows if w not in lifecycle]
    longest = max((w.end_ms - w.start_ms for w in stale_windows), default=0) + stale_grace_ms
    return InvariantResult(
        NO_BAD_BOOK_QUOTES,
        f"{len(lifecycle)} paused/closed windows, {stale_episodes} stale-book episodes "
        f"({len(stale_windows)} longer than the grace)",
        _cap(violations),
        notes=f"longest stale book {longest / 1000:.1f} s" if stale_windows else "",
    )


def executor_attempts(log_text: str) -> list[tuple[int, str, str]]:
    """(ms, market, kind) of every create/amend the executor logged as refused or failed."""
    found = []
    for line in log_text.splitlines():
        if '"rejected"' not in line and '"action_failed"' not in line:
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(row, dict) or row.get("kind") not in ("place", "amend"):
            continue
        ms = _iso_ms(str(row.get("ts", "")))
        if ms is not None:
            found.append((ms, str(row.get("market", "")), str(row["kind"])))
    return found


def _iso_ms(text: str) -> int | None:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


# ---- positions, fills -------------------------------------------------------------------------


def check_positions_match(ours: Mapping[str, int], theirs: Mapping[str, int]) -> InvariantResult:
    """Every market's position in ``dora:pos:{t}`` equals the exchange's (zero = absent)."""
    tickers = sorted(set(ours) | set(theirs))
    violations = [
        f"{t}: Redis {ours.get(t, 0) / 100:+.2f}, exchange {theirs.get(t, 0) / 100:+.2f}"
        for t in tickers
        if ours.get(t, 0) != theirs.get(t, 0)
    ]
    held = sum(1 for t in tickers if theirs.get(t, 0))
    return InvariantResult(
        POSITIONS_MATCH, f"{len(tickers)} markets, {held} with a position", _cap(violations)
    )


def check_fills_once(exchange_ids: Sequence[str], logged_ids: Sequence[str]) -> InvariantResult:
    """The trade log's fill rows, by ``fill_id``: no id twice, and exactly the exchange's."""
    counts = Counter(logged_ids)
    violations = [f"fill {i} in the trade log {n} times" for i, n in counts.items() if n > 1]
    missing = sorted(set(exchange_ids) - set(counts))
    extra = sorted(set(counts) - set(exchange_ids))
    violations += [f"fill {i} at the exchange, not in the trade log" for i in missing]
    violations += [f"fill {i} in the trade log, not at the exchange" for i in extra]
    return InvariantResult(
        FILLS_ONCE,
        f"{len(exchange_ids):,} exchange fills, {len(logged_ids):,} trade-log fill rows",
        _cap(violations),
    )


# ---- cancel-all --------------------------------------------------------------------------


def check_cancel_all(
    faults: Sequence[FaultRecord],
    account: AccountWatch,
    *,
    bound_ms: int,
    final: tuple[int, str],
    final_halt_ms: int,
    resting_at_end: int,
) -> InvariantResult:
    """After every halt (the driver's and the final one) the exchange shows zero resting orders
    of ours within ``bound_ms``; at the end ``dora cancel-all`` exits 0 and leaves none."""
    violations = []
    took: list[int] = []
    halts = [f.start_ms for f in faults if f.kind is FaultKind.HALT and f.ok] + [final_halt_ms]
    for halt_ms in halts:
        empty = account.first_empty_after(halt_ms)
        if empty is None or empty - halt_ms > bound_ms:
            seen = "never" if empty is None else f"after {empty - halt_ms} ms"
            violations.append(
                f"halt at t={halt_ms}: zero resting orders {seen} (bound {bound_ms} ms)"
            )
        else:
            took.append(empty - halt_ms)
    code, output = final
    if code != 0:
        violations.append(f"dora cancel-all exited {code}: {output.strip()[:200]}")
    if resting_at_end:
        violations.append(f"{resting_at_end} orders resting at the exchange at the end")
    notes = f"halt -> zero resting: max {max(took)} ms" if took else ""
    return InvariantResult(
        CANCEL_ALL, f"{len(halts)} halts + a final dora cancel-all", _cap(violations), notes
    )


# ---- crash loops -----------------------------------------------------------------------------

_EXITED = re.compile(r"exited: (\S+) \((.*?); not expected\)")
_FATAL = re.compile(r"gave up: (\S+) entered FATAL state")


def check_no_crash_loop(
    supervisord_log: str,
    kills: Mapping[str, int],
    down: Mapping[str, Sequence[Episode]],
    *,
    max_down_ms: int,
) -> InvariantResult:
    """supervisord never gave a process up (FATAL); no process was out of RUNNING for longer
    than ``max_down_ms`` at a stretch; and every unexpected exit in supervisord's log was one
    the driver caused (a SIGKILL, at most as many per process as it sent)."""
    violations = [f"{m.group(1)} entered FATAL" for m in _FATAL.finditer(supervisord_log)]
    sigkills: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for m in _EXITED.finditer(supervisord_log):
        if "SIGKILL" in m.group(2):
            sigkills[m.group(1)] += 1
        else:
            other[m.group(1)] += 1
            violations.append(f"{m.group(1)} exited on its own ({m.group(2)})")
    for name, n in sigkills.items():
        if n > kills.get(name, 0):
            violations.append(f"{name}: {n} SIGKILL exits, {kills.get(name, 0)} sent by the driver")
    longest = 0
    for name, episodes in down.items():
        for e in episodes:
            longest = max(longest, e.duration_ms)
            if e.duration_ms > max_down_ms:
                violations.append(
                    f"{name} not RUNNING for {e.duration_ms / 1000:.1f} s from t={e.start_ms} "
                    f"({e.detail.strip()})"
                )
    exits = sum(sigkills.values()) + sum(other.values())
    return InvariantResult(
        NO_CRASH_LOOP,
        f"{exits} unexpected exits in supervisord.log, {sum(kills.values())} kill -9s sent",
        _cap(violations),
        notes=f"longest time not RUNNING {longest / 1000:.1f} s",
    )


# ---- secrets -------------------------------------------------------------------------------


def secret_markers(private_key_pem: str, extra: Iterable[str] = ()) -> list[str]:
    """What must never appear in a log: PEM markers, each base64 line of the key's body, and
    any other secret (a Redis password)."""
    markers = ["PRIVATE KEY-----"]
    for line in private_key_pem.splitlines():
        line = line.strip()
        if len(line) >= 16 and not line.startswith("-----"):
            markers.append(line)
    markers += [s for s in extra if len(s) >= 6]
    return markers


def scan_for_secrets(files: Iterable[Path], markers: Sequence[str]) -> InvariantResult:
    """Every log file, line by line: no marker in any of them (evidence names the file, the
    line number and which marker, never the secret)."""
    violations = []
    scanned = 0
    nbytes = 0
    for path in files:
        if not path.is_file():
            continue
        scanned += 1
        text = path.read_text(errors="replace")
        nbytes += len(text)
        for lineno, line in enumerate(text.splitlines(), 1):
            for index, marker in enumerate(markers):
                if marker in line:
                    what = "a PEM marker" if index == 0 else f"secret #{index}"
                    violations.append(f"{path.name}:{lineno} holds {what}")
    return InvariantResult(
        NO_SECRETS,
        f"{scanned} log files ({nbytes / 1e6:.1f} MB), {len(markers)} markers",
        _cap(violations),
    )


# ---- liveness --------------------------------------------------------------------------------


def check_kept_quoting(
    account: AccountWatch, start_ms: int, end_ms: int, at_least: int
) -> InvariantResult:
    """After the last fault, before the final halt: at some poll at least ``at_least`` markets
    carried a two-sided quote of ours (the bot came back, so the other checks are not vacuous)."""
    samples = account.samples(start_ms, end_ms)
    best = max((s.two_sided for s in samples), default=0)
    violations = (
        []
        if best >= at_least
        else [f"at most {best} two-sided markets after the faults (wanted {at_least})"]
    )
    return InvariantResult(
        KEPT_QUOTING,
        f"{len(samples)} polls after the last fault",
        violations,
        notes=f"up to {best} two-sided markets",
    )
