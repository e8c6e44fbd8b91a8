"""The exchange's calendar into ``dora:exchange`` (DESIGN.md §5, ``common.calendar``).

``GET /exchange/status`` every ``exchange_poll_ms`` (and at once after the socket drops: Kalshi
drops sockets around pauses), ``GET /exchange/schedule`` every ``SCHEDULE_EVERY_MS``. The hash
holds the exchange's word and the next pause; the executor decides from it, with its own clock,
when to pull quotes (``pause_lead_s`` ahead) and when to quote again. A pause the schedule did
not announce (trading inactive outside it) is an incident: logged and alerted.
"""

from __future__ import annotations

import contextlib

from common.alerts import Alerter
from common.calendar import ExchangeSchedule, ExchangeState, next_pause
from common.errors import WireError
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.redis_codec import encode_exchange
from common.runtime import Context

SCHEDULE_EVERY_MS = 300_000


class ExchangeCalendar:
    def __init__(self, ctx: Context, client: KalshiClient, alerter: Alerter) -> None:
        self.ctx = ctx
        self.client = client
        self.alerter = alerter
        self.poll_ms = ctx.settings.exchange_poll_ms
        self.lead_ms = ctx.settings.pause_lead_s * 1000
        self.schedule = ExchangeSchedule()
        self.state = ExchangeState()
        self.last_status_ms = -1e18
        self.last_schedule_ms = -1e18
        self.quoting_reason = ""  # as last written
        self.counts = {"exchange_polls": 0, "exchange_pauses": 0}

    def poll_soon(self) -> None:
        """The socket dropped: the exchange may have paused; ask now."""
        self.last_status_ms = -1e18

    async def poll(self) -> None:
        ctx = self.ctx
        now_mono = ctx.clock.monotonic_ms()
        if now_mono - self.last_schedule_ms >= SCHEDULE_EVERY_MS:
            try:
                self.schedule = await self.client.get_exchange_schedule()
                self.last_schedule_ms = now_mono
            except (ExchangeError, WireError) as exc:
                ctx.log.warning("exchange_schedule_failed", error=str(exc)[:300])
                self.last_schedule_ms = now_mono - SCHEDULE_EVERY_MS + self.poll_ms
        if now_mono - self.last_status_ms < self.poll_ms:
            return
        self.last_status_ms = now_mono
        try:
            status = await self.client.get_exchange_status()
        except (ExchangeError, WireError) as exc:
            ctx.log.warning("exchange_status_failed", error=str(exc)[:300])
            return
        self.counts["exchange_polls"] += 1
        now = ctx.clock.now_ms()
        upcoming = next_pause(self.schedule, now)
        state = ExchangeState(
            exchange_active=status.exchange_active,
            trading_active=status.trading_active,
            resume_ms=status.resume_ms,
            next_pause=upcoming,
            updated_ms=now,
        )
        quoting = state.quoting(now, self.lead_ms)
        await ctx.redis.hset(ctx.keys.exchange, mapping=encode_exchange(state, quoting))
        was_active = self.state.exchange_active and self.state.trading_active
        self.state = state
        if quoting.reason != self.quoting_reason:
            ctx.log.info(
                "exchange_state",
                quoting=quoting.may_quote,
                reason=quoting.reason,
                next_pause_start_ms=upcoming.start_ms if upcoming else None,
                next_pause_end_ms=upcoming.end_ms if upcoming else None,
            )
            self.quoting_reason = quoting.reason
        inactive = not (status.exchange_active and status.trading_active)
        if inactive and was_active:
            self.counts["exchange_pauses"] += 1
            scheduled = upcoming is not None and upcoming.start_ms <= now < upcoming.end_ms
            if not scheduled:
                with contextlib.suppress(Exception):
                    await self.alerter.alert(
                        "exchange_paused",
                        "Kalshi paused trading outside its schedule",
                        f"exchange_active={status.exchange_active} "
                        f"trading_active={status.trading_active} resume_ms={status.resume_ms}",
                    )
