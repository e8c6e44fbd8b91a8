"""CloudWatch metrics and SNS alerts against moto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import redis.asyncio as aioredis
from moto import mock_aws

from common.alerts import Alerter
from common.clock import ManualClock
from common.config import GlobalConfig
from common.domain import Position
from common.keys import Keys
from common.log import get_logger
from common.metrics import Metrics, cloudwatch_client, publish, run_publisher
from common.redis_codec import encode_global_config, encode_position
from common.runtime import Context
from common.settings import Settings, load_settings
from services.risk.service import RiskService
from tests.services.test_risk import FakeExchange

NOW = 1_800_000_000_000


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_metrics_are_published_to_cloudwatch(aws: None) -> None:
    settings = load_settings({}, read_file=False)
    metrics = Metrics("dora")
    for _ in range(3):
        metrics.count("orders_placed")
    metrics.count("fills_count", 2)
    metrics.gauge_money("daily_pnl", -12_500_000)
    for ms in (1.5, 4.0, 2.5):
        metrics.observe_ms("loop_latency_ms", ms)
    client = cloudwatch_client(settings)
    publish(client, "dora", metrics.take())
    names = {m["MetricName"] for m in client.list_metrics(Namespace="dora")["Metrics"]}
    assert names == {"orders_placed", "fills_count", "daily_pnl", "loop_latency_ms"}
    assert metrics.take() == [
        {"MetricName": "daily_pnl", "Value": -12.5, "Unit": "None"}
    ]  # gauges persist
    assert metrics.totals == {"orders_placed": 3, "fills_count": 2}


async def test_the_publisher_runs_off_the_hot_path_and_flushes_at_the_end(aws: None) -> None:
    settings = load_settings({"DORA_METRICS_INTERVAL_S": "1"}, read_file=False)
    metrics = Metrics("dora-test")
    done = asyncio.Event()
    task = asyncio.create_task(run_publisher(metrics, settings, get_logger("t"), final=done))
    metrics.count("api_errors", 4)
    await asyncio.sleep(1.3)
    metrics.count("orders_cancelled")
    done.set()
    await asyncio.wait_for(task, 10)
    client = boto3.client("cloudwatch", region_name="us-east-1")
    names = {m["MetricName"] for m in client.list_metrics(Namespace="dora-test")["Metrics"]}
    assert names == {"api_errors", "orders_cancelled"}
    assert metrics.published == 2 and metrics.failures == 0


async def test_a_failing_publisher_never_raises() -> None:
    settings = load_settings(
        {"DORA_METRICS_INTERVAL_S": "1", "DORA_CLOUDWATCH_ENDPOINT": "http://127.0.0.1:9"},
        read_file=False,
    )
    metrics = Metrics("dora")
    metrics.count("orders_placed")
    done = asyncio.Event()
    done.set()
    await asyncio.wait_for(run_publisher(metrics, settings, get_logger("t"), final=done), 30)
    assert metrics.failures == 1


def topic_with_queue() -> tuple[str, str]:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="dora-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue_url


def received(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


async def test_alerts_reach_sns_once_per_cooldown(aws: None) -> None:
    topic, queue = topic_with_queue()
    settings = load_settings(
        {"DORA_SNS_TOPIC_ARN": topic, "DORA_ALERT_COOLDOWN_S": "60"}, read_file=False
    )
    clock = ManualClock(NOW)
    alerter = Alerter(settings, get_logger("t"), clock)
    assert await alerter.alert("trading_halted", "trading halted: test", "stopped")
    assert not await alerter.alert(
        "trading_halted", "trading halted: test", "again"
    )  # cooling down
    clock.advance(61_000)
    assert await alerter.alert("trading_halted", "trading halted: test", "later")
    bodies = received(queue)
    assert [b["Message"] for b in bodies] == ["stopped", "later"]
    assert bodies[0]["Subject"] == "dora: trading halted: test"
    with pytest.raises(ValueError):
        await alerter.alert("bogus", "x", "y")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


async def test_risk_raises_the_plan_alerts(settings: Settings, aredis: aioredis.Redis) -> None:
    k = Keys()
    await aredis.set(k.restored, "1")
    await aredis.set(k.hb("executor"), json.dumps({"pid": 1, "ts_ms": 1, "api_errors": 0}))
    await aredis.hset(
        k.cfg_global,
        mapping=encode_global_config(GlobalConfig.from_item({"max_daily_loss": "10"}), 1),
    )
    s = load_settings(
        {
            "DORA_REDIS_URL": settings.redis_url,
            "DORA_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
            "DORA_ALERT_API_ERRORS": "5",
            "DORA_ALERT_NO_FILLS_HOURS": "1",
        },
        read_file=False,
    )
    service = RiskService(s, client=FakeExchange())  # type: ignore[arg-type]
    clock = ManualClock(NOW)
    ctx = Context("risk", s, aredis, k, clock, get_logger("risk"))
    await service.start(ctx)
    recorder = Recorder()
    assert service.alerter is not None
    service.alerter.client = recorder
    await service.check(ctx)
    assert recorder.sent == []
    # a realized loss of $6 (> 50% of the $10 limit): the PnL alert, not yet a halt
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 0, 0, -6_000_000)))
    await service.check(ctx)
    assert [m["MessageAttributes"]["kind"]["StringValue"] for m in recorder.sent] == [
        "pnl_below_threshold"
    ]
    # API errors piling up in the executor
    await aredis.set(k.hb("executor"), json.dumps({"pid": 1, "ts_ms": 1, "api_errors": 7}))
    await service.check(ctx)
    assert recorder.sent[-1]["MessageAttributes"]["kind"]["StringValue"] == "api_errors_sustained"
    # a halt is told once
    await aredis.hset(k.pos("KX"), mapping=encode_position(Position("KX", 0, 0, -11_000_000)))
    await service.check(ctx)
    await service.check(ctx)
    kinds = [m["MessageAttributes"]["kind"]["StringValue"] for m in recorder.sent]
    assert kinds.count("trading_halted") == 1
    await service.stop(ctx)


async def test_no_fills_alert(settings: Settings, aredis: aioredis.Redis) -> None:
    from common.config import MarketConfig
    from common.redis_codec import encode_market_config

    k = Keys()
    await aredis.set(k.restored, "1")
    await aredis.set(k.hb("executor"), json.dumps({"pid": 1, "ts_ms": 1}))
    await aredis.sadd(k.cfg_markets, "KX")
    await aredis.hset(
        k.cfg_market("KX"), mapping=encode_market_config(MarketConfig("KX", enabled=True), 1)
    )
    s = load_settings(
        {"DORA_REDIS_URL": settings.redis_url, "DORA_ALERT_NO_FILLS_HOURS": "2"}, read_file=False
    )
    service = RiskService(s, client=FakeExchange())  # type: ignore[arg-type]
    clock = ManualClock(NOW)
    ctx = Context("risk", s, aredis, k, clock, get_logger("risk"))
    await service.start(ctx)
    assert service.alerter is not None
    await service.check(ctx)
    assert "no_fills" not in service.alerter.last_sent_ms
    clock.advance(2 * 3_600_000)
    await service.check(ctx)
    assert "no_fills" in service.alerter.last_sent_ms
    await service.stop(ctx)


async def test_no_fills_is_not_alerted_while_trading_is_switched_off(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    from common.config import GlobalConfig, MarketConfig
    from common.redis_codec import encode_global_config, encode_market_config

    k = Keys()
    await aredis.set(k.restored, "1")
    await aredis.set(k.hb("executor"), json.dumps({"pid": 1, "ts_ms": 1}))
    await aredis.sadd(k.cfg_markets, "KX")
    await aredis.hset(
        k.cfg_market("KX"), mapping=encode_market_config(MarketConfig("KX", enabled=True), 1)
    )
    await aredis.hset(
        k.cfg_global, mapping=encode_global_config(GlobalConfig(trading_enabled=False), 1)
    )
    s = load_settings(
        {"DORA_REDIS_URL": settings.redis_url, "DORA_ALERT_NO_FILLS_HOURS": "2"}, read_file=False
    )
    service = RiskService(s, client=FakeExchange())  # type: ignore[arg-type]
    clock = ManualClock(NOW)
    ctx = Context("risk", s, aredis, k, clock, get_logger("risk"))
    await service.start(ctx)
    assert service.alerter is not None
    clock.advance(3 * 3_600_000)
    await service.check(ctx)
    assert "no_fills" not in service.alerter.last_sent_ms  # no quotes: no fill is expected
    await service.stop(ctx)
