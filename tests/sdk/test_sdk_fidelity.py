"""Fidelity with Kalshi's newest official client (issue 20, item 7): ``kalshi-python-async``
3.34.0, its code unchanged but for host and key, drives the running simulator through every
endpoint dora uses, in its own Python >= 3.13 virtualenv (``tests/support/sdk_venv.py``), and
every answer must deserialize into the SDK's 3.34 models."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from sim.server import RunningSim
from tests.support.sdk_venv import sdk_python
from tests.support.simfix import KEY_ID, OTHER_KEY_ID, StartSim

DRIVER = Path(__file__).with_name("drive_sim.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk() -> str:
    python, why = sdk_python()
    if python is None:
        pytest.skip(why)
    return python


async def drive(
    sdk: str,
    running: RunningSim,
    sim_keys: tuple[Path, bytes, bytes],
    other_path: Path,
    ticker: str,
) -> list[dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        sdk,
        str(DRIVER),
        running.rest_url,
        KEY_ID,
        str(sim_keys[0]),
        OTHER_KEY_ID,
        str(other_path),
        ticker,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, err.decode()[-3000:]
    checks: list[dict[str, object]] = json.loads(out.decode().strip().splitlines()[-1])["checks"]
    return checks


async def test_the_official_3_34_sdk_accepts_every_answer_dora_relies_on(
    sdk: str,
    start_sim: StartSim,
    sim_keys: tuple[Path, bytes, bytes],
    other_keys: tuple[bytes, bytes],
    tmp_path: Path,
) -> None:
    running = await start_sim()
    other_path = tmp_path / "other.pem"
    other_path.write_bytes(other_keys[0])
    ticker = next(
        t
        for t, m in running.sim.exchange.markets.items()
        if m.price_level_structure == "linear_cent"
    )
    checks = await drive(sdk, running, sim_keys, other_path, ticker)
    failed = [f"{c['name']}: {c['error']}" for c in checks if not c["ok"]]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks pass", file=sys.stderr)
    assert failed == [], "\n".join(failed)
    assert len(checks) >= 44
