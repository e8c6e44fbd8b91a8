"""``bench.run strategy_saved`` on a checkout without ``bench/results-strategy.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import bench_strategy
from bench.run import saved_strategy


def test_a_missing_file_keeps_the_strategy_part_results_json_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_strategy, "RESULTS", tmp_path / "results-strategy.json")
    kept = {"hours": 0.5, "markdown": "| a table |"}
    assert saved_strategy(kept) is kept


def test_a_missing_file_and_nothing_kept_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_strategy, "RESULTS", tmp_path / "results-strategy.json")
    with pytest.raises(SystemExit, match=r"python -m bench\.bench_strategy"):
        saved_strategy(None)


def test_a_saved_file_is_taken_with_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results-strategy.json"
    monkeypatch.setattr(bench_strategy, "RESULTS", path)
    monkeypatch.setattr(bench_strategy, "markdown_of", lambda data: f"{len(data)} keys")
    path.write_text(json.dumps({"hours": 0.5, "runs": []}))
    assert saved_strategy({"old": True}) == {"hours": 0.5, "runs": [], "markdown": "2 keys"}
