"""The ``make bench`` report: tables regenerated, the hand-written narrative kept."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.report as report

RESULTS = {
    "machine": {"date": "2026-11-24 12:00 UTC", "cpus": 2, "python": "3.11.7"},
    "latency": {
        "p50_ms": 9.5,
        "p99_ms": 40.0,
        "max_ms": 41.0,
        "samples": 120,
        "floor_p50_ms": 1.2,
        "floor_p99_ms": 5.0,
        "floor_samples": 4000,
        "stages": {"marketdata": {"p50_ms": 0.2, "p99_ms": 1.0}},
    },
}


def test_tables_are_rewritten_and_the_narrative_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nold table\n\n## What limits these numbers\n\n- by hand\n")
    monkeypatch.setattr(report, "PERF_DOC", doc)
    report.write_doc(RESULTS)
    text = doc.read_text()
    assert "old table" not in text
    assert "| WS frame -> order request sent | 9.5 | 40.0 | 41.0 | 120 |" in text
    assert "| marketdata: frame received -> book published | 0.2 | 1.0 |" in text
    assert (
        "| tick-to-order p50 <= 1 ms, p99 <= 5 ms | p50 9.5 ms, p99 40 ms "
        "(three Redis hops alone: 1.2 / 5.0 ms) | no |"
    ) in text
    assert text.endswith("## What limits these numbers\n\n- by hand\n")
    doc.unlink()
    report.write_doc(RESULTS)  # no doc yet: the heading is there for the narrative to follow
    assert doc.read_text().rstrip().endswith("## What limits these numbers")
