"""The persister as a real process against a moto server: config latency, kill -9 mid-batch,
and a 30-second DynamoDB outage."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from cli.main import main as dora
from common.domain import Fill, Order, OrderStatus, Position, Side
from common.dynamo import Dynamo
from common.dynamo.rows import fill_row, order_row
from common.dynamo.tables import TableNames, create_tables, make_client
from common.events import decision_event, fill_event, order_event
from common.keys import Keys
from common.settings import load_settings
from common.streams import PERSISTER_GROUP, append
from tests.support.moto import MotoServer
from tests.support.procs import REPO, wait_for

K = Keys()
TS = 1_767_225_600_000
TRADES = "dora_trade_log"
DECISIONS = "dora_decision_log"

pytestmark = pytest.mark.slow


class Persister:
    """``python -m services.persister`` with its logs in a file."""

    def __init__(self, redis_url: str, endpoint: str, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            "DORA_REDIS_URL": redis_url,
            "DORA_DYNAMODB_ENDPOINT": endpoint,
            "DORA_HEARTBEAT_INTERVAL_MS": "200",
            "DORA_HEARTBEAT_TTL_MS": "3000",
        }
        self.log_dir = log_dir
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Persister:
        self.runs += 1
        log = open(self.log_dir / f"persister-{self.runs}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.persister"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(15)
        return self.proc.returncode if self.proc else None

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("persister-*.log")))


@pytest.fixture
def db_at(moto_endpoint: str) -> Dynamo:
    settings = load_settings({"DORA_DYNAMODB_ENDPOINT": moto_endpoint}, read_file=False)
    db = Dynamo.from_settings(settings)
    # The checks scan thousands of rows while the persister writes; a local moto can take
    # longer than the product's 5 s to answer such a scan on a loaded 2-core box.
    db = dataclasses.replace(db, client=make_client(settings, timeout_s=60.0))
    create_tables(db.client, TableNames.from_prefix("dora_"))
    return db


@pytest.fixture
def persister(redis_url: str, moto_endpoint: str, tmp_path: Path) -> Iterator[Persister]:
    proc = Persister(redis_url, moto_endpoint, tmp_path)
    yield proc
    proc.kill()


def scan_all(db: Dynamo, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table}
    while True:
        page = db.client.scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def count(db: Dynamo, table: str) -> int:
    """Rows in ``table``: a COUNT scan (no items shipped back; polling this must not slow the
    local DynamoDB the persister is writing to)."""
    total, request = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = db.client.scan(**request)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def events(n: int, start: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    """n distinct events, cycling over orders, fills and decisions."""
    out = []
    for i in range(start, start + n):
        ts = TS + i
        if i % 3 == 0:
            order = Order("KXA", Side.BID, 5600, 1000, f"c-{i}", f"o-{i}", OrderStatus.RESTING)
            out.append(("orders", "order", order_event(order, "placed", ts)))
        elif i % 3 == 1:
            fill = Fill(f"f-{i}", f"o-{i}", "KXA", Side.ASK, 5700, 100, 5, False, ts)
            out.append(("fills", "fill", fill_event(fill, Position("KXA", position=-100))))
        else:
            out.append(("decisions", "decision", decision_event("KXB", ts, {}, 0, {}, [], [])))
    return out


def expected_keys(batch: list[tuple[str, str, dict[str, Any]]]) -> tuple[set[str], set[str]]:
    trades, decisions = set(), set()
    for _, kind, payload in batch:
        if kind == "order":
            trades.add(order_row(payload)["sk"])
        elif kind == "fill":
            trades.add(fill_row(payload)["sk"])
        else:
            decisions.add(f"{payload['ts_ms']}")
    return trades, decisions


def assert_exactly_once(db: Dynamo, batch: list[tuple[str, str, dict[str, Any]]]) -> None:
    trades, decisions = expected_keys(batch)
    trade_rows = [item["sk"]["S"] for item in scan_all(db, TRADES)]
    decision_rows = scan_all(db, DECISIONS)
    assert len(trade_rows) == len(set(trade_rows)) == len(trades)
    assert set(trade_rows) == trades
    assert len(decision_rows) == len(decisions)


def drained(r: redis.Redis) -> bool:
    for stream in ("orders", "fills", "decisions"):
        for group in r.xinfo_groups(K.stream(stream)):
            if group["name"] == PERSISTER_GROUP and (group["pending"] or group["lag"]):
                return False
    return True


async def produce(
    aredis: aioredis.Redis, batch: list[tuple[str, str, dict[str, Any]]], **kw: Any
) -> None:
    for stream, kind, payload in batch:
        await append(aredis, K, stream, kind, payload, **kw)


def test_a_config_change_reaches_redis_in_under_two_seconds(
    persister: Persister,
    db_at: Dynamo,
    redis_url: str,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    persister.start()
    wait_for(lambda: r.exists(K.restored), 20, "the persister to restore")
    monkeypatch.setenv("DORA_DYNAMODB_ENDPOINT", moto_endpoint)
    for quote_size in ("3", "4", "5"):
        assert dora(["config", "set", "--market", "KXA", f"quote_size={quote_size}"]) == 0
        written = time.monotonic()
        wait_for(
            lambda q=quote_size: r.hget(K.cfg_market("KXA"), "quote_size") == f"{q}.00",
            2.0,
            "the change in Redis",
            interval_s=0.01,
        )
        assert time.monotonic() - written < 2.0
    assert "market KXA" in capsys.readouterr().out
    assert persister.stop() == 0


async def test_kill_9_in_the_middle_of_a_batch_loses_and_duplicates_nothing(
    persister: Persister, db_at: Dynamo, redis_url: str, aredis: aioredis.Redis
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    persister.start()
    await asyncio.to_thread(wait_for, lambda: r.exists(K.restored), 20, "the restore")
    batch = events(4_500)
    await produce(aredis, batch)
    total = 3_000  # trade rows

    def in_flight() -> int:  # entries read by the persister and not yet acknowledged
        return sum(
            int(r.xpending(K.stream(s), PERSISTER_GROUP)["pending"])
            for s in ("orders", "fills", "decisions")
        )

    await asyncio.to_thread(wait_for, lambda: count(db_at, TRADES) > 300, 30, "some rows", 0.05)
    await asyncio.to_thread(wait_for, lambda: in_flight() > 0, 30, "a batch in hand", 0.001)
    persister.kill()
    written_before = count(db_at, TRADES)
    held = in_flight()
    assert written_before < total and held > 0  # killed with a batch in hand
    persister.start()
    await asyncio.to_thread(wait_for, lambda: drained(r), 60, "the backlog to drain", 0.2)
    assert_exactly_once(db_at, batch)
    assert "entries_reclaimed" in persister.logs()
    assert persister.stop() == 0


async def test_a_30_second_outage_ends_with_every_event_written_exactly_once(
    redis_url: str, aredis: aioredis.Redis, tmp_path: Path
) -> None:
    server = MotoServer().start()
    persister = Persister(redis_url, server.endpoint, tmp_path)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        db = Dynamo.from_settings(
            load_settings({"DORA_DYNAMODB_ENDPOINT": server.endpoint}, read_file=False),
            timeout_s=60.0,  # the checks' whole scans: as db_at's, longer than the product's 5 s
        )
        server.reset()
        create_tables(db.client, TableNames.from_prefix("dora_"))
        persister.start()
        await asyncio.to_thread(wait_for, lambda: r.exists(K.restored), 20, "the restore")
        batch = events(3_000)
        cap = 50  # a tiny stream cap: the backlog must survive it
        await produce(aredis, batch[:300], maxlen=cap)
        await asyncio.to_thread(wait_for, lambda: drained(r), 20, "the first events", 0.1)

        server.stop()
        outage_started = time.monotonic()
        sent = 300
        while time.monotonic() - outage_started < 30:
            await produce(aredis, batch[sent : sent + 90], maxlen=cap)
            sent += 90
            await asyncio.sleep(1)
        heartbeat = orjson.loads(r.get(K.hb("persister")) or "{}")
        lag = orjson.loads(r.get(K.persister_lag) or "{}")
        assert heartbeat["dynamodb"] == "failing" and lag["backlog"] > 2_000
        backlog = sum(r.xlen(K.stream(s)) for s in ("orders", "fills", "decisions"))
        assert backlog >= sent - 300  # nothing unacknowledged was trimmed

        server.start()
        await produce(aredis, batch[sent:], maxlen=cap)
        await asyncio.to_thread(wait_for, lambda: drained(r), 60, "the backlog to drain", 0.2)
        assert_exactly_once(db, batch)
        logs = persister.logs()
        assert "dynamodb_failed" in logs and "dynamodb_recovered" in logs
        assert persister.stop() == 0
        for stream in ("orders", "fills", "decisions"):  # trimmed back to the cap once stored
            await append(aredis, K, stream, "noise", {}, maxlen=cap)
            assert r.xlen(K.stream(stream)) <= cap + 64 + 1
    finally:
        persister.kill()
        server.stop()
