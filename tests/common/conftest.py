"""A local Redis Cluster for the tests of cluster mode (``test_cluster_ops``, ``test_ledger_cluster``):
one per module that asks for it, flushed before each test, and a cluster client to it."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from cli.redis_cluster import LocalCluster
from common.redis_conn import connect_redis
from common.settings import Settings


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    base: Path = tmp_path_factory.mktemp("cluster")

    def spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(base / f"{name}.out", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    c = LocalCluster(base, spawn).start()
    yield c
    c.stop()


@pytest.fixture
async def rc(cluster: LocalCluster) -> AsyncIterator[aioredis.Redis]:
    sync = redis.RedisCluster.from_url(cluster.urls[0])
    sync.flushall()  # every master (the cluster client's FLUSHALL goes to all primaries)
    sync.close()
    client = connect_redis(Settings(redis_url=cluster.urls[0], redis_cluster=True))
    yield client
    await client.aclose()
