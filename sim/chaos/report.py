"""The table a chaos run prints: faults injected, then invariants held (Markdown, so that
docs/reliability.md can hold it as printed)."""

from __future__ import annotations

from collections import defaultdict

from sim.chaos.driver import ChaosResult
from sim.chaos.model import FaultKind, FaultRecord


def _fault_rows(faults: list[FaultRecord]) -> list[tuple[str, int, int, str, str]]:
    by_kind: dict[FaultKind, list[FaultRecord]] = defaultdict(list)
    for f in faults:
        by_kind[f.kind].append(f)
    rows = []
    for kind in FaultKind:
        records = by_kind.get(kind, [])
        ok = [f for f in records if f.ok]
        failed = len(records) - len(ok)
        seconds = sum(max(0, f.end_ms - f.start_ms) for f in ok) / 1000
        targets = sorted({f.target for f in ok if f.target})
        if kind is FaultKind.KILL9:
            counts = {t: sum(1 for f in ok if f.target == t) for t in targets}
            detail = ", ".join(f"{t} x{n}" for t, n in counts.items())
        else:
            details = sorted({f.detail for f in ok if f.detail})
            detail = ", ".join([*targets, *details])
        rows.append((kind.value, len(ok), failed, f"{seconds:.0f}" if seconds else "-", detail))
    return rows


def render(result: ChaosResult) -> str:
    o = result.options
    lines = [
        f"chaos run: {result.duration_s:.0f} s, {o.markets} markets, seed {o.seed}",
        "",
        "| fault | injected | failed | seconds | detail |",
        "|---|---:|---:|---:|---|",
    ]
    for name, n, failed, seconds, detail in _fault_rows(result.faults):
        lines.append(f"| {name} | {n} | {failed} | {seconds} | {detail[:120]} |")
    lines += ["", "| invariant | held | checked | evidence / measured |", "|---|---|---|---|"]
    for r in result.invariants:
        evidence = "; ".join(r.violations[:3]) if r.violations else r.notes
        mark = "yes" if r.held else f"**NO** ({len(r.violations)})"
        lines.append(f"| {r.name} | {mark} | {r.checks} | {evidence[:300]} |")
    stats = ", ".join(f"{k} {v}" for k, v in result.stats.items())
    lines += ["", f"run: {stats}"]
    broken = [r for r in result.invariants if not r.held]
    if broken:
        lines.append("")
        for r in broken:
            lines.append(f"VIOLATED: {r.name}")
            lines += [f"  - {v}" for v in r.violations]
    lines.append("")
    lines.append("every invariant held" if result.ok else f"{len(broken)} invariant(s) violated")
    return "\n".join(lines)
