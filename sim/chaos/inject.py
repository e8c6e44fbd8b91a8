"""The faults of issues 18-20 (the driver plays the older ones itself), and what each records
for its invariant (``sim.chaos.episodes``, ``sim.chaos.limits``).

- Redis frozen: SIGSTOP for the fault's length, then SIGCONT;
- Redis loses its data: ``FLUSHALL`` while trading, or killed and restarted empty on the same port
  (its append-only file deleted); then Redis' positions are compared with the exchange's about
  every second for the fault's length (an observation window);
- the private WebSocket delayed (``delay_private_ws_s``) while takers hit every resting order of
  ours, three times over the delay (``POST /_sim/accounts/{key}/hit``);
- a resume under a tight cap: ``dora halt``, then ``max_total_exposure`` = the exchange's worst
  case + $12, ``dora resume`` 4 s later, the cap put back at the fault's end;
- a book collapses to one side (``POST /_sim/markets/{t}/one_sided``): the market where we hold
  the most, the side that supports our position;
- a second executor: ``services.executor`` on shard 0 outside supervisord, through a recording
  proxy, killed at the fault's end;
- the exchange's maintenance pause, compressed: in ``/exchange/schedule`` from the start (the
  simulator's ``--pause-schedule``), as Kalshi publishes the weekly one; the fault phase starts
  ``PAUSE_LEAD_IN_S`` before it; dora must pull its quotes ``DORA_PAUSE_LEAD_S`` before it;
- a daily loss breach by marks: ``max_daily_loss`` set between today's loss and today's loss plus
  half of what our largest position would lose on a collapse, then that book collapses.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from cli.devstack import REPO, LocalStack
from common.numbers import MONEY_SCALE, format_money, parse_count
from sim.chaos import episodes as ep
from sim.chaos.limits import (
    CapTimeline,
    EventInfo,
    LimitSample,
    account_worst_case,
    check_event_loss,
    check_total_exposure,
    dollars,
)
from sim.chaos.model import FaultKind, FaultRecord, InvariantResult, PlannedFault
from sim.chaos.schedule import PAUSE_S
from sim.chaos.stray import StrayExecutor
from sim.chaos.watch import AccountSample, Episode, Watchers, now_ms

CENT = MONEY_SCALE // 100
TIGHT_HEADROOM = 12 * MONEY_SCALE  # the issue's "positions' exposure + $12"
TIGHT_RESUME_AFTER_S = 4.0
PAUSE_LEAD_S = 5  # DORA_PAUSE_LEAD_S of the chaos stack
HITS_PER_DELAY = 3
DAILY_LOSS_SETTLE_S = 3.0  # config reaches the risk process
DAILY_LOSS_HOLD_S = 8.0  # the collapse lasts this long: the halt must come well inside it

NEW_KINDS = (
    FaultKind.REDIS_FREEZE,
    FaultKind.REDIS_FLUSH,
    FaultKind.REDIS_WIPE,
    FaultKind.PRIVATE_DELAY,
    FaultKind.TIGHT_RESUME,
    FaultKind.ONE_SIDED,
    FaultKind.STRAY_EXECUTOR,
    FaultKind.EXCHANGE_PAUSE,
    FaultKind.DAILY_LOSS,
)


class Injector:
    def __init__(
        self,
        stack: LocalStack,
        watchers: Watchers,
        *,
        shards: int,
        base_cap: int,
        base_daily_loss: str,
        cli: Callable[..., tuple[int, str]],
        redis_positions: Callable[[], dict[str, int]],
        log: Callable[[str], None],
    ) -> None:
        self.stack = stack
        self.w = watchers
        self.shards = shards
        self.base_cap = base_cap
        self.cli = cli
        self.redis_positions = redis_positions
        self.log = log
        self.caps = CapTimeline([(0, base_cap)])
        self.event_limits = CapTimeline()  # max_event_loss, when dora knows it
        self.halts: list[FaultRecord] = []  # the tight resume's halts, for the halt checks
        self.crossings: list[ep.LossCrossing] = []
        self.refused: dict[int, int] = {}
        self.readings: dict[int, list[ep.PositionsReading]] = {}
        self.strays: dict[int, list[ep.ProxiedRequest]] = {}
        self._stray: StrayExecutor | None = None
        self._threads: list[threading.Thread] = []
        self._refused_before = 0
        self._daily_loss_base = base_daily_loss

    # ---- start and end of each fault -----------------------------------------------------------

    def start(self, fault: PlannedFault) -> FaultRecord:
        kind, start = fault.kind, now_ms()
        end = start + int(fault.duration_s * 1000)
        record = FaultRecord(kind, fault.target, start, end)
        if kind is FaultKind.REDIS_FREEZE:
            self.stack.pause_redis()
        elif kind is FaultKind.REDIS_FLUSH:
            r = redis.Redis.from_url(self.stack.redis_url)
            try:
                r.flushall()
            finally:
                r.close()
            self._compare_positions(record, fault.duration_s)
        elif kind is FaultKind.REDIS_WIPE:
            port = self.stack.redis_port
            self.stack.stop_redis(kill=True)
            shutil.rmtree(self.stack.base / "redis", ignore_errors=True)
            self.stack.start_redis(port=port)
            record.detail = "AOF deleted"
            self._compare_positions(record, fault.duration_s)
        elif kind is FaultKind.PRIVATE_DELAY:
            self.stack.sim_post("/faults", {"delay_private_ws_s": fault.duration_s})
            hit = self._hit()
            record.detail = f"{fault.duration_s:.0f} s"
            self._later(
                [
                    fault.duration_s * (i + 1) / (HITS_PER_DELAY + 1)
                    for i in range(HITS_PER_DELAY - 1)
                ],
                self._hit,
            )
            self.log(f"    takers hit {hit} orders of ours")
        elif kind is FaultKind.TIGHT_RESUME:
            self._tight_resume(record)
        elif kind is FaultKind.ONE_SIDED:
            ticker, side = self._largest_position(fault.target)
            self.stack.sim_post(
                f"/markets/{ticker}/one_sided", {"side": side, "for_s": fault.duration_s}
            )
            record.target, record.detail = ticker, f"{side}s gone"
        elif kind is FaultKind.STRAY_EXECUTOR:
            self._stray = StrayExecutor(
                self.stack.env(),
                self.stack.sim_url,
                self.stack.var_dir / "log" / "executor-stray.log",
                shard=0,
                shards=self.shards,
            )
            record.detail = f"pid {self._stray.start(REPO)}, shard 0 of {self.shards}"
        elif kind is FaultKind.EXCHANGE_PAUSE:  # published from the start: see pause_window
            self._refused_before = self._refused()
            record.start_ms, record.end_ms = self.pause_window()
            record.detail = f"in the schedule since start, {PAUSE_S:.0f} s"
        elif kind is FaultKind.DAILY_LOSS:
            self._daily_loss(record, fault.duration_s)
        return record

    def end(self, fault: PlannedFault, record: FaultRecord) -> None:
        kind = fault.kind
        if kind is FaultKind.REDIS_FREEZE:
            self.stack.resume_redis()
            record.end_ms = now_ms()
        elif kind is FaultKind.TIGHT_RESUME:
            self._set_global("max_total_exposure", self.base_cap)
            self.caps.set(now_ms(), self.base_cap)
            record.end_ms = now_ms()
        elif kind is FaultKind.STRAY_EXECUTOR and self._stray is not None:
            self.strays[record.start_ms] = self._stray.kill()
            self._stray = None
            record.end_ms = now_ms()
        elif kind is FaultKind.EXCHANGE_PAUSE:
            self.refused[record.start_ms] = self._refused() - self._refused_before
        elif kind is FaultKind.DAILY_LOSS:
            code, out = self.cli("config", "set", f"max_daily_loss={self._daily_loss_base}")
            resumed, _ = self.cli("resume", "--reason", "chaos: daily loss checked")
            if code != 0:
                record.ok, record.detail = False, f"config set failed: {out[:200]}"
            self.log(f"    max_daily_loss back to {self._daily_loss_base}, resume exit {resumed}")
        else:
            record.end_ms = now_ms()

    def clear(self) -> None:
        """The end of the run: nothing of ours left behind."""
        with contextlib.suppress(Exception):
            self.stack.resume_redis()
        if self._stray is not None:
            self._stray.kill()
            self._stray = None
        for thread in self._threads:
            thread.join(60)

    # ---- the invariants -----------------------------------------------------------------------

    def results(
        self,
        faults: Sequence[FaultRecord],
        samples: Sequence[AccountSample],
        limit_samples: Sequence[LimitSample],
        events: Sequence[EventInfo],
        bot_halts: Sequence[Episode],
        *,
        at_least: int,
        halt_bound_ms: int,
        knows_event_loss: bool,
    ) -> list[InvariantResult]:
        results = [check_total_exposure(limit_samples, self.caps)]
        # events of several outcomes: their limit must exist and hold (a world of one-market
        # events, with no max_event_loss in dora yet, has nothing to check)
        if knows_event_loss or any(e.mutually_exclusive and len(e.tickers) > 1 for e in events):
            event_loss = check_event_loss(limit_samples, self.event_limits, events)
            if not knows_event_loss:
                event_loss.violations.insert(0, "dora has no max_event_loss setting (GlobalConfig)")
            results.append(event_loss)
        return [
            *results,
            ep.check_redis_outage(faults, samples, at_least=at_least),
            ep.check_pause(faults, samples, self.refused, at_least=at_least),
            ep.check_data_loss(self.readings, faults, samples, at_least=at_least),
            ep.check_daily_loss_halt(self.crossings, bot_halts, bound_ms=halt_bound_ms),
            ep.check_one_executor(self.strays, faults),
        ]

    # ---- the pieces ----------------------------------------------------------------------------

    def _account(self) -> dict[str, Any]:
        return self.w.account.account()

    def _hit(self) -> int:
        key = self.stack.config.key_id
        return int(self.stack.sim_post(f"/accounts/{key}/hit", {"limit": 1000})["hit"])

    def _later(self, delays: list[float], action: Callable[[], object]) -> None:
        def run() -> None:
            started = time.monotonic()
            for delay in delays:
                time.sleep(max(0.0, delay - (time.monotonic() - started)))
                with contextlib.suppress(Exception):
                    action()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def pause_window(self) -> tuple[int, int]:
        """The exchange's first maintenance window, as its ``GET /exchange/schedule`` says."""
        import httpx

        from common.kalshi.wire.fields import parse_time_ms

        answer = httpx.get(f"{self.stack.sim_url}/exchange/schedule", timeout=10).json()
        window = answer["schedule"]["maintenance_windows"][0]
        start = parse_time_ms(window["start_datetime"], "schedule")
        return start, parse_time_ms(window["end_datetime"], "schedule")

    def _refused(self) -> int:
        return int(self.stack.sim_get("/stats").get("refused_trading_paused", 0))

    def _set_global(self, key: str, money: int) -> None:
        code, out = self.cli("config", "set", f"{key}={format_money(money, 2)}")
        if code != 0:
            raise RuntimeError(f"dora config set {key} failed: {out.strip()[:200]}")

    def _tight_resume(self, record: FaultRecord) -> None:
        self.cli("halt", "--reason", "chaos: tight cap")
        halt_ms = int(self.stack.sim_get("/stats")["now_ms"])
        time.sleep(3.0)
        worst = account_worst_case(self._account())
        cap = (worst + TIGHT_HEADROOM) // CENT * CENT
        self._set_global("max_total_exposure", cap)
        self.caps.set(now_ms(), cap)
        time.sleep(TIGHT_RESUME_AFTER_S)
        resume_ms = int(self.stack.sim_get("/stats")["now_ms"])
        code, out = self.cli("resume", "--reason", "chaos: tight cap")
        self.halts.append(FaultRecord(FaultKind.HALT, "", halt_ms, resume_ms, True, "tight cap"))
        record.detail = f"cap {dollars(cap)} (worst case {dollars(worst)} + $12)"
        if code != 0:
            record.ok, record.detail = False, f"resume failed: {out[:200]}"

    def _largest_position(self, fallback: str) -> tuple[str, str]:
        """The market where we hold the most, and the side of the book that supports it (the
        bids for a long YES position, the asks for a short one)."""
        positions = self._account()["positions"]
        held = {t: parse_count(p["position_fp"], signed=True) for t, p in positions.items()}
        held = {t: n for t, n in held.items() if n and t in self.stack.tickers}
        if not held:
            return fallback, "bid"
        ticker = max(sorted(held), key=lambda t: abs(held[t]))
        return ticker, "bid" if held[ticker] > 0 else "ask"

    def _daily_loss(self, record: FaultRecord, duration_s: float) -> None:
        """Every book under a position of ours collapses to the side that supported it: marked
        at liquidation value, the day's PnL drops by about ``drop`` (the positions' value at the
        fair price). ``max_daily_loss`` is set halfway, so the crossing is the collapse."""
        positions = self._account()["positions"]
        held = {t: parse_count(p["position_fp"], signed=True) for t, p in positions.items()}
        held = {t: n for t, n in held.items() if n and t in self.stack.tickers}
        drop = 0
        for ticker, n in held.items():
            fair = float(self.stack.sim_get(f"/markets/{ticker}/fair")["fair_probability"])
            value = fair if n > 0 else 1 - fair  # what a contract held is worth now
            drop += int(value * abs(n) / 100 * MONEY_SCALE)  # marked at $0 (or $1) once gone
        daily = int(self._risk_fields().get("daily_pnl") or 0)
        limit = (drop // 2 - daily) // CENT * CENT
        if limit < CENT:
            record.ok = False
            record.detail = f"day PnL {dollars(daily)} above what a collapse takes"
            return
        self._set_global("max_daily_loss", limit)
        time.sleep(DAILY_LOSS_SETTLE_S)
        for ticker, n in held.items():
            self.stack.sim_post(
                f"/markets/{ticker}/one_sided",
                {"side": "bid" if n > 0 else "ask", "for_s": DAILY_LOSS_HOLD_S},
            )
        # the whole drop is in the books now (a halt already on, from part of it, counts)
        crossed = now_ms()
        detail = (
            f"{len(held)} books gone one-sided, about {dollars(drop)} of marks; "
            f"limit {dollars(limit)}, day PnL {dollars(daily)}"
        )
        self.crossings.append(ep.LossCrossing(crossed, detail))
        record.start_ms, record.detail = crossed, detail
        record.end_ms = crossed + int(duration_s * 1000)

    def _risk_fields(self) -> dict[str, str]:
        r = self.stack.sync_redis()  # one Redis or the cluster
        try:
            fields: dict[str, str] = r.hgetall(self.stack.keys().risk)
            return fields
        finally:
            r.close()

    def _compare_positions(self, record: FaultRecord, seconds: float) -> None:
        rows = self.readings.setdefault(record.start_ms, [])

        def run() -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    rows.append(self._reading())
                time.sleep(1.0)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _reading(self) -> ep.PositionsReading:
        """Redis' positions against the exchange's read just before and just after them (a fill
        landing in between is not a difference)."""

        def exchange() -> dict[str, int]:
            positions = self._account()["positions"]
            held = {t: parse_count(p["position_fp"], signed=True) for t, p in positions.items()}
            return {t: n for t, n in held.items() if n}

        before = exchange()
        ours = {t: n for t, n in self.redis_positions().items() if n}
        after = exchange()
        ms = now_ms()
        if ours in (before, after):
            return ep.PositionsReading(ms, True)
        diff = [
            f"{t}: Redis {ours.get(t, 0) / 100:+.0f}, exchange {after.get(t, 0) / 100:+.0f}"
            for t in sorted(set(ours) | set(after))
            if ours.get(t, 0) != after.get(t, 0)
        ]
        return ep.PositionsReading(ms, False, "; ".join(diff[:3]))
