import re
from dataclasses import fields
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "conf" / "dora.toml.example"
COMMENTED_SETTING = re.compile(r"^# ([a-z_]+) = (.+)$")
ENVIRONMENT_ONLY = {"kalshi_private_key", "web_token"}  # the file refuses these secrets


def test_defaults_and_environment() -> None:
    s = load_settings({}, read_file=False)
    assert s.redis_url == "redis://127.0.0.1:6379/0" and s.key_prefix == "dora:"
    assert s.rest_base_url == "https://external-api.demo.kalshi.co/trade-api/v2"
    s = load_settings({"DORA_KALSHI_ENV": "prod"}, read_file=False)
    assert s.ws_url == "wss://external-api-ws.kalshi.com/trade-api/ws/v2"


def test_sim_derives_ws_url_from_base() -> None:
    s = load_settings(
        {"DORA_KALSHI_ENV": "sim", "DORA_KALSHI_BASE_URL": "http://127.0.0.1:8123/trade-api/v2"},
        read_file=False,
    )
    assert s.ws_url == "ws://127.0.0.1:8123/trade-api/ws/v2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DORA_KALSHI_ENV": "staging"}, "DORA_KALSHI_ENV must be one of prod, demo, sim"),
        ({"DORA_REDIS_URL": "http://x"}, "DORA_REDIS_URL must be a redis://"),
        ({"DORA_REDIS_URL": "redis://:6379"}, "must name a host"),
        ({"DORA_REDIS_URL": "redis://h:port/0"}, "bad port"),
        ({"DORA_KALSHI_ENV": "sim"}, "needs DORA_KALSHI_BASE_URL"),
        ({"DORA_SHARD_INDEX": "2", "DORA_SHARD_COUNT": "2"}, "DORA_SHARD_INDEX must be <"),
        ({"DORA_RATE_TIER": "gold"}, "DORA_RATE_TIER"),
        ({"DORA_TRADING_DAY_TZ": "Mars/Olympus"}, "DORA_TRADING_DAY_TZ must be an IANA"),
        ({"DORA_RISK_STALE_MS": "1000"}, "DORA_RISK_STALE_MS must be longer"),
        ({"DORA_REDIS_OUTAGE_CANCEL_S": "0"}, "DORA_REDIS_OUTAGE_CANCEL_S must be between"),
        ({"DORA_COLD_NICE": "20"}, "DORA_COLD_NICE must be between 0 and 19"),
        ({"DORA_COLD_NICE": "-5"}, "DORA_COLD_NICE must be between 0 and 19"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env, read_file=False)


def test_key_source_is_required_once() -> None:
    s = load_settings({"DORA_KALSHI_KEY_ID": "abc"}, read_file=False)
    with pytest.raises(ConfigError, match="no Kalshi private key source"):
        s.require_kalshi_credentials()
    s = load_settings(
        {
            "DORA_KALSHI_KEY_ID": "abc",
            "DORA_KALSHI_PRIVATE_KEY_PATH": "/k.pem",
            "DORA_KALSHI_PRIVATE_KEY_SSM_PARAM": "/dora/key",
        },
        read_file=False,
    )
    with pytest.raises(ConfigError, match="more than one"):
        s.require_kalshi_credentials()


def test_toml_file_and_environment_wins(tmp_path: Path) -> None:
    conf = tmp_path / "dora.toml"
    conf.write_text('key_prefix = "bot:"\nrate_tier = "advanced"\n')
    s = load_settings({"DORA_RATE_TIER": "premier"}, conf)
    assert s.key_prefix == "bot:" and s.rate_tier == "premier"
    conf.write_text('colour = "red"\n')
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings({}, conf)
    conf.write_text('kalshi_private_key = "x"\n')
    with pytest.raises(ConfigError, match="must not hold a private key"):
        load_settings({}, conf)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, tmp_path / "missing.toml")


def test_redacted_hides_secrets() -> None:
    s = load_settings(
        {"DORA_REDIS_URL": "redis://u:hunter2@h:1/0", "DORA_KALSHI_PRIVATE_KEY": "-----BEGIN"},
        read_file=False,
    )
    text = str(s.redacted()) + repr(s)
    assert "hunter2" not in text and "BEGIN" not in text


def example_lines() -> dict[str, str]:
    """The example's commented-out settings, uncommented: name -> its TOML line."""
    found = {}
    for line in EXAMPLE.read_text().splitlines():
        match = COMMENTED_SETTING.match(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} is in the example twice"
            found[match.group(1)] = line[2:]
    return found


def test_the_example_loads_through_the_settings_loader_as_shipped() -> None:
    assert load_settings({}, EXAMPLE) == Settings()


def test_the_example_lists_every_setting() -> None:
    every = {f.name for f in fields(Settings)}
    assert set(example_lines()) == every - ENVIRONMENT_ONLY
    text = EXAMPLE.read_text()
    assert all(f"# {name}:" in text for name in ENVIRONMENT_ONLY)


def test_every_setting_in_the_example_is_at_its_default(tmp_path: Path) -> None:
    uncommented = tmp_path / "dora.toml"
    uncommented.write_text("\n".join(example_lines().values()) + "\n")
    assert load_settings({}, uncommented) == Settings()


def test_the_dashboard_binds_to_loopback_and_its_token_is_a_secret(tmp_path: Path) -> None:
    s = load_settings({}, read_file=False)
    assert (s.web_host, s.web_port, s.web_token) == ("127.0.0.1", 8765, "")
    token = "tok-0123456789abcdef-secret"
    s = load_settings({"DORA_WEB_TOKEN": token, "DORA_WEB_PORT": "9000"}, read_file=False)
    assert s.web_token == token and s.web_port == 9000
    assert token not in str(s.redacted()) + repr(s) and s.redacted()["web_token"] == "[set]"
    conf = tmp_path / "dora.toml"
    conf.write_text(f'web_token = "{token}"\n')
    with pytest.raises(ConfigError, match="must not hold the web token"):
        load_settings({}, conf)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DORA_WEB_TOKEN": "short"}, "DORA_WEB_TOKEN must be at least 16 characters"),
        ({"DORA_WEB_TOKEN": "has a space in the middle"}, "without spaces"),
        ({"DORA_WEB_PORT": "0"}, "DORA_WEB_PORT must be between 1 and 65535"),
        ({"DORA_WEB_HOST": "http://x"}, "DORA_WEB_HOST must be a host name"),
    ],
)
def test_bad_dashboard_settings_name_the_variable_never_the_token(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(env, read_file=False)
    assert env.get("DORA_WEB_TOKEN", "@@") not in str(raised.value)


def test_the_replaced_day_start_hour_says_how_to_migrate(tmp_path: Path) -> None:
    """The trading day moved from a UTC hour to a time zone's midnight: an old setting is never
    silently ignored (the daily loss limit's day would move without the operator knowing)."""
    with pytest.raises(ConfigError, match="DORA_TRADING_DAY_TZ=UTC"):
        load_settings({"DORA_PNL_DAY_START_HOUR_UTC": "0"}, read_file=False)
    old = tmp_path / "dora.toml"
    old.write_text("pnl_day_start_hour_utc = 8\n")
    with pytest.raises(ConfigError, match="replaced by trading_day_tz"):
        load_settings({}, old)
    assert load_settings({"DORA_TRADING_DAY_TZ": "UTC"}, read_file=False).trading_day_tz == "UTC"
