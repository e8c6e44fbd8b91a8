"""Fixtures for the persister: in-process moto with the tables, and a harness that drives the
service step by step against the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.clock import Clock
from common.dynamo import Dynamo
from common.dynamo.tables import TableNames, create_tables
from common.keys import Keys
from common.log import get_logger
from common.runtime import Context
from common.settings import Settings, load_settings
from services.persister.service import PersisterService
from tests.support.moto import dynamo_backend, moto_endpoint, moto_server  # noqa: F401


@pytest.fixture
def db() -> Iterator[Dynamo]:
    """In-process moto DynamoDB with the four tables."""
    from moto import mock_aws

    with mock_aws():
        dynamo = Dynamo.from_settings(load_settings({}, read_file=False))
        create_tables(dynamo.client, TableNames.from_prefix("dora_"))
        yield dynamo


@dataclass
class Harness:
    service: PersisterService
    ctx: Context
    db: Dynamo

    async def start(self) -> None:
        await self.service.start(self.ctx)

    async def step(self, times: int = 1) -> None:
        for _ in range(times):
            await self.service.step(self.ctx)

    def count(self, table: str) -> int:
        return int(self.db.client.scan(TableName=table, Select="COUNT")["Count"])

    def rows(self, table: str) -> list[dict[str, Any]]:
        from common.dynamo.codec import from_attrs

        return [from_attrs(i) for i in self.db.client.scan(TableName=table)["Items"]]


def make_harness(settings: Settings, redis: aioredis.Redis, db: Dynamo, **options: Any) -> Harness:
    defaults: dict[str, Any] = {
        "mirror_interval_ms": 0,
        "state_interval_ms": 0,
        "read_block_ms": 10,
        "claim_idle_ms": 200,
    }
    service = PersisterService(settings, dynamo=db, **{**defaults, **options})
    ctx = Context(
        name="persister",
        settings=settings,
        redis=redis,
        keys=Keys(settings.key_prefix),
        clock=Clock(),
        log=get_logger("persister"),
    )
    return Harness(service, ctx, db)


@pytest.fixture
async def persister(
    settings: Settings, aredis: aioredis.Redis, db: Dynamo
) -> AsyncIterator[Harness]:
    yield make_harness(settings, aredis, db)
