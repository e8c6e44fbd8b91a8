from decimal import Decimal

import pytest

from common.config import GlobalConfig, MarketConfig
from common.errors import ConfigError


def test_market_config_from_human_units() -> None:
    config = MarketConfig.from_item(
        {
            "market_id": "KX-1",
            "enabled": True,
            "max_inventory_yes": Decimal("50"),
            "max_inventory_no": "40",
            "min_spread": Decimal("0.06"),
            "quote_size": 15,
            "inventory_skew_factor": "0.75",
            "toxicity_score": Decimal("0.2"),
            "updated_at": "2026-11-24T10:00:00Z",
        }
    )
    assert config.max_inventory_yes == 5000 and config.max_inventory_no == 4000
    assert config.min_spread == 600 and config.quote_size == 1500
    assert config.inventory_skew_factor == 7500 and config.toxicity_score == 2000
    assert MarketConfig.from_item(config.to_item()) == config
    assert all(not isinstance(v, float) for v in config.to_item().values())


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("quote_size", "-5", "quote_size must be"),
        ("quote_size", "0", ">= 0.01"),
        ("min_spread", "1.5", "between 0 and 1"),
        ("enabled", "maybe", "true or false"),
        ("toxicity_score", "2", "between 0 and 1"),
        ("inventory_skew_factor", "abc", "decimal number"),
        ("updated_at", "yesterday", "ISO-8601"),
        ("max_inventory_yes", "1.001", "contracts"),
    ],
)
def test_market_config_errors_name_field_value_and_rule(field: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError) as info:
        MarketConfig.from_item({"market_id": "KX-1", field: value})
    message = str(info.value)
    assert field in message and repr(value) in message and rule in message


def test_unknown_field_and_cross_field_rule() -> None:
    with pytest.raises(ConfigError, match="unknown market config field 'colour'"):
        MarketConfig.from_item({"market_id": "KX", "colour": "red"})
    with pytest.raises(ConfigError, match="quote_size must be <="):
        MarketConfig.from_item(
            {
                "market_id": "KX",
                "quote_size": "500",
                "max_inventory_yes": "10",
                "max_inventory_no": "10",
            }
        )
    with pytest.raises(ConfigError, match="market_id"):
        MarketConfig.from_item({"market_id": ""})


def test_global_config() -> None:
    config = GlobalConfig.from_item(
        {
            "max_total_exposure": "2500",
            "max_daily_loss": Decimal("150.5"),
            "loop_interval_ms": 250,
            "trading_enabled": "false",
        }
    )
    assert config.max_total_exposure == 2_500_000_000 and config.max_daily_loss == 150_500_000
    assert config.loop_interval_ms == 250 and not config.trading_enabled
    assert GlobalConfig.from_item(config.to_item()) == config
    for field, value in [
        ("max_daily_loss", "-1"),
        ("loop_interval_ms", "5"),
        ("loop_interval_ms", "1.5"),
        ("max_total_exposure", "lots"),
    ]:
        with pytest.raises(ConfigError, match=field):
            GlobalConfig.from_item({field: value})
