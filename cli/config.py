"""``dora config show [--json]`` and ``dora config set [--market T | --event E] KEY=VALUE...``.

Config lives in DynamoDB (``{prefix}market_config``, ``{prefix}state[global_config]`` and the
per-event overrides in ``{prefix}state[event_config]``); the
persister mirrors it into Redis within about a second. ``set`` validates the whole resulting item
before writing: on bad input one line names the field, the value and the rule, exit status 2, and
nothing is written. Every write sets ``updated_at`` and raises ``version`` (a conditional write, so
concurrent changes are never lost).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from common.commands import (
    EVENT_KEYS,
    GLOBAL_KEYS,
    MARKET_KEYS,
    call,
    change_config,
    change_event_config,
)
from common.config import GlobalConfig, utc_now_iso
from common.dynamo import Dynamo
from common.dynamo.config_store import (
    GLOBAL_LABEL,
    check_ticker,
    validate_event_item,
    validate_global_item,
    validate_market_item,
)
from common.errors import ConfigError
from common.settings import load_settings

from .main import CliError
from .support import CLI_DYNAMO_ATTEMPTS, CLI_DYNAMO_TIMEOUT_S

HELP = "show or change the trading config in DynamoDB (validated before writing)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="the global config and every market's")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    change = sub.add_parser(
        "set",
        help="change fields of the global config, or of one market with --market",
        description=(
            f"global fields: {', '.join(GLOBAL_KEYS)}; market fields: {', '.join(MARKET_KEYS)}"
        ),
    )
    target = change.add_mutually_exclusive_group()
    target.add_argument("--market", metavar="T", help="the market ticker (created if missing)")
    target.add_argument(
        "--event", metavar="E", help=f"an event's overrides: {', '.join(EVENT_KEYS)}"
    )
    change.add_argument("pairs", nargs="+", metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        return show(args.json)
    if args.event is not None:
        return set_event_fields(args.event, args.pairs)
    return set_fields(args.market, args.pairs)


# ---- shared with dora markets ----------------------------------------------------------------


def open_dynamo() -> Dynamo:
    return Dynamo.from_settings(
        load_settings(), max_attempts=CLI_DYNAMO_ATTEMPTS, timeout_s=CLI_DYNAMO_TIMEOUT_S
    )


def parse_pairs(pairs: Sequence[str], known: Sequence[str], what: str) -> dict[str, str]:
    changes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"expected KEY=VALUE, was {pair!r}")
        if key not in known:
            raise CliError(f"unknown {what} config field {key!r}; known: {', '.join(known)}")
        if key in changes:
            raise CliError(f"{key} is given twice")
        changes[key] = value.strip()
    return changes


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(str(jsonable(v)) for v in value)
    return value


def market_views(db: Dynamo) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every market item: the valid ones in human form with their version, and the reasons
    of the invalid ones (which are shown, never fatal)."""
    views: list[dict[str, Any]] = []
    invalid: dict[str, str] = {}
    for raw in call("reading the market config", db.config.scan_markets):
        ticker = str(raw.get("market_id"))
        try:
            config, version = validate_market_item(raw)
        except ConfigError as exc:
            invalid[ticker] = str(exc)
            views.append({"market_id": ticker, "invalid": str(exc), "item": jsonable(raw)})
            continue
        views.append({**config.to_item(), "version": version})
    views.sort(key=lambda v: str(v["market_id"]))
    return views, invalid


def global_view(db: Dynamo) -> dict[str, Any]:
    raw = call("reading the global config", db.config.get_global)
    if raw is None:
        return {**GlobalConfig().to_item(), "version": 0, "stored": False}
    try:
        config, version = validate_global_item(raw)
    except ConfigError as exc:
        return {"invalid": str(exc), "item": jsonable(raw)}
    return {**config.to_item(), "version": version}


def event_view(db: Dynamo) -> dict[str, Any]:
    """The per-event overrides: event -> max_event_loss (dollars), with the item's version."""
    raw = call("reading the event config", db.config.get_events)
    if raw is None:
        return {"events": {}, "version": 0}
    try:
        limits, version = validate_event_item(raw)
    except ConfigError as exc:
        return {"invalid": str(exc), "item": jsonable(raw)}
    events = {k.split("#", 1)[1]: v for k, v in limits.to_item().items() if "#" in k}
    return {"events": {e: {"max_event_loss": v} for e, v in events.items()}, "version": version}


def _bool(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def print_markets(views: Sequence[Mapping[str, Any]]) -> None:
    columns = ("market_id", "enabled", *MARKET_KEYS[1:], "version", "updated_at")
    headers: tuple[str, ...] = ("market", "enabled", "max_yes", "max_no", "min_spread")
    headers += ("quote_size", "skew", "toxicity", "version", "updated_at")
    rows: list[tuple[str, ...]] = []
    for view in views:
        if "invalid" in view:
            rows.append((str(view["market_id"]), f"INVALID: {view['invalid']}"))
        else:
            rows.append(tuple(_bool(view.get(c, "")) for c in columns))
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) == len(headers):
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        if len(row) == len(headers):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        else:
            print(f"{row[0].ljust(widths[0])}  {row[1]}")


# ---- show / set ----------------------------------------------------------------------------


def show(as_json: bool) -> int:
    db = open_dynamo()
    glob = global_view(db)
    markets, invalid = market_views(db)
    if "invalid" in glob:
        invalid = {GLOBAL_LABEL: glob["invalid"], **invalid}
    events = event_view(db)
    if "invalid" in events:
        invalid = {**invalid, "(events)": events["invalid"]}
    if as_json:
        out = {"global": glob, "markets": markets, "events": events, "invalid": invalid}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(f"global config ({db.names.state}[global_config])")
    if "invalid" in glob:
        print(f"  INVALID: {glob['invalid']}")
    else:
        if glob.get("stored") is False:
            print("  (not stored yet: the defaults apply)")
        for key in (*GLOBAL_KEYS, "version", "updated_at"):
            print(f"  {key:<20} {_bool(glob.get(key, ''))}")
    print(f"\nmarkets ({db.names.market_config}): {len(markets)}")
    if markets:
        print_markets(markets)
    overrides = events.get("events", {})
    print(f"\nevent overrides ({db.names.state}[event_config]): {len(overrides)}")
    if "invalid" in events:
        print(f"  INVALID: {events['invalid']}")
    for event, fields in sorted(overrides.items()):
        print(f"  {event:<30} max_event_loss {fields['max_event_loss']}")
    return 0


def set_fields(market: str | None, pairs: Sequence[str]) -> int:
    if market is not None:
        try:
            check_ticker(market)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        changes = parse_pairs(pairs, MARKET_KEYS, "market")
    else:
        changes = parse_pairs(pairs, GLOBAL_KEYS, "global")
    db = open_dynamo()
    try:
        change = change_config(db, market, changes, utc_now_iso())
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    shown = " ".join(f"{k}={_bool(change.item[k])}" for k in changes)
    verb = "created" if change.write.created else "updated"
    print(f"{change.label} {verb}: {shown} (version {change.write.version})")
    if change.write.dropped:
        print(f"removed unknown attributes: {', '.join(change.write.dropped)}")
    return 0


def set_event_fields(event: str, pairs: Sequence[str]) -> int:
    try:
        check_ticker(event)
    except ConfigError as exc:
        raise CliError(str(exc).replace("market_id", "event")) from None
    changes = parse_pairs(pairs, EVENT_KEYS, "event")
    db = open_dynamo()
    try:
        change = change_event_config(db, event, changes, utc_now_iso())
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    shown = " ".join(f"{k}={change.item[k]}" for k in changes)
    verb = "created" if change.write.created else "updated"
    print(f"{change.label} {verb}: {shown} (version {change.write.version})")
    return 0
