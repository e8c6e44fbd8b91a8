"""``dora halt`` with no executor and no risk process running (DESIGN.md §3: a halt cancels every
resting order at the exchange): nobody would hear it, so the command cancels at the exchange
itself when a Kalshi key is set; with an executor alive it leaves the cancelling to it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from common.kalshi import KalshiClient
from common.kalshi.signing import Signer
from common.keys import Keys
from common.redis_codec import decode_risk
from tests.cli.test_cancel_all import DORAS, place
from tests.support.procs import run_dora
from tests.support.simfix import KEY_ID, StartSim


async def test_a_halt_nobody_hears_is_cancelled_at_the_exchange_by_the_command(
    start_sim: StartSim, signer: Signer, sim_keys: tuple[Path, bytes, bytes], redis_url: str
) -> None:
    running = await start_sim()
    dora = KalshiClient.create(running.rest_url, signer, subaccount=DORAS)
    tickers = [m.ticker for m in await dora.get_markets()][:2]
    for n, ticker in enumerate(tickers):
        await place(dora, ticker, n)
    env = {
        "DORA_REDIS_URL": redis_url,
        "DORA_KALSHI_ENV": "sim",
        "DORA_KALSHI_BASE_URL": running.rest_url,
        "DORA_KALSHI_KEY_ID": KEY_ID,
        "DORA_KALSHI_PRIVATE_KEY_PATH": str(sim_keys[0]),
        "DORA_KALSHI_SUBACCOUNT": str(DORAS),
    }
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.set(Keys().hb("executor"), "{}", px=60_000)  # an executor alive: it cancels, not the CLI
    proc = await asyncio.to_thread(run_dora, "halt", "--reason", "test", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cancelling at the exchange" not in proc.stdout
    assert len(await dora.get_open_orders()) == 2
    r.delete(Keys().hb("executor"))  # nobody running now
    proc = await asyncio.to_thread(run_dora, "halt", "--reason", "again", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cancelling at the exchange from here" in proc.stdout
    assert await dora.get_open_orders() == []
    assert decode_risk(r.hgetall(Keys().risk)).halted
    await dora.aclose()


def test_without_a_key_it_says_to_run_cancel_all(redis_url: str) -> None:
    proc = run_dora("halt", env={"DORA_REDIS_URL": redis_url})
    assert proc.returncode == 0  # the halt is recorded
    assert "run 'dora cancel-all'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
