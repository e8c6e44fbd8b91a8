"""A position record corrupted by hand (``SET`` where fills keeps a hash, a field that is not a
number). Before, every fills transaction that read it failed: no fill of any market in the same
run was booked, and the backfill failed the same way, for ever. Now the record is deleted, the
executor adds no risk meanwhile (``dora:positions:synced`` cleared), and the position is put
back from the exchange at once (as after lost writes)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from common.kalshi.ws_events import FillEvent
from common.keys import Keys
from common.restore import trading_state_gap
from common.settings import Settings
from services.fills.repair import unreadable_positions
from tests.services.test_fills_lost_writes import fill, position, socket_fill, started


@pytest.mark.parametrize("how", ["type", "field"])
async def test_a_corrupt_position_is_rebuilt_from_the_exchange_and_fills_go_on(
    settings: Settings, aredis: aioredis.Redis, how: str
) -> None:
    k = Keys()
    service, ctx, rest, log = await started(settings, aredis, k)
    await socket_fill(service, ctx, rest, fill(1))
    assert await position(aredis, k) == 100
    if how == "type":
        await aredis.delete(k.pos("KX"))
        await aredis.set(k.pos("KX"), "100")
    else:
        await aredis.hset(k.pos("KX"), "position", "one hundred")
    assert list(await unreadable_positions(aredis, k)) == [k.pos("KX")]
    rest.fills.append(fill(2))
    service.queue.put_nowait(FillEvent(fill(2)))
    await service.step(ctx)  # the run meets the bad record: deleted, adds held
    (rebuilt,) = log.named("bad_position_key_rebuilt")
    assert rebuilt["key"] == k.pos("KX")
    assert await trading_state_gap(aredis, k) != ""  # the executor adds nothing meanwhile
    await service.step(ctx)  # the sync with the exchange, at once
    assert await position(aredis, k) == 200  # the exchange's: both fills
    assert await trading_state_gap(aredis, k) == ""
    assert await unreadable_positions(aredis, k) == {}
    await socket_fill(service, ctx, rest, fill(3))  # and fills are booked again
    assert await position(aredis, k) == 300
