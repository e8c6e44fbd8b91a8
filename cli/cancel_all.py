"""``dora cancel-all``: cancel every resting order directly at the exchange.

Talks to Kalshi itself (not through any dora process), so it works with every process down. It
does not halt trading: a running executor would quote again; use ``dora halt`` for that.
"""

from __future__ import annotations

import argparse
import asyncio

from cli.main import CliError
from cli.support import cli_settings
from common.errors import ConfigError

HELP = "cancel every resting order directly at the exchange (works with every process down)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--market", help="only this market's orders")


def run(args: argparse.Namespace) -> int:
    settings = cli_settings()
    from common.commands import cancel_all_resting
    from common.kalshi.errors import ExchangeError

    try:
        before, after = asyncio.run(cancel_all_resting(settings, args.market))
    except ExchangeError as exc:
        raise CliError(f"the exchange refused: {exc}") from None
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    where = f" in {args.market}" if args.market else ""
    print(f"cancelled {before - after} resting order(s){where}; {after} left")
    return 0 if after == 0 else 1
