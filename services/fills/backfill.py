"""The fills process's REST backfill: every fill and settlement REST knows since the point REST
last fully covered (``backfilled_to_ms``, ``settled_to_ms`` in ``dora:fills:meta``), not since the
newest fill: one missed while Redis was away must still be found.

The cursor is exchange time only: the ``Date`` of the exchange's last answer (never the local
clock), so a skewed local clock can never make the backfill skip a fill. When to run it (at start,
after a reconnect, every few seconds) is ``services.fills.service``'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from common.domain import Fill
from common.kalshi.client import KalshiClient
from common.kalshi.wire.listing import Skipped
from common.runtime import Context
from services.fills.ledger import advance_cursor, apply_settlement
from services.fills.mark import FillsMark

REST_LAG_MS = 3_000  # what REST may not show yet
BACKFILL_OVERLAP_MS = 5_000  # fills are listed by whole seconds and may land late


async def backfill(
    ctx: Context,
    client: KalshiClient,
    apply: Callable[[list[Fill]], Awaitable[None]],
    mark: FillsMark,
    counts: dict[str, int],
    started_mono_ms: float,
) -> None:
    """One backfill: ``apply`` the fills listed, then the settlements, then move the cursors on.
    One item that does not parse is logged and skipped; the rest are applied. An exchange error
    (only the listings ask the exchange) is raised before anything is applied."""
    started_ms = client.exchange_now_ms()  # exchange time, never the local clock
    meta = await ctx.redis.hgetall(ctx.keys.fills_meta)
    covered = int(meta.get("backfilled_to_ms") or 0) or int(meta.get("last_fill_ms") or 0)
    since = max(0, covered - BACKFILL_OVERLAP_MS) if covered else None
    settled_to = int(meta.get("settled_to_ms") or 0)
    skipped: list[Skipped] = []
    fills = await client.get_fills(since, skipped=skipped)
    settlements = await client.get_settlements(
        settled_to - BACKFILL_OVERLAP_MS if settled_to else None, skipped=skipped
    )
    counts["skipped_items"] += len(skipped)
    before = counts["fills"]
    await apply(fills)
    for settlement in settlements:
        closed = await apply_settlement(ctx.redis, ctx.keys, settlement, mark)
        if closed is not None:
            counts["settlements"] += 1
            ctx.log.info(
                "settled",
                market=settlement.ticker,
                result=settlement.result,
                realized_pnl=closed.realized_pnl,
            )
    if started_ms is not None:
        # REST may lag the exchange by a moment: only claim what is safely behind us.
        await advance_cursor(
            ctx.redis,
            ctx.keys,
            max(covered, started_ms - REST_LAG_MS),
            max(settled_to, started_ms - REST_LAG_MS),
        )  # without the mark: a lost cursor is only a longer backfill, no lost position
    added = counts["fills"] - before
    counts["backfilled"] += added
    if added:
        took_ms = ctx.clock.monotonic_ms() - started_mono_ms
        ctx.log.info("backfilled", fills=added, since_ms=since, took_ms=int(took_ms))
