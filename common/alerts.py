"""Alerts to people (original plan §7): SNS when ``DORA_SNS_TOPIC_ARN`` is set, and always a
warning log line. The same alert is sent at most once per ``alert_cooldown_s``; sending happens in
a worker thread and a failure is logged, never raised."""

from __future__ import annotations

import asyncio
from typing import Any

from common.clock import Clock
from common.log import EventLogger
from common.settings import Settings

ALERTS = (
    "trading_halted",
    "halt_lifted_by_hand",  # risk: dora:risk's halted set to 0 by hand, written back
    "pnl_below_threshold",
    "api_errors_sustained",
    "no_fills",
    "risk_check_failing",
    "market_unquotable",  # marketdata: a value dora does not know stops quoting a market
    "exchange_paused",  # marketdata: trading inactive outside the published schedule
    "state_item_parked",  # the persister could not store an item (DynamoDB refused it)
)


def sns_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sns",
        region_name=settings.aws_region,
        endpoint_url=settings.sns_endpoint or None,
        config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3}),
    )


class Alerter:
    def __init__(
        self, settings: Settings, log: EventLogger, clock: Clock, client: Any = None
    ) -> None:
        self.topic_arn = settings.sns_topic_arn
        self.cooldown_ms = settings.alert_cooldown_s * 1000
        self.settings = settings
        self.log = log
        self.clock = clock
        self.client = client
        self.last_sent_ms: dict[str, int] = {}
        self.sent = 0

    async def alert(self, kind: str, subject: str, message: str) -> bool:
        """Send ``kind`` unless it was sent within the cooldown; returns True when sent."""
        if kind not in ALERTS:
            raise ValueError(f"unknown alert {kind!r}; known: {', '.join(ALERTS)}")
        now = self.clock.now_ms()
        last = self.last_sent_ms.get(kind)
        if last is not None and now - last < self.cooldown_ms:
            return False
        self.last_sent_ms[kind] = now
        self.log.warning("alert", kind=kind, subject=subject, message=message)
        if not self.topic_arn:
            return True
        try:
            if self.client is None:
                self.client = await asyncio.to_thread(sns_client, self.settings)
            await asyncio.to_thread(
                self.client.publish,
                TopicArn=self.topic_arn,
                Subject=f"dora: {subject}"[:100],
                Message=message,
                MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}},
            )
            self.sent += 1
        except Exception as exc:
            self.log.error("alert_send_failed", kind=kind, error=f"{type(exc).__name__}: {exc}")
        return True

    def clear(self, kind: str) -> None:
        """The condition ended: the next occurrence alerts at once."""
        self.last_sent_ms.pop(kind, None)
