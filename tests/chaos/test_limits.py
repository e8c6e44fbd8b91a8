"""The new invariants of issues 18-20 on made-up observations: each holds on a clean history and
fails, naming the evidence, on a fabricated violating one."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.numbers import MONEY_SCALE, ONE_DOLLAR
from sim.chaos import episodes as ep
from sim.chaos import limits as lim
from sim.chaos.model import FaultKind, FaultRecord
from sim.chaos.watch import AccountSample, Episode

D = MONEY_SCALE  # one dollar of money


def acct(
    positions: dict[str, tuple[str, str]] | None = None,
    orders: list[tuple[str, str, str, str]] | None = None,
) -> dict[str, Any]:
    """positions: ticker -> (position_fp, cost_dollars); orders: (ticker, side, price, count)."""
    return {
        "positions": {
            t: {"position_fp": p, "cost_dollars": c} for t, (p, c) in (positions or {}).items()
        },
        "resting_orders": [
            {
                "ticker": t,
                "book_side": s,
                "yes_price_dollars": price,
                "remaining_count_fp": n,
                "client_order_id": f"{t}{s}{i}",
            }
            for i, (t, s, price, n) in enumerate(orders or [])
        ],
    }


# ---- the account's worst case ----------------------------------------------------------------


def test_worst_case_counts_positions_and_the_opening_part_of_resting_orders() -> None:
    # long 10 YES paid $4; an ask of 4 only closes (no exposure), a bid of 5 at 0.40 adds $2
    a = acct(
        {"A": ("10.00", "4.0000")}, [("A", "ask", "0.5000", "4.00"), ("A", "bid", "0.4000", "5.00")]
    )
    assert lim.account_worst_case(a) == 6 * D
    # short 10 (NO paid $6): an ask of 5 at 0.70 adds 5 x $0.30
    b = acct({"B": ("-10.00", "6.0000")}, [("B", "ask", "0.7000", "5.00")])
    assert lim.account_worst_case(b) == 6 * D + 15 * D // 10
    # no position: a bid of 5 at 0.30 and an ask of 5 at 0.40 both open: 1.50 + 3.00
    c = acct({}, [("C", "bid", "0.3000", "5.00"), ("C", "ask", "0.4000", "5.00")])
    assert lim.account_worst_case(c) == 45 * D // 10


def test_exposure_cap_held_on_clean_polls_and_broken_by_one_over() -> None:
    caps = lim.CapTimeline([(0, 20 * D)])
    samples = [lim.LimitSample(1_000 * i, 15 * D, {}) for i in range(10)]
    assert lim.check_total_exposure(samples, caps).held
    samples.append(lim.LimitSample(20_000, 21 * D, {}))
    result = lim.check_total_exposure(samples, caps)
    assert not result.held
    assert result.violations == ["t=20000 worst case $21.00 > cap $20.00"]


def test_a_lowered_cap_binds_after_the_grace_a_raised_one_at_once() -> None:
    caps = lim.CapTimeline([(0, 100 * D), (10_000, 10 * D), (40_000, 100 * D)])
    assert caps.at(10_500, 2_000) == 100 * D  # just lowered: not yet
    assert caps.at(12_500, 2_000) == 10 * D
    assert caps.at(40_000, 2_000) == 100 * D
    over = [lim.LimitSample(11_000, 50 * D, {}), lim.LimitSample(13_000, 11 * D, {})]
    result = lim.check_total_exposure(over, caps, grace_ms=2_000)
    assert result.violations == ["t=13000 worst case $11.00 > cap $10.00"]


# ---- event worst loss -----------------------------------------------------------------------


E3 = lim.EventInfo("EV", True, ("A", "B", "C"))


def test_exclusive_event_worst_over_which_outcome_wins() -> None:
    # long 10 YES of A ($3) and of B ($4): if A wins, B's $4 is lost and A pays $10 - $3;
    # if none of ours wins (C), both are lost: $7
    a = acct({"A": ("10.00", "3.0000"), "B": ("10.00", "4.0000")})
    assert lim.event_worst_losses(a, [E3]) == {"EV": 7 * D}
    # short 10 of A (NO paid $7) and of B (NO paid $6): if A wins, A's $7 is lost and B's NO
    # pays $10 - $6: a loss of $3 (the same if B wins); if C wins both pay: no loss
    b = acct({"A": ("-10.00", "7.0000"), "B": ("-10.00", "6.0000")})
    assert lim.event_worst_losses(b, [E3]) == {"EV": 3 * D}


def test_non_exclusive_event_is_the_sum_of_each_markets_worst() -> None:
    ev = lim.EventInfo("EV", False, ("A", "B"))
    a = acct(
        {"A": ("10.00", "3.0000")}, [("B", "bid", "0.2000", "5.00"), ("B", "ask", "0.6000", "5.00")]
    )
    # A: NO loses $3; B: YES fills the ask (5 x 0.40 = $2), NO fills the bid ($1): worst $2
    assert lim.event_worst_losses(a, [ev]) == {"EV": 5 * D}


def _brute(account: dict[str, Any], event: lim.EventInfo) -> int:
    """Every outcome (one winner or none) and every subset of resting orders filling."""
    legs = lim._legs(account)
    orders = [
        (t, side, p, n)
        for t in event.tickers
        if t in legs
        for side, book in (("bid", legs[t].bids), ("ask", legs[t].asks))
        for p, n in book
    ]
    worst = 0
    for winner in [None, *event.tickers]:
        for chosen in itertools.product((False, True), repeat=len(orders)):
            pnl = 0
            for t in event.tickers:
                if t not in legs:
                    continue
                leg, yes = legs[t], winner == t
                pays = leg.position > 0 if yes else leg.position < 0
                pnl += (abs(leg.position) * ONE_DOLLAR if pays else 0) - leg.cost
            for (t, side, p, n), fills in zip(orders, chosen, strict=True):
                if not fills:
                    continue
                yes = winner == t
                if side == "bid":  # bought YES at p
                    pnl += (ONE_DOLLAR - p) * n if yes else -p * n
                else:  # sold YES at p
                    pnl += -(ONE_DOLLAR - p) * n if yes else p * n
            worst = max(worst, -pnl)
    return worst


leg = st.tuples(
    st.integers(-10, 10),  # contracts
    st.integers(1, 99),  # average price, cents
    st.lists(
        st.tuples(st.sampled_from(["bid", "ask"]), st.integers(1, 99), st.integers(1, 5)),
        max_size=2,
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(leg, min_size=1, max_size=3))
def test_exclusive_event_loss_equals_a_brute_force_over_outcomes_and_fills(legs: list) -> None:
    tickers = ("A", "B", "C")[: len(legs)]
    positions, orders = {}, []
    for t, (n, cents, resting) in zip(tickers, legs, strict=True):
        if n:
            paid = abs(n) * (cents if n > 0 else 100 - cents)  # cents of money for the contracts
            positions[t] = (f"{n}.00", f"{paid / 100:.4f}")
        orders += [(t, s, f"0.{p:02d}00", f"{c}.00") for s, p, c in resting]
    account = acct(positions, orders)
    event = lim.EventInfo("EV", True, tickers)
    assert lim.event_worst_losses(account, [event]).get("EV", 0) == _brute(account, event)


def test_event_loss_limit_held_and_broken() -> None:
    limits = lim.CapTimeline([(0, 10 * D)])
    ok = [lim.LimitSample(1, 0, {"EV": 9 * D}), lim.LimitSample(2, 0, {"EV": 10 * D})]
    assert lim.check_event_loss(ok, limits, [E3]).held
    bad = [*ok, lim.LimitSample(3, 0, {"EV": 12 * D})]
    result = lim.check_event_loss(bad, limits, [E3])
    assert result.violations == ["t=3 EV worst loss $12.00 > $10.00"]
    assert not lim.check_event_loss(ok, lim.CapTimeline(), [E3]).held  # no limit set: not vacuous


# ---- Redis outage, pause, data loss, daily loss, second executor -----------------------------


def samples(*rows: tuple[int, int, int]) -> list[AccountSample]:
    """(ms, resting, two_sided)"""
    return [AccountSample(ms, n, frozenset(), two) for ms, n, two in rows]


def fault(kind: FaultKind, start: int, end: int) -> FaultRecord:
    return FaultRecord(kind, "", start, end)


def test_redis_outage_nothing_resting_10_s_in_and_quoting_after() -> None:
    freeze = [fault(FaultKind.REDIS_FREEZE, 0, 30_000)]
    clean = samples((1_000, 8, 4), (4_000, 0, 0), (12_000, 0, 0), (29_000, 0, 0), (31_000, 8, 4))
    assert ep.check_redis_outage(freeze, clean, at_least=3).held
    resting = samples((1_000, 8, 4), (12_000, 3, 1), (31_000, 8, 4))
    result = ep.check_redis_outage(freeze, resting, at_least=3)
    assert result.violations == ["freeze at t=0: 3 orders resting 12.0 s in (1 of 1 polls)"]
    silent = samples((1_000, 8, 4), (12_000, 0, 0), (31_000, 2, 1), (60_000, 8, 4))
    assert (
        "within 20 s of SIGCONT" in ep.check_redis_outage(freeze, silent, at_least=3).violations[0]
    )


def test_pause_nothing_refused_nothing_resting_quoting_after() -> None:
    pause = [fault(FaultKind.EXCHANGE_PAUSE, 10_000, 30_000)]
    clean = samples((9_000, 0, 0), (20_000, 0, 0), (32_000, 6, 3))
    assert ep.check_pause(pause, clean, {10_000: 0}, at_least=3).held
    result = ep.check_pause(pause, samples((15_000, 2, 1), (32_000, 6, 3)), {10_000: 4}, at_least=3)
    assert result.violations == [
        "pause at t=10000: 4 creates/amends refused for it",
        "pause at t=10000: our orders rested during it (1 polls, first t=15000)",
    ]


def test_data_loss_positions_equal_within_30_s_and_10_s_later() -> None:
    loss = [fault(FaultKind.REDIS_FLUSH, 0, 0)]
    quoting = samples((20_000, 8, 4))
    R = ep.PositionsReading
    good = [R(5_000, False, "A: Redis -15, exchange -10"), R(8_000, True), R(19_000, True)]
    assert ep.check_data_loss({0: good}, loss, quoting, at_least=3).held
    doubled = [
        R(5_000, False, "A: Redis -15, exchange -10"),
        R(40_000, False, "A: Redis -15, exchange -10"),
    ]
    result = ep.check_data_loss({0: doubled}, loss, quoting, at_least=3)
    assert result.violations == [
        "Redis loses its data (FLUSHALL) at t=0: positions not equal within 30 s "
        "(A: Redis -15, exchange -10)"
    ]
    drifted = [R(8_000, True), R(18_500, False, "B: Redis +5, exchange 0"), R(21_000, False, "x")]
    assert (
        "not 10 s later"
        in ep.check_data_loss({0: drifted}, loss, quoting, at_least=3).violations[0]
    )


def test_daily_loss_breach_must_halt_with_the_reason_within_the_bound() -> None:
    crossing = [ep.LossCrossing(10_000, "A bids gone")]
    halted = [Episode("dora:risk", 11_200, None, "daily loss limit: PnL -$5.10 <= -$5.00")]
    assert ep.check_daily_loss_halt(crossing, halted, bound_ms=2_500).held
    late = [Episode("dora:risk", 14_000, None, "daily loss limit: PnL -$5.10 <= -$5.00")]
    assert not ep.check_daily_loss_halt(crossing, late, bound_ms=2_500).held
    other = [Episode("dora:risk", 10_500, None, "position mismatch in A")]
    assert not ep.check_daily_loss_halt(crossing, other, bound_ms=2_500).held


def test_a_second_executor_that_writes_breaks_it() -> None:
    stray = [fault(FaultKind.STRAY_EXECUTOR, 0, 20_000)]
    P = ep.ProxiedRequest
    reads = [P(1, "GET", "/trade-api/v2/portfolio/orders", 200)]
    assert ep.check_one_executor({0: reads}, stray).held
    writes = [*reads, P(2, "DELETE", "/trade-api/v2/portfolio/events/orders/x", 200)]
    result = ep.check_one_executor({0: writes}, stray)
    assert result.violations == [
        "second executor at t=0 wrote 1 times (first t=2: DELETE "
        "/trade-api/v2/portfolio/events/orders/x -> 200)"
    ]
