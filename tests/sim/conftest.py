"""Fixtures of the simulator tests. The keys, ``start_sim`` and ``sim`` come from the shared
plugin tests/support/simfix.py; here only the simulator's own defaults and the raw signed
clients (``client`` and ``other`` are ``Signed`` here, not the plugin's ``KalshiClient``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sim.server import RunningSim
from tests.sim.simtest_helpers import Signed
from tests.support.simfix import OTHER_KEY_ID


def _rsa_key(private_pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture
def sim_config_defaults(sim_config_defaults: dict[str, Any]) -> dict[str, Any]:
    """Six markets from seed 1: the catalog these tests were written against."""
    return {**sim_config_defaults, "n_markets": 6, "seed": 1}


@pytest.fixture(scope="session")
def private_key(sim_keys: tuple[Path, bytes, bytes]) -> rsa.RSAPrivateKey:
    """The private key of KEY_ID, for the raw signed REST and WebSocket clients."""
    return _rsa_key(sim_keys[1])


@pytest.fixture(scope="session")
def other_private_key(other_keys: tuple[bytes, bytes]) -> rsa.RSAPrivateKey:
    return _rsa_key(other_keys[0])


@pytest.fixture
async def client(sim: RunningSim, private_key: rsa.RSAPrivateKey) -> AsyncIterator[Signed]:
    signed = Signed(sim, private_key)
    yield signed
    await signed.close()


@pytest.fixture
async def other(sim: RunningSim, other_private_key: rsa.RSAPrivateKey) -> AsyncIterator[Signed]:
    signed = Signed(sim, other_private_key, OTHER_KEY_ID)
    yield signed
    await signed.close()
