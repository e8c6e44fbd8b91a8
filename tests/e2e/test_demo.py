"""`dora demo --headless --duration 60`, as a new user would run it (issue 7)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.procs import REPO

DEMO = [sys.executable, "-m", "cli.main", "demo"]


@pytest.mark.slow
def test_headless_demo_runs_clean_and_leaves_nothing_resting() -> None:
    proc = subprocess.run(
        # no pauses: on a Thursday at 03:00-05:00 ET the weekly pause would keep it from quoting
        [*DEMO, "--headless", "--duration", "60", "--pause-schedule", "none"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\ndemo summary:", summary)
    for key in (
        "duration_s",
        "markets",
        "orders_placed",
        "orders_cancelled",
        "fills",
        "contracts_traded",
        "net_pnl_dollars",
        "max_abs_inventory",
        "api_429s",
        "errors",
        "resting_orders_at_end",
    ):
        assert key in summary, key
    assert summary["orders_placed"] > 0 and summary["fills"] > 0
    assert summary["errors"] == 0 and summary["api_429s"] == 0
    assert summary["resting_orders_at_end"] == 0
    assert json.loads((REPO / "var" / "demo-summary.json").read_text()) == summary
    assert not (REPO / "var" / "demo.json").exists()
