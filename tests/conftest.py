"""Shared fixtures: a real redis-server for the session, fakeredis, moto DynamoDB, settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis

from common.keys import Keys
from common.settings import Settings, load_settings
from tests.support.procs import RedisServer

pytest_plugins = ["tests.support.simfix"]

# Tests never touch real AWS: fake credentials and region for boto3 everywhere.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
for name in list(os.environ):
    if name.startswith("DORA_"):  # a developer's own settings must not leak into the tests
        del os.environ[name]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server on a free port for the whole session."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session Redis, flushed before each test that uses it."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return load_settings({"DORA_REDIS_URL": redis_url}, read_file=False)


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def fake_redis() -> aioredis.Redis:
    """An in-memory Redis for pure unit tests that need one."""
    return fakeredis.FakeAsyncRedis(decode_responses=True)


@pytest.fixture
def keys() -> Keys:
    return Keys("dora:")


@pytest.fixture
def dynamodb() -> Iterator[object]:
    """An in-process moto DynamoDB (boto3 calls in this test go to it)."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.resource("dynamodb", region_name="us-east-1")


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
