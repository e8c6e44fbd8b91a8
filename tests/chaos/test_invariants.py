"""Each invariant check on made-up observations: it holds on clean ones and names the evidence
when broken (the end-to-end proof that a broken invariant fails the run is
test_chaos_breaks.py)."""

from __future__ import annotations

from pathlib import Path

from sim.chaos import invariants as inv
from sim.chaos.model import FaultKind, FaultRecord
from sim.chaos.watch import AccountWatch, Episode


def watch() -> AccountWatch:
    return AccountWatch("http://127.0.0.1:1/_sim", "bot", cap=1000)


def account(resting: list[tuple[str, str]], positions: dict[str, str] | None = None) -> dict:
    return {
        "resting_orders": [
            {"ticker": t, "book_side": s, "client_order_id": f"{t}-{s}-{i}"}
            for i, (t, s) in enumerate(resting)
        ],
        "positions": {t: {"position_fp": p} for t, p in (positions or {}).items()},
    }


def order(ticker: str, created_ms: int, coid: str = "") -> dict:
    return {
        "ticker": ticker,
        "side": "bid",
        "client_order_id": coid or f"{ticker}-{created_ms}",
        "created_ms": created_ms,
    }


def test_duplicate_side_and_duplicate_client_order_id() -> None:
    w = watch()
    w.check(account([("A", "bid"), ("A", "ask"), ("B", "bid")]), 1)
    assert inv.check_no_duplicates(w, [order("A", 1), order("B", 2)]).held
    w.check(account([("A", "bid"), ("A", "bid")]), 2)
    result = inv.check_no_duplicates(w, [order("A", 1, "x"), order("A", 3, "x")])
    assert not result.held
    assert any("A bid x2" in v for v in result.violations)
    assert any("client_order_id x accepted 2 times" in v for v in result.violations)


def test_inventory_cap_from_polls_and_from_fills() -> None:
    w = watch()
    w.check(account([], {"A": "10.00"}), 1)
    fills = [
        inv.ExchangeFill("f1", "A", 600, 1, None),
        inv.ExchangeFill("f2", "A", 400, 2, None),
    ]
    assert inv.check_inventory_cap(w, fills, 1000).held
    fills.append(inv.ExchangeFill("f3", "A", 100, 3, None))
    result = inv.check_inventory_cap(w, fills, 1000)
    assert result.violations == ["A position +11.00 after fill f3 t=3 (cap 10)"]
    w.check(account([], {"B": "-12.00"}), 4)
    assert any("B position -12.00" in v for v in inv.check_inventory_cap(w, [], 1000).violations)


def test_nothing_accepted_while_halted_after_the_grace() -> None:
    halts = [FaultRecord(FaultKind.HALT, "", 1_000, 5_000)]
    self_halt = Episode("dora:risk", 10_000, 12_000, "loss limit", 11_750)
    windows = inv.halt_windows(halts, [self_halt], grace_ms=1_000)
    log = [order("A", 1_500), order("A", 5_100), order("B", 10_500)]
    assert inv.check_nothing_while_halted(log, windows).held
    result = inv.check_nothing_while_halted([*log, order("A", 2_500), order("C", 11_500)], windows)
    assert [v.split(" created")[0] for v in result.violations] == ["A bid A-2500", "C bid C-11500"]


def test_no_quote_on_a_paused_closed_or_stale_book() -> None:
    faults = [
        FaultRecord(FaultKind.MARKET_PAUSE, "P", 1_000, 9_000),
        FaultRecord(FaultKind.MARKET_CLOSE, "C", 2_000, 2_000),
    ]
    stale = {"S": [Episode("S", 3_000, 6_000, "seq gap", 5_750)]}
    windows = inv.bad_book_windows(
        faults, stale, run_end_ms=20_000, stale_grace_ms=1_000, lifecycle_grace_ms=3_000
    )
    w = watch()
    w.check(account([("P", "bid")]), 3_000)  # within the grace: fine
    clean = inv.check_no_bad_book_quotes(
        [order("S", 3_500), order("P", 9_500)],
        windows,
        w,
        [],
        stale_episodes=1,
        stale_grace_ms=1_000,
    )
    assert clean.held, clean.violations
    w.check(account([("C", "ask")]), 6_000)
    broken = inv.check_no_bad_book_quotes(
        [order("S", 4_500)],
        windows,
        w,
        [(7_000, "P", "place")],
        stale_episodes=1,
        stale_grace_ms=1_000,
    )
    text = "\n".join(broken.violations)
    assert "S bid S-4500" in text and "stale book (seq gap)" in text
    assert "C: our orders rested" in text
    assert "P: executor tried place at t=7000 during pause" in text


def test_executor_attempts_from_its_json_log() -> None:
    log = "\n".join(
        [
            '{"ts":"2026-01-01T00:00:01.500Z","event":"rejected","market":"A","kind":"place"}',
            '{"ts":"2026-01-01T00:00:02.000Z","event":"rejected","market":"A","kind":"cancel"}',
            '{"ts":"2026-01-01T00:00:03.000Z","event":"action_failed","market":"B","kind":"amend"}',
            "not json rejected",
        ]
    )
    attempts = inv.executor_attempts(log)
    assert [(m, k) for _, m, k in attempts] == [("A", "place"), ("B", "amend")]
    assert attempts[0][0] == 1767225601500


def test_positions_and_fills() -> None:
    assert inv.check_positions_match({"A": 500, "B": 0}, {"A": 500}).held
    assert inv.check_positions_match({"A": 500}, {"A": 400}).violations == [
        "A: Redis +5.00, exchange +4.00"
    ]
    assert inv.check_fills_once(["f1", "f2"], ["f2", "f1"]).held
    bad = inv.check_fills_once(["f1", "f2"], ["f1", "f1", "f3"]).violations
    assert bad == [
        "fill f1 in the trade log 2 times",
        "fill f2 at the exchange, not in the trade log",
        "fill f3 in the trade log, not at the exchange",
    ]


def test_cancel_all_within_the_bound() -> None:
    w = watch()
    w.check(account([("A", "bid")]), 1_000)
    w.check(account([]), 1_400)
    w.check(account([("A", "bid")]), 8_000)
    w.check(account([]), 12_000)
    halts = [FaultRecord(FaultKind.HALT, "", 1_000, 3_000)]
    ok = inv.check_cancel_all(
        halts, w, bound_ms=3_000, final=(0, ""), final_halt_ms=1_100, resting_at_end=0
    )
    assert ok.held and "400 ms" in ok.notes
    bad = inv.check_cancel_all(
        halts, w, bound_ms=3_000, final=(1, "left 2"), final_halt_ms=8_000, resting_at_end=2
    )
    assert len(bad.violations) == 3


def test_crash_loops_from_supervisord_log_and_states() -> None:
    log = "\n".join(
        [
            "WARN exited: executor (terminated by SIGKILL; not expected)",
            "WARN exited: fills (terminated by SIGKILL; not expected)",
            "INFO exited: risk (exit status 0; expected)",
        ]
    )
    down = {"executor": [Episode("executor", 0, 1_000, "BACKOFF", 900)]}
    assert inv.check_no_crash_loop(log, {"executor": 1, "fills": 1}, down, max_down_ms=15_000).held
    log += "\nWARN exited: strategy (exit status 1; not expected)\nINFO gave up: strategy entered FATAL state, too many start retries too quickly"
    down["strategy"] = [Episode("strategy", 0, 30_000, "BACKOFF FATAL", 29_500)]
    result = inv.check_no_crash_loop(log, {"executor": 1}, down, max_down_ms=15_000)
    text = "\n".join(result.violations)
    assert "strategy entered FATAL" in text
    assert "strategy exited on its own (exit status 1)" in text
    assert "fills: 1 SIGKILL exits, 0 sent by the driver" in text
    assert "strategy not RUNNING for 30.0 s" in text


def test_secret_scan_names_file_and_line_never_the_secret(tmp_path: Path) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAbcdefghijklmnopqrstu\n-----END PRIVATE KEY-----\n"
    markers = inv.secret_markers(pem, ["hunter2-redis"])
    (tmp_path / "clean.log").write_text('{"event": "ok"}\n')
    assert inv.scan_for_secrets([tmp_path / "clean.log"], markers).held
    (tmp_path / "leak.log").write_text(
        "fine\nkey MC4CAQAwBQYDK2VwBCIEIAbcdefghijklmnopqrstu\npass hunter2-redis\n"
    )
    result = inv.scan_for_secrets(sorted(tmp_path.glob("*.log")), markers)
    assert result.violations == ["leak.log:2 holds secret #1", "leak.log:3 holds secret #2"]
    assert "MC4CAQ" not in "".join(result.violations)
