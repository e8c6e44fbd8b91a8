"""The alerts the risk process sends (SNS, ``common.alerts``): the original plan's (halted, daily
PnL below a fraction of the limit, sustained API errors, no fills for hours) and one for risk
checks that keep failing."""

from __future__ import annotations

import contextlib
from collections import deque

from common.alerts import Alerter
from common.config_cache import ConfigCache
from common.domain import RiskState
from common.errors import SchemaError
from common.keys import SERVICES
from common.numbers import money_to_dollars_display
from common.redis_codec import decode_heartbeat
from common.runtime import Context

FAILED_CHECKS_TO_ALERT = 3  # one failed check can be a blip; three in a row need a person


class RiskAlerts:
    def __init__(self, alerter: Alerter, configs: ConfigCache, started_ms: int) -> None:
        self.alerter = alerter
        self.configs = configs
        self.started_ms = started_ms
        self.alerted_halt_ms = -1
        self.error_totals: dict[str, int] = {}
        self.error_window: deque[tuple[int, int]] = deque()

    async def failing(self, failures: int, error: str) -> None:
        """Consecutive failed checks: an alert once there are ``FAILED_CHECKS_TO_ALERT``."""
        if failures >= FAILED_CHECKS_TO_ALERT:
            await self.alerter.alert(
                "risk_check_failing",
                f"risk check failing ({failures} in a row)",
                f"the last {failures} risk checks failed, so the executor adds no risk: {error}",
            )
        elif failures == 0:
            self.alerter.clear("risk_check_failing")

    async def halt_put_back(self, state: RiskState) -> None:
        """The halt's flag was set to 0 (or deleted) by hand and written back: say so."""
        self.alerter.clear("halt_lifted_by_hand")  # every edit is told
        await self.alerter.alert(
            "halt_lifted_by_hand",
            f"halt lifted by hand, put back: {state.reason}",
            f"dora:risk was edited by hand to 'halted 0' with no resume recorded; the halt "
            f"({state.reason}) is still in force and was written back. Lift with 'dora resume'.",
        )

    async def check(self, ctx: Context, state: RiskState) -> None:
        now = ctx.clock.now_ms()
        settings = ctx.settings
        if state.halted and state.halted_ms != self.alerted_halt_ms:
            self.alerter.clear("trading_halted")  # every new halt is told
            self.alerted_halt_ms = state.halted_ms
            await self.alerter.alert(
                "trading_halted",
                f"trading halted: {state.reason}",
                f"dora stopped trading: {state.reason}. Lift with 'dora resume'.",
            )
        limit = self.configs.global_config.max_daily_loss
        threshold = -limit * settings.alert_pnl_fraction_pct // 100
        if state.daily_pnl <= threshold:
            pnl = money_to_dollars_display(state.daily_pnl)
            await self.alerter.alert(
                "pnl_below_threshold",
                f"daily PnL {pnl}",
                f"daily PnL {pnl} is below {money_to_dollars_display(threshold)} "
                f"({settings.alert_pnl_fraction_pct}% of the daily loss limit)",
            )
        else:
            self.alerter.clear("pnl_below_threshold")
        errors = await self._recent_api_errors(ctx, now)
        if errors >= settings.alert_api_errors:
            await self.alerter.alert(
                "api_errors_sustained",
                f"{errors} API errors in 5 minutes",
                f"{errors} Kalshi API errors across dora's processes in the last 5 minutes",
            )
        hours = settings.alert_no_fills_hours
        quoting = self.configs.global_config.trading_enabled and self.configs.enabled()
        if hours and not state.halted and quoting:  # trading switched off expects no fill
            last_fill = int(await ctx.redis.hget(ctx.keys.fills_meta, "last_fill_ms") or 0)
            since = max(last_fill, self.started_ms)
            if now - since >= hours * 3_600_000:
                await self.alerter.alert(
                    "no_fills",
                    f"no fills for {hours}h",
                    f"no fill since {since} (ms) while quoting {len(self.configs.enabled())} markets",
                )

    async def _recent_api_errors(self, ctx: Context, now_ms: int) -> int:
        """API errors of every process in the last 5 minutes, from the totals in heartbeats (a
        restarted process starts counting from zero again)."""
        added = 0
        for service in SERVICES:
            raw = await ctx.redis.get(ctx.keys.hb(service))
            total = 0
            with contextlib.suppress(SchemaError, ValueError, TypeError):
                total = int(decode_heartbeat(raw).get("api_errors", 0)) if raw else 0
            if service == "risk":
                total = ctx.metrics.totals.get("api_errors", 0)
            previous = self.error_totals.get(service, 0)
            added += total - previous if total >= previous else total
            self.error_totals[service] = total
        self.error_window.append((now_ms, added))
        while self.error_window and now_ms - self.error_window[0][0] > 300_000:
            self.error_window.popleft()
        return sum(n for _, n in self.error_window)
