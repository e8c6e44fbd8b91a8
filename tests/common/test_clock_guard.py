"""The local clock against the exchange's (issue 19.7): measured from the exchange's ``Date``;
beyond ``max_clock_skew_ms`` the executor refuses to start, or stops adding risk while running."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from common.clock import Clock
from common.clock_guard import ClockGuard, ClockSkewError, skew_reason
from common.kalshi import KalshiClient
from common.kalshi.exchange_clock import ExchangeClock, parse_http_date
from common.kalshi.signing import Signer
from common.keys import Keys
from common.log import get_logger
from common.runtime import Context
from common.settings import Settings, load_settings
from tests.support.simfix import RunningSim
from tests.support.state import mark_restored


class SkewedClock(Clock):
    """The wall clock off by ``offset_ms`` (which a test may change)."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return super().now_ms() + self.offset_ms


def test_the_date_header_gives_the_exchange_time_and_the_skew() -> None:
    assert parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT") == 1_767_225_600_000
    assert parse_http_date("yesterday") is None
    mono = [1_000.0]
    clock = ExchangeClock(lambda: mono[0])
    assert clock.now_ms() is None and clock.skew_ms is None
    # the request left at local ...10.100 and came back at ...10.300; the exchange said :00
    clock.observe("Thu, 01 Jan 2026 00:00:00 GMT", 1_767_225_610_100, 1_767_225_610_300)
    assert clock.skew_ms == 10_200 - 500  # local is ~9.7 s ahead
    mono[0] += 2_500
    assert clock.now_ms() == 1_767_225_602_500  # never ahead of the exchange
    assert skew_reason(1_900, 2_000) == "" and "ahead of" in skew_reason(9_700, 2_000)
    assert "behind" in skew_reason(-9_700, 2_000)


async def test_a_skewed_clock_is_measured_against_the_simulator(
    sim: RunningSim, signer: Signer, settings: Settings
) -> None:
    fast = SkewedClock(10_000)
    client = KalshiClient.create(sim.rest_url, signer, clock=fast)
    try:
        skew = await client.measure_clock_skew()
        assert 8_500 <= skew <= 11_500
        guard = ClockGuard(client, settings, get_logger("t"), fast)
        with pytest.raises(ClockSkewError, match=r"\d\.\ds ahead of the exchange.s"):
            await guard.check_at_start()
        fast.offset_ms = 0
        assert abs(await guard.check_at_start()) <= 1_500
    finally:
        await client.aclose()


async def test_the_executor_refuses_to_start_then_stops_adding_risk_when_skewed(
    sim: RunningSim, signer: Signer, redis_url: str, aredis: aioredis.Redis
) -> None:
    from services.executor.kalshi_gateway import KalshiGateway
    from services.executor.service import build

    settings = load_settings(
        {"DORA_REDIS_URL": redis_url, "DORA_CLOCK_CHECK_INTERVAL_S": "5"}, read_file=False
    )
    await mark_restored(aredis, Keys())
    clock = SkewedClock(-12_000)  # twelve seconds slow
    gateway = KalshiGateway(KalshiClient.create(sim.rest_url, signer, clock=clock))
    ctx = Context("executor", settings, aredis, Keys(), clock, get_logger("executor"))
    service = await build(ctx, gateway=gateway)
    with pytest.raises(ClockSkewError, match="behind the exchange's"):
        await service.start(ctx)  # the runtime retries: it starts once the clock is right
    clock.offset_ms = 0
    await service.start(ctx)
    assert service.safety.blocked.reason == ""  # the positions were synced: may add risk
    clock.offset_ms = 30_000  # the clock jumps while running
    service.gate.clock.next_check_ms = 0  # type: ignore[union-attr]  # the check is due
    await service.gate.refresh()
    assert service.safety.blocked.reason.startswith("clock skew")
    service.safety.pulled.reason = ""  # the feeds are alive: only the clock holds it back
    risk = service.safety.account_risk()
    assert risk.halted and risk.halt_reason.startswith("clock skew")
    clock.offset_ms = 0
    service.gate.clock.next_check_ms = 0  # type: ignore[union-attr]
    await service.gate.refresh()
    assert service.safety.blocked.reason == ""
    await service.stop(ctx)
