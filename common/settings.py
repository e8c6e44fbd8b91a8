"""Settings from ``DORA_*`` environment variables and an optional ``conf/dora.toml`` (DESIGN.md §8).

The environment wins over the file. In the file a setting is written without the ``DORA_`` prefix
and in lower case (``redis_url = "redis://..."``). Every value is checked here, at start, and a bad
one stops the process with one line naming the setting, the value and the rule.
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.errors import ConfigError

KALSHI_ENVS: dict[str, tuple[str, str]] = {
    # env: (REST base, WebSocket URL), the recommended hosts of API.md §1
    "prod": (
        "https://external-api.kalshi.com/trade-api/v2",
        "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
    ),
    "demo": (
        "https://external-api.demo.kalshi.co/trade-api/v2",
        "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
    ),
    "sim": ("", ""),  # the local simulator: DORA_KALSHI_BASE_URL says where
}
RATE_TIERS = ("basic", "advanced", "expert", "premier", "paragon", "prime", "prestige")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_CONFIG_FILE = "conf/dora.toml"


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_ca_cert: str = ""  # CA bundle for rediss:// (ElastiCache in-transit encryption)
    # Redis Cluster / ElastiCache cluster mode: the cluster client, hash-tagged keys (common/keys.py)
    redis_cluster: bool = False
    key_prefix: str = "dora:"
    dynamodb_endpoint: str = ""  # empty: AWS
    aws_region: str = "us-east-1"
    table_prefix: str = "dora_"
    decision_log_ttl_days: int = 14
    # a market's decisions that placed or changed orders are logged at most this often (every
    # new denial always is; 0: denials only). Every order is in the trade log regardless.
    decision_log_every_ms: int = 1_000
    kalshi_env: str = "demo"
    kalshi_base_url: str = ""
    kalshi_key_id: str = ""
    kalshi_private_key_path: str = ""
    kalshi_private_key_secret_id: str = ""
    kalshi_private_key_ssm_param: str = ""
    kalshi_private_key: str = field(default="", repr=False)  # PEM text in the environment
    # the subaccount (0 primary, 1-63) every read, write and cancel is scoped to: dora never
    # touches another subaccount's orders, and halt and cancel-all clear only this one
    kalshi_subaccount: int = 0
    # the local clock may differ from the exchange's by at most this much: beyond it a process
    # that signs requests refuses to start, and the executor stops adding risk while running
    max_clock_skew_ms: int = 2_000
    clock_check_interval_s: int = 300  # how often the skew is measured again
    rate_tier: str = "basic"
    log_level: str = "info"
    shard_index: int = 0
    shard_count: int = 1
    heartbeat_interval_ms: int = 1_000
    heartbeat_ttl_ms: int = 5_000
    sns_topic_arn: str = ""
    metrics_namespace: str = "dora"
    # the risk check (PnL, limits) runs this often; the executor adds no risk once the last
    # check is older than ``risk_stale_ms`` (docs/operations.md "Failing closed")
    risk_interval_ms: int = 1_000
    risk_stale_ms: int = 5_000
    # an external fair value (``dora:fv:{ticker}``) older than this is ignored (0: never used)
    fv_stale_ms: int = 5_000
    trading_day_tz: str = "America/New_York"  # IANA zone whose midnight starts the trading day
    executor_silence_ms: int = 5_000  # risk cancels everything when the executor is this quiet
    executor_cancel_on_start: bool = False
    # after its answers a resting side holds this many ticks of room toward the market in the
    # exposure ledger, so its next amend that way needs no ledger step (0: never; see
    # services/executor/ahead.py)
    executor_ahead_ticks: int = 4
    # Kalshi order groups, the exchange-side net: every market's orders join a group (on the
    # market's exchange_index) that the exchange stops, cancelling its orders, once more contracts
    # matched within 15 s than its limit: a cap that holds even if dora does not.
    order_groups: bool = True
    order_group_quote_multiple: int = 4  # the limit: this many times the market's quote_size
    executor_order_group_contracts: int = 0  # > 0: this fixed limit in contracts instead
    # The exchange's calendar (DESIGN.md §5): quotes are pulled this long before a scheduled pause;
    # exchange status is polled this often (the schedule every few minutes).
    pause_lead_s: int = 30
    exchange_poll_ms: int = 5_000
    # A direct member's balance moves in $0.0001, anyone else's in $0.01: the rounding fee
    # (common/fees.py) depends on it.
    direct_member: bool = False
    # Ask for NO book levels in YES prices (Kalshi's announced default, after which the flag
    # goes away); false asks for NO prices. Books are right either way.
    ws_use_yes_price: bool = True
    # Redis silent this long: the executor cancels every resting order at the exchange and sends
    # nothing else until Redis answers and its orders are reconciled with the exchange
    redis_outage_cancel_s: int = 3
    uvloop: bool = True  # uvloop's event loop in every process; false: asyncio's own
    # The processes off the tick-to-order path (persister, risk, web) lower their CPU
    # priority by this much at start (``os.nice``): on a busy box the trading path's processes
    # get a core first (docs/operations.md "CPU priority"); 0 leaves every process alike.
    cold_nice: int = 10
    # Every process starts a session of its own at start (``os.setsid``): with autogroup (most
    # kernels) a session is one scheduling group, and the trading path's processes then each get
    # a group's share of the CPU instead of sharing one (docs/operations.md "CPU priority").
    own_session: bool = True
    trace_latency: bool = False  # tick-to-order samples for make bench (common/trace.py)
    metrics_enabled: bool = False  # on in production (deploy/dora.env); never by accident
    metrics_interval_s: int = 60
    cloudwatch_endpoint: str = ""  # empty: AWS (a moto server URL locally)
    sns_endpoint: str = ""  # empty: AWS
    alert_pnl_fraction_pct: int = 50  # alert when daily PnL <= -this % of max_daily_loss
    alert_api_errors: int = 20  # alert when this many API errors happen within 5 minutes
    alert_no_fills_hours: int = 4  # alert when quoting but no fill for this long (0: never)
    alert_cooldown_s: int = 900  # the same alert is sent at most once per this many seconds
    web_host: str = "127.0.0.1"  # the dashboard's bind address: loopback unless put behind TLS
    web_port: int = 8765
    # the token every dashboard control needs (empty: the dashboard is read-only); a secret
    web_token: str = field(default="", repr=False)

    @property
    def rest_base_url(self) -> str:
        return self.kalshi_base_url.rstrip("/") or KALSHI_ENVS[self.kalshi_env][0]

    @property
    def ws_url(self) -> str:
        """The WebSocket URL: the environment's, or derived from an overriding REST base."""
        if not self.kalshi_base_url:
            return KALSHI_ENVS[self.kalshi_env][1]
        parts = urlsplit(self.kalshi_base_url.rstrip("/"))
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path
        path = path[: -len("/trade-api/v2")] if path.endswith("/trade-api/v2") else path
        return f"{scheme}://{parts.netloc}{path}/trade-api/ws/v2"

    @property
    def key_source(self) -> str:
        """Which private-key source is configured (the value itself is never shown)."""
        for name in (
            "kalshi_private_key_path",
            "kalshi_private_key_secret_id",
            "kalshi_private_key_ssm_param",
            "kalshi_private_key",
        ):
            if getattr(self, name):
                return name
        return ""

    def require_kalshi_credentials(self) -> None:
        """For processes that sign requests: a key id and exactly one key source."""
        if not self.kalshi_key_id:
            raise ConfigError("DORA_KALSHI_KEY_ID must be set to the API key id, was empty")
        sources = [
            name
            for name in (
                "kalshi_private_key_path",
                "kalshi_private_key_secret_id",
                "kalshi_private_key_ssm_param",
                "kalshi_private_key",
            )
            if getattr(self, name)
        ]
        if not sources:
            raise ConfigError(
                "no Kalshi private key source: set one of DORA_KALSHI_PRIVATE_KEY_PATH, "
                "DORA_KALSHI_PRIVATE_KEY_SECRET_ID, DORA_KALSHI_PRIVATE_KEY_SSM_PARAM"
            )
        if len(sources) > 1:
            names = ", ".join("DORA_" + s.upper() for s in sources)
            raise ConfigError(f"more than one Kalshi private key source is set ({names}); set one")

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.redacted().items())
        return f"Settings({shown})"

    def redacted(self) -> dict[str, Any]:
        """Settings for a log line: everything but the key material."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["kalshi_private_key"] = "[set]" if self.kalshi_private_key else ""
        out["web_token"] = "[set]" if self.web_token else ""
        out["redis_url"] = _redact_url(self.redis_url)
        return out


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _check_redis_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL, was {value!r}")
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ConfigError(f"{name} must name a host (redis://HOST:PORT/DB), was {value!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(f"{name} has a bad port, was {value!r}") from None
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ConfigError(f"{name} database must be a number, was {value!r}")
    return value


def _check_choice(choices: tuple[str, ...] | Mapping[str, Any]) -> Callable[[str, str], str]:
    def check(name: str, value: str) -> str:
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, was {value!r}")
        return value

    return check


def _check_http_url(name: str, value: str) -> str:
    if value and urlsplit(value).scheme not in ("http", "https"):
        raise ConfigError(f"{name} must be an http:// or https:// URL, was {value!r}")
    return value


def _check_prefix(name: str, value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ConfigError(f"{name} must be a non-empty prefix without spaces, was {value!r}")
    return value


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    def check(name: str, value: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, was {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, was {value!r}")
        return number

    return check


def _check_bool(name: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, was {value!r}")


def _any(name: str, value: str) -> str:
    return value


def _check_host(name: str, value: str) -> str:
    if not value or any(c.isspace() or c in "/@" for c in value):
        raise ConfigError(f"{name} must be a host name or IP address, was {value!r}")
    return value


WEB_TOKEN_MIN_CHARS = 16


def _check_token(name: str, value: str) -> str:
    # the value itself is never shown: it is a secret
    if value and (len(value) < WEB_TOKEN_MIN_CHARS or any(c.isspace() for c in value)):
        raise ConfigError(
            f"{name} must be at least {WEB_TOKEN_MIN_CHARS} characters without spaces, "
            f"was {len(value)} characters (make one with: openssl rand -hex 32)"
        )
    return value


def _check_time_zone(name: str, value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name} must be an IANA time zone such as America/New_York or UTC, was {value!r}"
        ) from None
    return value


# settings that were replaced: naming one stops the process with how to migrate (never ignored:
# a risk limit's day boundary must not move without the operator knowing)
_REPLACED = {
    "pnl_day_start_hour_utc": (
        "pnl_day_start_hour_utc (DORA_PNL_DAY_START_HOUR_UTC) was replaced by trading_day_tz "
        "(DORA_TRADING_DAY_TZ: the trading day starts at midnight of an IANA time zone, default "
        "America/New_York, DST included); remove it, and set DORA_TRADING_DAY_TZ=UTC to keep "
        "days starting at 00:00 UTC"
    ),
}


_CHECKS: dict[str, Callable[[str, str], Any]] = {
    "redis_url": _check_redis_url,
    "redis_ca_cert": _any,
    "redis_cluster": _check_bool,
    "key_prefix": _check_prefix,
    "dynamodb_endpoint": _check_http_url,
    "aws_region": _check_prefix,
    "table_prefix": _check_prefix,
    "decision_log_ttl_days": _int_in(1, 3650),
    "decision_log_every_ms": _int_in(0, 86_400_000),
    "kalshi_env": _check_choice(KALSHI_ENVS),
    "kalshi_base_url": _check_http_url,
    "kalshi_key_id": _any,
    "kalshi_private_key_path": _any,
    "kalshi_private_key_secret_id": _any,
    "kalshi_private_key_ssm_param": _any,
    "kalshi_private_key": _any,
    "kalshi_subaccount": _int_in(0, 63),
    "max_clock_skew_ms": _int_in(100, 600_000),
    "clock_check_interval_s": _int_in(5, 86_400),
    "rate_tier": _check_choice(RATE_TIERS),
    "log_level": _check_choice(LOG_LEVELS),
    "shard_index": _int_in(0, 1023),
    "shard_count": _int_in(1, 1024),
    "heartbeat_interval_ms": _int_in(50, 60_000),
    "heartbeat_ttl_ms": _int_in(100, 600_000),
    "sns_topic_arn": _any,
    "metrics_namespace": _check_prefix,
    "risk_interval_ms": _int_in(100, 600_000),
    "risk_stale_ms": _int_in(500, 3_600_000),
    "fv_stale_ms": _int_in(0, 86_400_000),
    "trading_day_tz": _check_time_zone,
    "executor_silence_ms": _int_in(500, 600_000),
    "executor_cancel_on_start": _check_bool,
    "executor_ahead_ticks": _int_in(0, 10),
    "executor_order_group_contracts": _int_in(0, 1_000_000),
    "redis_outage_cancel_s": _int_in(1, 600),
    "order_groups": _check_bool,
    "order_group_quote_multiple": _int_in(1, 1_000),
    "pause_lead_s": _int_in(0, 3_600),
    "exchange_poll_ms": _int_in(500, 600_000),
    "direct_member": _check_bool,
    "ws_use_yes_price": _check_bool,
    "metrics_enabled": _check_bool,
    "trace_latency": _check_bool,
    "uvloop": _check_bool,
    "cold_nice": _int_in(0, 19),
    "own_session": _check_bool,
    "metrics_interval_s": _int_in(1, 3600),
    "cloudwatch_endpoint": _check_http_url,
    "sns_endpoint": _check_http_url,
    "alert_pnl_fraction_pct": _int_in(1, 100),
    "alert_api_errors": _int_in(1, 1_000_000),
    "alert_no_fills_hours": _int_in(0, 24 * 30),
    "alert_cooldown_s": _int_in(0, 86_400),
    "web_host": _check_host,
    "web_port": _int_in(1, 65_535),
    "web_token": _check_token,
}


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    *,
    read_file: bool = True,
) -> Settings:
    """Settings from ``config_file`` (default ``$DORA_CONFIG_FILE`` or conf/dora.toml, if it
    exists) overridden by ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    if read_file:
        path = Path(config_file or env.get("DORA_CONFIG_FILE") or DEFAULT_CONFIG_FILE)
        if path.is_file():
            raw.update(_read_toml(path))
        elif config_file or env.get("DORA_CONFIG_FILE"):
            raise ConfigError(f"config file {str(path)!r} does not exist")
    for name, how in _REPLACED.items():
        if env.get("DORA_" + name.upper()) or name in raw:
            raise ConfigError(how)
    for name in _CHECKS:
        value = env.get("DORA_" + name.upper())
        if value is not None and value != "":
            raw[name] = value
    # DORA_AWS_REGION is the documented name; AWS_REGION / AWS_DEFAULT_REGION are fallbacks
    if "aws_region" not in raw:
        for fallback in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if env.get(fallback):
                raw["aws_region"] = env[fallback]
                break
    values = {name: _CHECKS[name]("DORA_" + name.upper(), value) for name, value in raw.items()}
    settings = replace(Settings(), **values)
    if settings.kalshi_env == "sim" and not settings.kalshi_base_url:
        raise ConfigError("DORA_KALSHI_ENV=sim needs DORA_KALSHI_BASE_URL (the simulator's URL)")
    if settings.shard_index >= settings.shard_count:
        raise ConfigError(
            f"DORA_SHARD_INDEX must be < DORA_SHARD_COUNT ({settings.shard_count}), "
            f"was {settings.shard_index}"
        )
    if settings.risk_stale_ms <= settings.risk_interval_ms:
        raise ConfigError(
            "DORA_RISK_STALE_MS must be longer than DORA_RISK_INTERVAL_MS, "
            f"was {settings.risk_stale_ms} <= {settings.risk_interval_ms}"
        )
    if settings.heartbeat_ttl_ms <= settings.heartbeat_interval_ms:
        raise ConfigError(
            "DORA_HEARTBEAT_TTL_MS must be longer than DORA_HEARTBEAT_INTERVAL_MS, "
            f"was {settings.heartbeat_ttl_ms} <= {settings.heartbeat_interval_ms}"
        )
    return settings


def _read_toml(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in _REPLACED:
            out[key] = str(value)  # refused by load_settings with how to migrate
            continue
        if key not in _CHECKS:
            raise ConfigError(f"unknown setting {key!r} in {str(path)!r}")
        if key == "kalshi_private_key":
            raise ConfigError(f"{str(path)!r} must not hold a private key; use a key source")
        if key == "web_token":
            raise ConfigError(f"{str(path)!r} must not hold the web token; use DORA_WEB_TOKEN")
        if isinstance(value, dict | list):
            raise ConfigError(f"setting {key!r} in {str(path)!r} must be a plain value")
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
