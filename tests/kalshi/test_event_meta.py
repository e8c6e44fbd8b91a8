"""A market's event and its mutually_exclusive flag reach its meta (``dora:market``), read
against the simulator's ``event`` scenario (events of three mutually exclusive markets)."""

from __future__ import annotations

from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.redis_codec import decode_market, encode_market
from tests.support.simfix import StartSim


async def test_meta_carries_the_event_and_its_exclusive_flag(
    start_sim: StartSim, signer: Signer
) -> None:
    running = await start_sim(scenario="event", n_markets=6)
    client = KalshiClient.create(running.rest_url, signer)
    try:
        metas = await client.get_markets()
    finally:
        await client.aclose()
    assert metas and all(m.event_ticker for m in metas)
    assert all(m.mutually_exclusive for m in metas)
    events = {m.event_ticker for m in metas}
    assert len(events) == 2  # three markets each
    again = decode_market(metas[0].ticker, encode_market(metas[0]))
    assert (again.event_ticker, again.mutually_exclusive) == (metas[0].event_ticker, True)
