"""Three OS processes on one account share the Redis budget: the simulator, enforcing the same
tier, answers no 429 at all."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.simfix import KEY_ID, StartSim, sim_control

REPO = Path(__file__).resolve().parents[2]
TIER = "basic"
DURATION_S = 4.0


@pytest.mark.slow
async def test_three_processes_hammer_the_budget_without_a_429(
    start_sim: StartSim, sim_keys: tuple[Path, bytes, bytes], redis_url: str
) -> None:
    running = await start_sim(rate_tier=TIER)
    markets = await sim_control(running, "GET", "/trade-api/v2/markets")
    ticker = markets["markets"][0]["ticker"]
    args = [
        "--url",
        running.rest_url,
        "--key-id",
        KEY_ID,
        "--key-path",
        str(sim_keys[0]),
        "--redis-url",
        redis_url,
        "--tier",
        TIER,
        "--ticker",
        ticker,
        "--duration-s",
        str(DURATION_S),
    ]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.kalshi.hammer_worker",
            *args,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    results: list[dict[str, Any]] = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
        results.append(orjson.loads(out.decode().strip().splitlines()[-1]))
    stats = await sim_control(running, "GET", "/_sim/stats")
    creates = sum(r["creates"] for r in results)
    reads = sum(r["reads"] for r in results)
    assert stats.get("http_429", 0) == 0, (stats, results)
    assert all(r["client_429s"] == 0 and r["errors"] == 0 for r in results), results
    # the budget was actually used: basic write = 100 tokens/s, a create+cancel pair costs 12
    assert creates >= 0.6 * (100 * DURATION_S / 12), results
    print(results, stats.get("requests"))
    assert reads >= 0.5 * (200 * DURATION_S / 10), results
