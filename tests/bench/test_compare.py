"""``python -m bench.compare``: this run beside an earlier one, put into the doc between its
markers (replaced, never appended twice)."""

from __future__ import annotations

from pathlib import Path

from bench.compare import BEGIN, END, put_in_doc, section

BEFORE = {
    "machine": {"date": "2026-11-25 01:05 UTC"},
    "latency": {"p50_ms": 3.7, "p99_ms": 17.9, "floor_p50_ms": 1.1, "floor_p99_ms": 4.8},
    "throughput": {"max_kept_up_deltas_per_s": 1984},
    "recovery": {"seconds": {"executor": 1.29}},
    "strategy": {
        "seeds": [1, 2],
        "hours": 1.0,
        "mean_over_seeds": [{"scenario": "calm", "strategy": "dora", "net_pnl_dollars": "106.2"}],
    },
}
NOW = {
    "machine": {"date": "2026-12-06 02:00 UTC"},
    "latency": {"p50_ms": 4.0, "p99_ms": 12.0, "floor_p50_ms": 2.0, "floor_p99_ms": 6.0},
    "throughput": {"max_kept_up_deltas_per_s": 0},
    "throughput_cluster": {"max_kept_up_deltas_per_s": 2500},
    "recovery": {"seconds": {"executor": 0.9}},
}


def test_the_section_sets_each_figure_beside_the_previous_one() -> None:
    text = section(BEFORE, NOW, "abc123")
    assert "| ratio to the floor, p50 | 3.4x | 2.0x |" in text
    assert "| tick-to-order p99 ms | 17.90 | 12.00 |" in text
    assert "one Redis, moto on the box | 1,984 | none (first step fell behind) |" in text
    assert "Redis Cluster, two shards | not run | 2,500 |" in text
    assert "| recovery after kill -9, executor s | 1.29 | 0.90 |" in text
    assert "| calm: dora net PnL $ (mean) | 106.20 | - |" in text


def test_the_doc_carries_one_section_replaced_at_each_run(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nbefore\n")
    put_in_doc(section(BEFORE, NOW, "abc123"), doc)
    put_in_doc(section(BEFORE, BEFORE, "abc123"), doc)
    text = doc.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert text.startswith("# Performance\n\nbefore\n") and "| 1,984 | 1,984 |" in text
