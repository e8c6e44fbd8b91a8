"""The fills process's REST backfill: what the WebSocket missed is found, even behind newer fills."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.clock import ManualClock
from common.domain import Fill, Settlement, Side
from common.keys import Keys
from common.log import get_logger
from common.redis_codec import decode_position
from common.runtime import Context
from common.settings import Settings
from services.fills.ledger import apply_fill
from services.fills.service import FillsService

NOW = 1_800_000_000_000


class FakeRest:
    def __init__(self, fills: list[Fill], settlements: list[Settlement]) -> None:
        self.fills = fills
        self.settlements = settlements
        self.asked_since: list[int | None] = []

    async def get_fills(self, since_ms: int | None = None) -> list[Fill]:
        self.asked_since.append(since_ms)
        return [f for f in self.fills if since_ms is None or f.ts_ms >= since_ms // 1000 * 1000]

    async def get_settlements(self, since_ms: int | None = None) -> list[Settlement]:
        return [s for s in self.settlements if since_ms is None or s.settled_ms >= since_ms]

    async def aclose(self) -> None:
        pass


def fill(n: int, ts_ms: int) -> Fill:
    return Fill(f"t{n}", f"o{n}", "KX", Side.BID, 4000, 100, 0, False, ts_ms)


async def test_a_fill_missed_behind_newer_fills_is_still_backfilled(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    """The chaos soak's case: a fill lost while Redis was away, then newer fills applied from the
    WebSocket. Backfilling from the newest fill would never see the lost one."""
    k = Keys()
    missed, later = fill(1, NOW - 60_000), fill(2, NOW - 1_000)
    await apply_fill(aredis, k, later)  # only the newer one reached Redis
    await aredis.hset(
        k.fills_meta, "backfilled_to_ms", str(NOW - 120_000)
    )  # REST covered up to here
    rest = FakeRest([missed, later], [])
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    await service._backfill(ctx)
    assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 200
    assert int(await aredis.hget(k.fills_meta, "backfilled_to_ms") or 0) == NOW - 3_000
    await service._backfill(ctx)  # again: nothing twice
    assert decode_position("KX", await aredis.hgetall(k.pos("KX"))).position == 200


async def test_settlements_are_applied_from_rest(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    k = Keys()
    await apply_fill(aredis, k, fill(1, NOW - 5_000))
    rest = FakeRest([], [Settlement("KX", "no", NOW - 2_000, 0)])
    service = FillsService(settings, client=rest)  # type: ignore[arg-type]
    ctx = Context("fills", settings, aredis, k, ManualClock(NOW), get_logger("fills"))
    await service._backfill(ctx)
    position = decode_position("KX", await aredis.hgetall(k.pos("KX")))
    assert (
        position.position == 0 and position.realized_pnl == -400_000
    )  # 1 YES bought at 0.40, lost
