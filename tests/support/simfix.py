"""In-process simulator fixtures (a pytest plugin loaded by tests/conftest.py): throwaway keys,
a simulator per test, clients of two accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.kalshi import KalshiClient, signer_from_pem
from common.kalshi.http import LeanHTTP
from common.kalshi.ratelimit import RateBudget
from common.kalshi.signing import Signer
from common.kalshi.wire.markets import MarketInfo

KEY_ID = "dora-test-key"
OTHER_KEY_ID = "dora-other-key"

try:
    from sim.auth import KeyRegistry, generate_key_pair
    from sim.server import RunningSim, SimConfig, start

    SIM_MISSING = ""
except ImportError as exc:  # the simulator is another issue; say what is missing
    SIM_MISSING = f"simulator not importable: {exc}"


@pytest.fixture(scope="session")
def sim_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """(private key path, private PEM, public PEM); generated per session, never committed."""
    if SIM_MISSING:
        pytest.skip(SIM_MISSING)
    private_pem, public_pem = generate_key_pair("rsa")
    directory = tmp_path_factory.mktemp("kalshi-keys")
    (directory / f"{KEY_ID}.pem").write_bytes(private_pem)
    (directory / f"{KEY_ID}.pub.pem").write_bytes(public_pem)
    return directory / f"{KEY_ID}.pem", private_pem, public_pem


@pytest.fixture(scope="session")
def other_keys() -> tuple[bytes, bytes]:
    if SIM_MISSING:
        pytest.skip(SIM_MISSING)
    return generate_key_pair("rsa")


@pytest.fixture(scope="session")
def other_signer(other_keys: tuple[bytes, bytes]) -> Signer:
    return signer_from_pem(OTHER_KEY_ID, other_keys[0])


@pytest.fixture(scope="session")
def signer(sim_keys: tuple[Path, bytes, bytes]) -> Signer:
    return signer_from_pem(KEY_ID, sim_keys[1])


StartSim = Callable[..., Awaitable["RunningSim"]]


@pytest.fixture
def sim_config_defaults() -> dict[str, Any]:
    """The SimConfig fields every ``start_sim`` starts from (a test's overrides win); a test
    directory's conftest may override this fixture to change them for all its tests."""
    return {
        "n_markets": 4,
        "seed": 3,
        "rate_tier": "unlimited",
        "agents": False,
        "pause_schedule": "none",  # a test run on a Thursday at 03:00 ET is not paused
    }


@pytest.fixture
async def start_sim(
    sim_keys: tuple[Path, bytes, bytes],
    other_keys: tuple[bytes, bytes],
    sim_config_defaults: dict[str, Any],
) -> AsyncIterator[StartSim]:
    started: list[RunningSim] = []

    async def _start(**overrides: Any) -> RunningSim:
        registry = KeyRegistry()
        registry.add_pem(KEY_ID, sim_keys[2])
        registry.add_pem(OTHER_KEY_ID, other_keys[1])
        config = SimConfig(**{**sim_config_defaults, **overrides})
        running = await start(config, registry=registry, run_agents_loop=config.agents)
        started.append(running)
        return running

    yield _start
    for running in started:
        await running.stop()


@pytest.fixture
async def sim(start_sim: StartSim) -> RunningSim:
    return await start_sim()


MakeClient = Callable[..., KalshiClient]


@pytest.fixture
async def make_client(sim: RunningSim, signer: Signer) -> AsyncIterator[MakeClient]:
    made: list[KalshiClient] = []

    def _make(
        budget: RateBudget | None = None,
        signer_: Signer | None = None,
        http: LeanHTTP | None = None,
        running: RunningSim | None = None,
        **kwargs: Any,
    ) -> KalshiClient:
        client = KalshiClient.create(
            (running or sim).rest_url,
            signer_ or signer,
            budget=budget,
            http=http,
            **kwargs,
        )
        made.append(client)
        return client

    yield _make
    for client in made:
        await client.aclose()


@pytest.fixture
async def kalshi(make_client: MakeClient) -> KalshiClient:
    return make_client()


@pytest.fixture
async def other(make_client: MakeClient, other_signer: Signer) -> KalshiClient:
    """A second account at the same simulator: the counterparty for fills."""
    return make_client(signer_=other_signer)


@pytest.fixture
async def market(kalshi: KalshiClient) -> MarketInfo:
    infos = await kalshi.get_market_infos(status="open")
    return next(i for i in infos if i.status == "active")


async def sim_control(running: RunningSim, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        response = await http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()
