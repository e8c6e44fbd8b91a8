"""The strategy benchmark's statistics: paired differences with a 95 % t-interval."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import bench.report as report
from bench.bench_strategy import (
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    paired,
    paired_table,
    seed_range,
)
from bench.stats import paired_diff, t_975


def test_t_quantiles_and_a_hand_computed_interval() -> None:
    assert t_975(19) == 2.093 and t_975(1) == 12.706
    assert t_975(35) == 2.042  # between table rows: the smaller df, a wider interval
    assert t_975(10_000) == 1.980
    with pytest.raises(ValueError):
        t_975(0)
    # diffs 1, 2, 3, 4: mean 2.5, sd 1.291, se 0.6455, t(3) = 3.182
    diff = paired_diff([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0])
    assert diff.mean == 2.5 and diff.wins == 4 and diff.above_zero
    assert diff.low == pytest.approx(2.5 - 3.182 * 1.2909944 / 2, abs=1e-6)
    assert diff.high == pytest.approx(2.5 + 3.182 * 1.2909944 / 2, abs=1e-6)
    with pytest.raises(ValueError):
        paired_diff([1.0], [0.0])


def test_the_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = random.Random(11)
    covered = 0
    for _ in range(2000):
        a = [rng.gauss(0.3, 1.0) for _ in range(20)]
        b = [rng.gauss(0.0, 1.0) for _ in range(20)]
        d = paired_diff(a, b)
        covered += d.low <= 0.3 <= d.high
    assert 0.93 <= covered / 2000 <= 0.97


def test_the_seed_sets_are_apart_and_big_enough() -> None:
    assert len(TUNING_SEEDS) >= 20 and len(HELD_OUT_SEEDS) >= 20
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    assert seed_range("3-5") == (3, 4, 5) and seed_range("1,7") == (1, 7)


def run(seed: int, dora: str, naive: str, a_s: str) -> dict[str, object]:
    return {
        "scenario": "calm",
        "seed": seed,
        "strategies": {
            "dora": {"net_pnl_dollars": dora},
            "naive": {"net_pnl_dollars": naive},
            "avellaneda_stoikov": {"net_pnl_dollars": a_s},
        },
    }


def test_paired_stats_and_their_table() -> None:
    runs = [run(2, "3.0", "1.0", "5.0"), run(1, "2.0", "1.0", "4.0"), run(3, "4.0", "1.0", "6.0")]
    stats = paired(runs)  # type: ignore[arg-type]
    assert stats["seeds"] == [1, 2, 3]
    assert stats["mean_net_pnl_dollars"] == {"dora": 3.0, "naive": 1.0, "avellaneda_stoikov": 5.0}
    assert stats["dora_minus_naive"]["mean"] == 2.0 and stats["dora_minus_naive"]["wins"] == 3
    assert stats["dora_minus_avellaneda_stoikov"]["mean"] == -2.0
    assert stats["dora_minus_avellaneda_stoikov"]["win_share"] == 0.0
    table = paired_table({"calm": {"held_out": stats}})
    assert "| calm | held out 1-3 | 3.00 | 1.00 | 5.00 | +2.00 [" in table
    assert "| 3/3 |" in table and "| 0/3 |" in table


def test_the_report_judges_the_goals_on_the_held_out_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "PERF_DOC", tmp_path / "performance.md")
    goals = {
        "calm": {
            "dora_net_pnl_positive": True,
            "dora_beats_naive": True,
            "dora_beats_avellaneda_stoikov": True,
            "dora_beats_naive_95": False,
            "dora_beats_avellaneda_stoikov_95": True,
            "naive_net_pnl_negative": False,
        },
        "sports_live": {
            "dora_net_pnl_positive": True,
            "dora_beats_naive": True,
            "dora_beats_avellaneda_stoikov": True,
            "dora_beats_naive_95": True,
            "dora_beats_avellaneda_stoikov_95": True,
            "naive_net_pnl_negative": True,
        },
    }
    strategy = {
        "hours": 0.5,
        "tuning_seeds": [1, 2],
        "held_out_seeds": [1001, 1002],
        "elapsed_s": 9.0,
        "goals": goals,
        "markdown": "| table |",
    }
    machine = {"date": "2026-11-24 12:00 UTC", "cpus": 2, "python": "3.11.7"}
    report.write_doc({"machine": machine, "strategy": strategy})
    text = (tmp_path / "performance.md").read_text()
    assert "tuning seeds 1-2" in text and "held-out seeds 1001-1002 (never tuned on)" in text
    assert (
        "| dora ahead of naive and A-S, 95 % interval above 0 (held out) | not on calm (naive) | no |"
        in text
    )
    assert "naive loses on sports_live; dora positive on sports_live | yes |" in text
