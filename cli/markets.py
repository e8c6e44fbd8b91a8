"""``dora markets list [--json]``, ``dora markets enable T``, ``dora markets disable T``.

Which markets are quoted: the ``enabled`` field of each market's config item in DynamoDB. Enabling
a market that has no config creates it with the defaults; disabling one that has none is an error.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from common.commands import set_market_enabled
from common.config import utc_now_iso
from common.errors import ConfigError

from .config import market_views, open_dynamo, print_markets
from .main import CliError

HELP = "list the markets, or enable/disable quoting one"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="every market with a config")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for action, text in (("enable", "start quoting"), ("disable", "stop quoting")):
        command = sub.add_parser(action, help=f"{text} market T")
        command.add_argument("ticker", metavar="T")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return list_markets(args.json)
    return set_enabled(args.ticker, args.action == "enable")


def list_markets(as_json: bool) -> int:
    db = open_dynamo()
    views, _ = market_views(db)
    if as_json:
        sys.stdout.write(orjson.dumps(views, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not views:
        print(f"no markets in {db.names.market_config}; add one with 'dora markets enable T'")
        return 0
    print_markets(views)
    enabled = sum(1 for v in views if v.get("enabled") is True)
    print(f"\n{len(views)} markets, {enabled} enabled")
    return 0


def set_enabled(ticker: str, enabled: bool) -> int:
    try:
        write = set_market_enabled(open_dynamo(), ticker, enabled, utc_now_iso())
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    verb = "created and enabled" if write.created else ("enabled" if enabled else "disabled")
    print(f"market {ticker} {verb} (version {write.version})")
    return 0
