"""Fixtures of the simulator tests: throwaway keys and an in-process server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sim.auth import KeyRegistry, generate_key_pair
from sim.server import RunningSim, SimConfig, start
from tests.sim.simtest_helpers import KEY_ID, OTHER_KEY_ID, Signed


@pytest.fixture(scope="session")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, rsa.RSAPrivateKey]:
    """(private key path, public PEM, private key object) for KEY_ID; never committed."""
    private_pem, public_pem = generate_key_pair("rsa")
    directory = tmp_path_factory.mktemp("keys")
    path = directory / f"{KEY_ID}.pem"
    path.write_bytes(private_pem)
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return path, public_pem, key


@pytest.fixture(scope="session")
def other_key_pair() -> tuple[bytes, rsa.RSAPrivateKey]:
    private_pem, public_pem = generate_key_pair("rsa")
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return public_pem, key


StartSim = Callable[..., Awaitable[RunningSim]]


@pytest.fixture
async def start_sim(
    key_pair: tuple[Path, bytes, rsa.RSAPrivateKey], other_key_pair: tuple[bytes, rsa.RSAPrivateKey]
) -> AsyncIterator[StartSim]:
    started: list[RunningSim] = []

    async def _start(**overrides: Any) -> RunningSim:
        registry = KeyRegistry()
        registry.add_pem(KEY_ID, key_pair[1])
        registry.add_pem(OTHER_KEY_ID, other_key_pair[0])
        config = SimConfig(**{"n_markets": 6, "seed": 1, "rate_tier": "unlimited", **overrides})
        running = await start(config, registry=registry, run_agents_loop=config.agents)
        started.append(running)
        return running

    yield _start
    for running in started:
        await running.stop()


@pytest.fixture
async def sim(start_sim: StartSim) -> RunningSim:
    """A quiet simulator (no background flow) so tests see only their own orders."""
    return await start_sim(agents=False)


@pytest.fixture
async def client(
    sim: RunningSim, key_pair: tuple[Path, bytes, rsa.RSAPrivateKey]
) -> AsyncIterator[Signed]:
    signed = Signed(sim, key_pair[2])
    yield signed
    await signed.close()


@pytest.fixture
async def other(
    sim: RunningSim, other_key_pair: tuple[bytes, rsa.RSAPrivateKey]
) -> AsyncIterator[Signed]:
    signed = Signed(sim, other_key_pair[1], OTHER_KEY_ID)
    yield signed
    await signed.close()
