from decimal import Decimal

import pytest

from common.config import GlobalConfig, MarketConfig
from common.dynamo.codec import to_attrs
from common.dynamo.config_store import parse_version, validate_market_item
from common.errors import ConfigError
from tests.support.moto import Backend

NOW = "2026-01-01T00:00:00.000Z"
LATER = "2026-01-01T00:00:05.000Z"


@pytest.fixture
def store(dynamo_backend: Backend):  # type: ignore[no-untyped-def]
    dynamo_backend.create_tables()
    return dynamo_backend.dynamo().config


def test_a_new_market_gets_the_defaults_disabled_and_version_1(store) -> None:  # type: ignore[no-untyped-def]
    config, write = store.update_market("KXA", {"quote_size": "5"}, NOW)
    assert write.created and write.version == 1
    assert config == MarketConfig("KXA", quote_size=500, updated_at=NOW)
    raw = store.get_market("KXA")
    assert raw["version"] == Decimal(1) and raw["enabled"] is False
    assert raw["quote_size"] == Decimal("5") and raw["updated_at"] == NOW
    assert validate_market_item(raw) == (config, 1)


def test_every_write_bumps_the_version_and_sets_updated_at(store) -> None:  # type: ignore[no-untyped-def]
    store.update_market("KXA", {}, NOW)
    config, write = store.update_market("KXA", {"enabled": "true"}, LATER)
    assert not write.created and write.version == 2
    assert config.enabled and config.updated_at == LATER
    assert [item["market_id"] for item in store.scan_markets()] == ["KXA"]


def test_an_invalid_change_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    store.update_market("KXA", {"quote_size": "5"}, NOW)
    with pytest.raises(ConfigError, match="min_spread"):
        store.update_market("KXA", {"min_spread": "1.5"}, LATER)
    with pytest.raises(ConfigError, match="quote_size must be <="):
        store.update_market("KXA", {"quote_size": "1000"}, LATER)
    assert store.get_market("KXA")["version"] == 1
    with pytest.raises(ConfigError, match="has no config"):
        store.update_market("KXB", {"enabled": False}, NOW, create=False)
    assert store.get_market("KXB") is None


def test_a_concurrent_writer_is_never_lost(store) -> None:  # type: ignore[no-untyped-def]
    store.update_market("KXA", {}, NOW)
    stale = store.get_market("KXA")
    store.update_market("KXA", {"quote_size": "7"}, NOW)  # the other writer
    real_get = store.get_market
    reads = []

    def get_market(ticker: str):  # type: ignore[no-untyped-def]
        reads.append(ticker)
        return stale if len(reads) == 1 else real_get(ticker)

    store.get_market = get_market
    config, write = store.update_market("KXA", {"enabled": True}, LATER)
    assert len(reads) == 2  # the stale write was refused, the change re-applied on the new item
    assert config.enabled and config.quote_size == 700 and write.version == 3


def test_unknown_attributes_are_dropped_by_the_next_write(store, dynamo_backend: Backend) -> None:  # type: ignore[no-untyped-def]
    client = dynamo_backend.dynamo().client
    client.put_item(
        TableName="dora_market_config",
        Item=to_attrs({"market_id": "KXA", "colour": "red", "version": 4}),
    )
    _, write = store.update_market("KXA", {"enabled": True}, NOW)
    assert write.dropped == ("colour",) and write.version == 5
    assert "colour" not in store.get_market("KXA")


def test_version_bumps_are_conditional(store) -> None:  # type: ignore[no-untyped-def]
    store.update_market("KXA", {}, NOW)
    assert not store.bump_market_version("KXA", Decimal(7), 8)
    assert store.bump_market_version("KXA", Decimal(1), 2)
    assert store.get_market("KXA")["version"] == 2
    assert store.get_global() is None
    store.update_global({}, NOW)
    assert store.bump_global_version(Decimal(1), 5)
    assert store.get_global()["version"] == 5


def test_global_config(store) -> None:  # type: ignore[no-untyped-def]
    config, write = store.update_global({"max_daily_loss": "50", "trading_enabled": "no"}, NOW)
    assert write.created and write.version == 1
    assert config == GlobalConfig(max_daily_loss=50_000_000, trading_enabled=False, updated_at=NOW)
    raw = store.get_global()
    assert raw["key"] == "global_config" and raw["max_daily_loss"] == Decimal("50")
    with pytest.raises(ConfigError, match="loop_interval_ms"):
        store.update_global({"loop_interval_ms": "1.5"}, LATER)
    assert store.get_global()["version"] == 1


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (Decimal(3), 3), ("4", 4), (5, 5)])
def test_versions(value: object, expected: int) -> None:
    assert parse_version(value) == expected


@pytest.mark.parametrize("value", [Decimal("1.5"), -1, "x", True, {"a": 1}, Decimal(2**60)])
def test_bad_versions(value: object) -> None:
    with pytest.raises(ConfigError, match="version"):
        parse_version(value)


def test_a_version_stored_as_null_is_bumped_like_a_missing_one(store) -> None:  # type: ignore[no-untyped-def]
    """Found by the mirror fuzz: an item whose version is an explicit DynamoDB null could never
    be bumped (the condition asked for no attribute at all), so its edit was never mirrored."""
    store.client.put_item(
        TableName=store.names.market_config,
        Item={"market_id": {"S": "KXN"}, "enabled": {"BOOL": True}, "version": {"NULL": True}},
    )
    assert store.bump_market_version("KXN", None, 1)
    assert store.get_market("KXN")["version"] == 1


def test_a_global_config_without_a_version_is_bumped(store) -> None:  # type: ignore[no-untyped-def]
    """dora_state's key is named "key", a DynamoDB reserved word: the condition must alias it
    (found by the mirror fuzz: a console edit that dropped the version was never mirrored)."""
    store.client.put_item(
        TableName=store.names.state,
        Item={"key": {"S": "global_config"}, "trading_enabled": {"BOOL": True}},
    )
    assert store.bump_global_version(None, 1)
    assert store.get_global()["version"] == 1
