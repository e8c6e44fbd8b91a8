"""CloudWatch metrics (original plan §7) without slowing the hot path.

Recording is a dictionary update in the process (``count``, ``gauge``, ``observe_ms``); a
background task hands the minute's values to PutMetricData in a worker thread every
``metrics_interval_s``. The metrics of the plan, all in the namespace ``DORA_METRICS_NAMESPACE``
(default ``dora``) with no dimensions:

| metric | unit | from |
|---|---|---|
| ``orders_placed``, ``orders_cancelled`` | Count | executor |
| ``fills_count`` | Count | fills |
| ``api_errors`` | Count | every process that calls Kalshi |
| ``loop_latency_ms`` | Milliseconds (statistic set) | executor: one market pass |
| ``daily_pnl``, ``total_exposure`` | None (dollars) | risk |

A failed publish (no network, no credentials, throttled) is logged and the values are dropped:
monitoring must never hold up trading. Publishing is on only with ``DORA_METRICS_ENABLED=true``
(production's env file sets it), so a local run never reaches for AWS by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from common.log import EventLogger
from common.numbers import MONEY_SCALE
from common.settings import Settings

MAX_DATUMS_PER_CALL = 1000


@dataclass
class _Stats:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


@dataclass
class Metrics:
    namespace: str
    enabled: bool = True
    counters: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # since start: shown in the heartbeat
    gauges: dict[str, float] = field(default_factory=dict)
    timings: dict[str, _Stats] = field(default_factory=dict)
    published: int = 0
    failures: int = 0

    # ---- recording (hot path: no IO) -----------------------------------------------------------

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        self.totals[name] = self.totals.get(name, 0) + n

    def gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def gauge_money(self, name: str, micro_dollars: int) -> None:
        """A money gauge in dollars (display only: nothing decides on a CloudWatch value)."""
        self.gauges[name] = micro_dollars / MONEY_SCALE

    def observe_ms(self, name: str, value_ms: float) -> None:
        stats = self.timings.get(name)
        if stats is None:
            stats = self.timings[name] = _Stats()
        stats.add(value_ms)

    # ---- publishing ----------------------------------------------------------------------------

    def take(self) -> list[dict[str, Any]]:
        """Everything recorded since the last call, as PutMetricData datums (counters reset)."""
        data: list[dict[str, Any]] = []
        for name, count in self.counters.items():
            data.append({"MetricName": name, "Value": count, "Unit": "Count"})
        for name, level in self.gauges.items():
            data.append({"MetricName": name, "Value": level, "Unit": "None"})
        for name, stats in self.timings.items():
            if stats.count:
                data.append(
                    {
                        "MetricName": name,
                        "Unit": "Milliseconds",
                        "StatisticValues": {
                            "SampleCount": stats.count,
                            "Sum": stats.total,
                            "Minimum": stats.low,
                            "Maximum": stats.high,
                        },
                    }
                )
        self.counters = {}
        self.timings = {}
        return data


def cloudwatch_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "cloudwatch",
        region_name=settings.aws_region,
        endpoint_url=settings.cloudwatch_endpoint or None,
        config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
    )


def publish(client: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for start in range(0, len(data), MAX_DATUMS_PER_CALL):
        client.put_metric_data(
            Namespace=namespace, MetricData=data[start : start + MAX_DATUMS_PER_CALL]
        )


async def run_publisher(
    metrics: Metrics, settings: Settings, log: EventLogger, *, final: asyncio.Event
) -> None:
    """Publish every ``metrics_interval_s`` until ``final`` is set, then once more."""
    if not metrics.enabled:
        return
    client: Any = None
    with contextlib.suppress(Exception):  # a failure here is retried (and logged) at publish
        # Now, while the process starts, not at the first publish: building a boto3 client is
        # a third of a second of the GIL (module imports, endpoint data), which a worker thread
        # takes from the event loop in 5 ms slices. A minute into trading, in every process at
        # once, that showed in the tick-to-order p99.
        client = await asyncio.to_thread(cloudwatch_client, settings)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(final.wait(), settings.metrics_interval_s)
        # Decided before publishing: a stop that comes while a publish is in flight gets one
        # more round, so what was recorded meanwhile is not lost.
        stopping = final.is_set()
        data = metrics.take()
        if data:
            try:
                if client is None:
                    client = await asyncio.to_thread(cloudwatch_client, settings)
                await asyncio.to_thread(publish, client, metrics.namespace, data)
                metrics.published += len(data)
            except Exception as exc:
                metrics.failures += 1
                if metrics.failures in (1, 10, 100) or metrics.failures % 1000 == 0:
                    log.warning(
                        "metrics_publish_failed",
                        error=f"{type(exc).__name__}: {exc}",
                        failures=metrics.failures,
                    )
        if stopping:
            return
