"""The limits checked at the exchange itself: what the exchange says rests and is held.

Each round of the exchange watch reads the subaccount's positions and resting orders from the
exchange (never from Redis) and computes the account's worst case (``common.risk.worst_case_of``:
positions plus every resting order filling). Above ``max_total_exposure`` it halts with the reason
``exposure_breach``: the executor's ledger should make that impossible, so a breach means
something placed past it (another program in the subaccount, a bug) or the cap was lowered below
what is already held.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config_cache import ConfigCache
from common.halt import set_halt
from common.kalshi.client import KalshiClient
from common.kalshi.errors import ExchangeError
from common.kalshi.wire.listing import Skipped
from common.numbers import money_to_dollars_display
from common.risk import worst_case_of
from common.runtime import Context


@dataclass(slots=True)
class AtExchange:
    """The last round's figures, for the heartbeat and the tests."""

    worst_case: int = 0
    checked_ms: int = 0


class ExchangeLimits:
    def __init__(self, client: KalshiClient, configs: ConfigCache) -> None:
        self.client = client
        self.configs = configs
        self.seen = AtExchange()

    async def check(self, ctx: Context, halted: bool) -> str:
        """One look at the exchange; halts on a breach. A problem to report, or ""."""
        skipped: list[Skipped] = []
        try:
            positions = await self.client.get_positions(skipped=skipped)
            orders = await self.client.get_open_orders(skipped=skipped)
        except ExchangeError as exc:
            ctx.log.warning("exchange_limits_unread", error=str(exc))
            return ""  # the positions reconcile reports an exchange that stays away
        held = {p.ticker: (p.position, p.exposure) for p in positions}
        worst = worst_case_of(held, orders)
        self.seen = AtExchange(worst, ctx.clock.now_ms())
        ctx.status["exchange_worst_case"] = worst
        cap = self.configs.global_config.max_total_exposure
        if worst > cap and not halted:
            reason = (
                f"exposure_breach: worst case at the exchange {money_to_dollars_display(worst)}"
                f" > max_total_exposure {money_to_dollars_display(cap)}"
            )
            ctx.log.error("halting", reason=reason)
            await set_halt(ctx.redis, ctx.keys, reason, ctx.clock.now_ms(), "risk")
        if skipped:
            return f"{len(skipped)} exchange items unreadable: the worst case may be more"
        return ""
