"""The local clock against the exchange's (issue 19.7).

Requests are signed with the local clock; a clock far from the exchange's gets them refused, and
makes every local timestamp compared with the exchange's wrong. ``ClockGuard`` measures the skew
(``KalshiClient.measure_clock_skew``: an unsigned public read, its ``Date`` header) at start and
every ``clock_check_interval_s``:

- at start, beyond ``max_clock_skew_ms`` ``check_at_start`` raises ``ClockSkewError``: the process
  does not start (the runtime tries again, so it starts by itself once the clock is fixed);
- while running, ``check_if_due`` returns why adding risk must stop ("" when the clock is fine),
  with one log line each time that changes.
"""

from __future__ import annotations

from common.clock import Clock
from common.errors import DoraError
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.log import EventLogger
from common.settings import Settings


class ClockSkewError(DoraError):
    """The local clock is too far from the exchange's to trade."""


def skew_reason(skew_ms: int, limit_ms: int) -> str:
    """Why trading must not add risk at ``skew_ms`` ("" when within ``limit_ms``)."""
    if abs(skew_ms) <= limit_ms:
        return ""
    direction = "ahead of" if skew_ms > 0 else "behind"
    return (
        f"clock skew: the local clock is {abs(skew_ms) / 1000:.1f}s {direction} the exchange's "
        f"(DORA_MAX_CLOCK_SKEW_MS={limit_ms}); fix the clock (NTP)"
    )


class ClockGuard:
    def __init__(
        self, client: KalshiClient, settings: Settings, log: EventLogger, clock: Clock
    ) -> None:
        self.client = client
        self.limit_ms = settings.max_clock_skew_ms
        self.interval_ms = settings.clock_check_interval_s * 1000
        self.log = log
        self.clock = clock
        self.skew_ms: int | None = None
        self.reason = ""
        self.next_check_ms = 0.0

    async def check_at_start(self) -> int:
        """The skew; ``ClockSkewError`` (one line saying why) when it is beyond the limit."""
        skew = await self.client.measure_clock_skew()
        self._measured(skew)
        if self.reason:
            raise ClockSkewError(f"not starting: {self.reason}")
        self.log.info("clock_skew", skew_ms=skew, limit_ms=self.limit_ms)
        return skew

    async def check_if_due(self) -> str:
        """Measure again when due; returns why adding risk must stop ("" when it need not). A
        failed measurement changes nothing (the exchange's errors are handled elsewhere)."""
        now = self.clock.monotonic_ms()
        if now < self.next_check_ms:
            return self.reason
        self.next_check_ms = now + self.interval_ms
        try:
            skew = await self.client.measure_clock_skew()
        except ExchangeError as exc:
            self.log.warning("clock_skew_unmeasured", error=str(exc))
            return self.reason
        before = self.reason
        self._measured(skew)
        if self.reason and not before:
            self.log.error("clock_skew_stop_adding_risk", skew_ms=skew, reason=self.reason)
        elif before and not self.reason:
            self.log.info("clock_skew_back_within_limit", skew_ms=skew, limit_ms=self.limit_ms)
        return self.reason

    def _measured(self, skew_ms: int) -> None:
        self.skew_ms = skew_ms
        self.reason = skew_reason(skew_ms, self.limit_ms)
        self.next_check_ms = self.clock.monotonic_ms() + self.interval_ms
