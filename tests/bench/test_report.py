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
        "| tick-to-order p50 and p99 <= 2x the floor's | p50 9.5 ms, p99 40 ms "
        "(three Redis hops alone: 1.2 / 5.0 ms; 7.9x / 8.0x) | no |"
    ) in text
    assert "dora is 7.9x the floor at p50 and 8.0x at p99." in text
    assert text.endswith("## What limits these numbers\n\n- by hand\n")
    doc.unlink()
    report.write_doc(RESULTS)  # no doc yet: the heading is there for the narrative to follow
    assert doc.read_text().rstrip().endswith("## What limits these numbers")


def throughput(kept: list[bool], paused: bool) -> dict[str, object]:
    steps = [
        {
            "target_deltas_per_s": rate,
            "load_deltas_per_s": rate - 5,
            "book_updates_per_s": rate + 700,
            "ws_messages_per_s": rate + 800,
            "md_lag_ms": 20,
            "targets_lag_ms": 30 if ok else 150,
            "kept_up": ok,
            "usage": {"executor": {"cpu_pct": 20.0, "rss_mb": 60.0}},
        }
        for rate, ok in zip((500, 1000, 3000), kept, strict=False)
    ]
    best = max((s for s in steps if s["kept_up"]), key=lambda s: s["target_deltas_per_s"])
    return {
        "markets": 500,
        "dynamo_paused": paused,
        "steps": steps,
        "max_kept_up_deltas_per_s": best["load_deltas_per_s"],
        "max_kept_up_book_updates_per_s": best["book_updates_per_s"],
    }


def test_throughput_is_reported_with_dynamodb_on_and_off_the_box(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "PERF_DOC", tmp_path / "performance.md")
    results = {
        **RESULTS,
        "throughput": throughput([True, False], paused=False),
        "throughput_dynamo_paused": throughput([True, True, True], paused=True),
    }
    report.write_doc(results)
    text = (tmp_path / "performance.md").read_text()
    assert text.index("## Throughput (500 markets") < text.index("DynamoDB off the box (500")
    assert "| 1000 | 995 | 1700 | 1800 |  |  |  | 20 | 150 | no |" in text
    assert "| 3000 | 2995 | 3700 | 3800 |  |  |  | 20 | 30 | yes |" in text
    assert (
        "| >= 3,000 book updates/s across 500 markets | kept up with 495 churn deltas/s "
        "(1,200 book updates/s in all) with moto on the box; 2,995 deltas/s (3,700 book "
        "updates/s) with DynamoDB off it | only with DynamoDB off the box |"
    ) in text


def test_a_hand_written_section_before_the_narrative_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(
        "# Performance\n\nold\n\n## The REST client: by hand\n\nkept\n\n"
        "## What limits these numbers\n\n- by hand\n"
    )
    monkeypatch.setattr(report, "PERF_DOC", doc)
    report.write_doc(RESULTS)
    text = doc.read_text()
    assert "old" not in text
    assert text.endswith(
        "## The REST client: by hand\n\nkept\n\n## What limits these numbers\n\n- by hand\n"
    )


def test_the_cluster_variant_is_reported_beside_one_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "PERF_DOC", tmp_path / "performance.md")
    single = throughput([True, False], paused=False)
    cluster = {
        **throughput([True, True, False], paused=False),
        "cluster": True,
        "shards": 2,
        "single_max_kept_up_deltas_per_s": single["max_kept_up_deltas_per_s"],
    }
    report.write_doc({**RESULTS, "throughput": single, "throughput_cluster": cluster})
    text = (tmp_path / "performance.md").read_text()
    assert text.index("## Throughput (500 markets") < text.index("Redis Cluster with 2 shards")
    assert "Highest churn kept up: 995/s on the cluster against 495/s on one Redis" in text


def test_each_part_says_when_it_was_measured() -> None:
    results = {
        **RESULTS,
        "latency": {**RESULTS["latency"], "measured_at": "2026-12-07 05:00 UTC"},
        "recovery": {"worst_s": 2.0},  # measured with the whole run
    }
    assert report.runs_line(results) == (
        "Each part's run: latency 2026-12-07 05:00 UTC, recovery 2026-11-24 12:00 UTC."
    )
