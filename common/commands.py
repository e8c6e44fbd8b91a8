"""What an operator can change, one code path for the ``dora`` commands and the dashboard.

- ``change_config``: fields of the global config or of one market, validated whole before
  anything is written (``ConfigError`` naming the field, the value and the rule; nothing written);
- ``set_market_enabled``: start or stop quoting one market;
- ``cancel_all_resting``: every resting order of dora's subaccount cancelled directly at the
  exchange, first with Kalshi's cancel-all, then by id (``cancel_everything``).

The halt and its lifting are ``common.halt``. DynamoDB calls here are blocking (boto3): an
asyncio caller runs them in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as aioredis
from botocore.exceptions import BotoCoreError, ClientError

from common.config import (
    EVENT_FIELDS,
    GlobalConfig,
    MarketConfig,
    check_value,
    parse_event_loss,
)
from common.dynamo import Dynamo
from common.dynamo.config_store import ConfigWrite, check_ticker
from common.dynamo.tables import describe, error_code
from common.errors import ConfigError, StorageError
from common.numbers import format_money
from common.settings import Settings

if TYPE_CHECKING:
    from common.kalshi.client import KalshiClient
    from common.kalshi.transport import RetryHook
    from common.kalshi.wire.listing import Skipped

T = TypeVar("T")
CANCEL_ATTEMPTS = 3

MARKET_KEYS = tuple(f for f in MarketConfig.FIELDS if f != "updated_at")
GLOBAL_KEYS = tuple(f for f in GlobalConfig.FIELDS if f != "updated_at")
EVENT_KEYS = EVENT_FIELDS


def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a DynamoDB call; its failure becomes one ``StorageError`` line."""
    try:
        return fn(*args, **kwargs)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise StorageError(
                f"{what}: a dora table does not exist ({describe(exc)}); run 'dora tables create'"
            ) from None
        raise StorageError(f"{what}: {describe(exc)}") from None
    except BotoCoreError as exc:
        raise StorageError(f"{what}: {describe(exc)}") from None


def check_fields(changes: Mapping[str, object], market: str | None) -> None:
    """Every field must be a known one of the global config, or of a market's with ``market``."""
    known, what = (MARKET_KEYS, "market") if market is not None else (GLOBAL_KEYS, "global")
    if not changes:
        raise ConfigError("no field to change: give at least one KEY=VALUE")
    for key in changes:
        if key not in known:
            raise ConfigError(f"unknown {what} config field {key!r}; known: {', '.join(known)}")
    for key, value in changes.items():  # each value first: "validated first" (DESIGN.md §8)
        check_value(key, value, market=market is not None)


def change_event_config(
    db: Dynamo, event: str, changes: Mapping[str, object], now_iso: str
) -> ConfigChange:
    """Apply ``changes`` (``max_event_loss``) to one event's overrides; ``ConfigError`` and
    nothing written when they do not validate."""
    check_ticker(event)
    if not changes:
        raise ConfigError("no field to change: give at least one KEY=VALUE")
    if "max_event_loss" in changes:  # the value first, before DynamoDB is asked anything
        parse_event_loss(changes["max_event_loss"])
    limits, write = call(
        "writing the event config", db.config.update_event, event, changes, now_iso
    )
    item = {"max_event_loss": format_money(limits.max_event_loss[event], 2)}
    return ConfigChange(f"event {event}", item, write)


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """What a successful change stored: the whole item in human units and the write."""

    label: str  # "global config" or "market T"
    item: dict[str, Any]
    write: ConfigWrite


def change_config(
    db: Dynamo, market: str | None, changes: Mapping[str, object], now_iso: str
) -> ConfigChange:
    """Apply ``changes`` (field -> human value) to the global config, or to ``market``'s
    (created with the defaults when missing). Raises ``ConfigError`` and writes nothing when the
    resulting item does not validate."""
    if market is not None:
        check_ticker(market)
    check_fields(changes, market)
    if market is not None:
        config, write = call(
            "writing the market config", db.config.update_market, market, changes, now_iso
        )
        return ConfigChange(f"market {market}", config.to_item(), write)
    glob, write = call("writing the global config", db.config.update_global, changes, now_iso)
    return ConfigChange("global config", glob.to_item(), write)


def set_market_enabled(db: Dynamo, ticker: str, enabled: bool, now_iso: str) -> ConfigWrite:
    """Enable (creating the market's config with the defaults if missing) or disable quoting
    ``ticker``; disabling a market without a config is a ``ConfigError``."""
    check_ticker(ticker)
    _, write = call(
        "writing the market config",
        db.config.update_market,
        ticker,
        {"enabled": enabled},
        now_iso,
        create=enabled,
    )
    return write


@dataclass(frozen=True, slots=True)
class CancelAllResult:
    """What a cancel-all left: orders still resting that it tried to cancel, items whose id
    could not be read, and orders placed after its last cancel (a running executor quotes
    again: it is not halted by a cancel-all)."""

    subaccount: int
    market: str | None
    left: int
    unreadable: int
    placed_since: int = 0

    @property
    def clean(self) -> bool:
        return self.left == 0 and self.unreadable == 0

    @property
    def message(self) -> str:
        where = f" in {self.market}" if self.market else ""
        tail = f", {self.unreadable} without a readable id" if self.unreadable else ""
        if self.placed_since:
            tail += (
                f"; {self.placed_since} placed since by a running executor"
                " ('dora halt' stops it quoting)"
            )
        return (
            f"cancelled every resting order{where} of subaccount {self.subaccount}; "
            f"{self.left} left{tail}"
        )


async def cancel_everything(
    client: KalshiClient, market: str | None = None, placed_since: list[str] | None = None
) -> tuple[int, list[Skipped]]:
    """Cancel every resting order of the client's subaccount (or of one market): Kalshi's
    cancel-all first, before reading anything, then batch cancels of every id still listed (read
    no further than the id: a malformed order never stops it). Returns how many it tried to
    cancel still rest and the items whose id could not be read; the ids of orders that first
    rested after its last cancel (a running executor's new quotes) go in ``placed_since``."""
    if market is None:
        await client.cancel_all_orders()
    tried: set[str] = set()
    for _ in range(CANCEL_ATTEMPTS):
        unreadable: list[Skipped] = []
        refs = await client.get_open_order_refs(market, skipped=unreadable)
        if not refs:
            return 0, unreadable
        await client.cancel_orders(refs)
        tried.update(ref.order_id for ref in refs)
    unreadable = []
    still = await client.get_open_order_refs(market, skipped=unreadable)
    if placed_since is not None:
        placed_since.extend(ref.order_id for ref in still if ref.order_id not in tried)
    return sum(ref.order_id in tried for ref in still), unreadable


async def cancel_all_resting(
    settings: Settings,
    market: str | None = None,
    *,
    redis: aioredis.Redis | None = None,
    on_retry: RetryHook | None = None,
) -> CancelAllResult:
    """Cancel every resting order of dora's subaccount (or of ``market``) directly at the
    exchange (``cancel_everything``). With ``redis`` the requests draw on the account's shared
    rate budget; without, it needs no Redis at all. ``on_retry`` is told before each retry of a
    request (the cancels are retried for up to a minute). Raises ``ConfigError`` without a key."""
    settings.require_kalshi_credentials()
    from common.connect import kalshi_client

    client = await kalshi_client(settings, redis=redis)
    if on_retry is not None:
        client.transport.retry_hooks.append(on_retry)
    placed_since: list[str] = []
    try:
        left, unreadable = await cancel_everything(client, market, placed_since)
    finally:
        await client.aclose()
    return CancelAllResult(
        settings.kalshi_subaccount, market, left, len(unreadable), len(placed_since)
    )
