"""A broken invariant fails the run: ``python -m sim.chaos`` exits 1 and names it.

The run's hidden ``--sabotage order-while-halted`` places an order straight at the simulator
with the bot's own key 1.5 s into a halt: exactly what "no order accepted while halted" forbids,
whoever sent it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.devstack import REPO
from sim.chaos.model import NOTHING_WHILE_HALTED

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_an_order_while_halted_fails_the_run_and_names_the_invariant(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.chaos",
            "--seconds",
            "25",
            "--markets",
            "4",
            "--seed",
            "3",
            "--warmup-s",
            "5",
            "--faults",
            "halt",
            "--shards",
            "1",
            "--scenario",
            "calm",
            "--sabotage",
            "order-while-halted",
            "--base-dir",
            str(tmp_path / "chaos"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"VIOLATED: {NOTHING_WHILE_HALTED}" in out
    assert "chaos-sabotage-" in out  # the evidence names the order
    assert "1 invariant(s) violated" in out, out
