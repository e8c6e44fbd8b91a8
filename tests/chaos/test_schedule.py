"""The fault schedule: seeded, complete, spaced, and clear of halts for kills."""

from __future__ import annotations

import itertools
import random

import pytest

from cli.devstack import SERVICES
from sim.chaos.model import FaultKind
from sim.chaos.schedule import KILL_CLEAR_OF_HALT_S, MEASURED, ONCE, build_schedule

TICKERS = [f"M{i}" for i in range(50)]


def plan(phase_s: float, seed: int = 1) -> list:
    return build_schedule(phase_s, random.Random(seed), tickers=TICKERS, processes=SERVICES)


@pytest.mark.parametrize("phase_s", [45.0, 60.0, 570.0])
def test_every_kind_of_fault_at_least_once(phase_s: float) -> None:
    kinds = {f.kind for f in plan(phase_s)}
    assert kinds == set(FaultKind)


def test_same_seed_same_schedule_and_another_seed_another() -> None:
    assert plan(570.0, seed=4) == plan(570.0, seed=4)
    assert plan(570.0, seed=4) != plan(570.0, seed=5)


def test_one_close_many_rounds_in_a_long_run() -> None:
    faults = plan(570.0)
    assert sum(f.kind is FaultKind.MARKET_CLOSE for f in faults) == 1
    # the first round carries the long faults of issues 18-20 too (so the second round may be
    # cut short of a halt; a longer run has many: below)
    assert sum(f.kind in (FaultKind.HALT, FaultKind.TIGHT_RESUME) for f in faults) >= 2
    # every few seconds, outside the measured faults
    assert sum(f.kind is FaultKind.KILL9 for f in faults) >= 45
    closed = next(f.target for f in faults if f.kind is FaultKind.MARKET_CLOSE)
    assert all(f.target != closed for f in faults if f.kind is FaultKind.MARKET_PAUSE)


def test_episodic_faults_do_not_overlap_and_kills_keep_clear_of_halts() -> None:
    faults = plan(570.0)
    episodic = [f for f in faults if f.kind is not FaultKind.KILL9]
    for a, b in itertools.pairwise(episodic):
        assert a.at_s + a.duration_s < b.at_s
    before, after = KILL_CLEAR_OF_HALT_S
    for halt in (f for f in faults if f.kind in MEASURED):
        for kill in (f for f in faults if f.kind is FaultKind.KILL9):
            assert not halt.at_s - before <= kill.at_s <= halt.at_s + halt.duration_s + after


def test_only_the_kinds_asked_for() -> None:
    faults = build_schedule(
        30.0, random.Random(0), tickers=TICKERS, processes=SERVICES, kinds={FaultKind.HALT}
    )
    assert {f.kind for f in faults} == {FaultKind.HALT}


def test_the_long_faults_come_once_and_the_daily_loss_breach_last() -> None:
    faults = plan(1500.0)
    for kind in ONCE:
        assert sum(f.kind is kind for f in faults) == 1, kind
    assert sum(f.kind is FaultKind.HALT for f in faults) >= 3  # the short ones keep coming
    episodic = [f for f in faults if f.kind is not FaultKind.KILL9]
    assert episodic[-1].kind is FaultKind.DAILY_LOSS
    # the exchange's pause opens the phase (it is in the exchange's schedule from the start)
    assert (episodic[0].at_s, episodic[0].kind) == (0.0, FaultKind.EXCHANGE_PAUSE)
    assert sum(f.kind is FaultKind.DAILY_LOSS for f in faults) == 1
