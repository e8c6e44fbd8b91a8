"""``dora cancel-all``: cancel every resting order of dora's subaccount directly at the exchange.

Talks to Kalshi itself (not through any dora process, nor Redis), so it works with every process
and Redis down. It cancels first, with one ``DELETE /portfolio/events/orders?subaccount=N``
(Kalshi may also cancel orders placed in the minute after), then lists what still rests, reading
each order only as far as its id, and batch-cancels those: one malformed order never stops the
kill switch (``common.commands.cancel_everything``). It touches no other subaccount. It does not
halt trading: a running executor would quote again; use ``dora halt`` for that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from cli.main import CliError
from cli.support import cli_settings
from common.errors import ConfigError

if TYPE_CHECKING:
    from common.kalshi.transport import Retrying

HELP = (
    "cancel every resting order of dora's subaccount directly at the exchange "
    "(works with every process and Redis down)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--market", help="only this market's orders")


class Progress:
    """One stderr line the first time each request is retried after an attempt that waited out
    a timeout: against an exchange that does not answer the retries take up to a minute, and a
    person must not stare at nothing. Quick failures (a refused connection) are retried within
    two seconds and end in the one final line."""

    def __init__(self) -> None:
        self.told: set[tuple[str, str]] = set()

    def __call__(self, retrying: Retrying) -> None:
        from common.kalshi.http import ConnectTimeout, PoolTimeout, ReadTimeout

        what = (retrying.method, retrying.path)
        waited = isinstance(retrying.error.__cause__, (ConnectTimeout, PoolTimeout, ReadTimeout))
        if what in self.told or not waited:
            return
        self.told.add(what)
        left = retrying.max_attempts - retrying.attempts
        print(
            f"dora cancel-all: {retrying.error}; "
            f"retrying up to {left} more time{'s' if left != 1 else ''}, "
            f"for at most {retrying.worst_s:.0f} s",
            file=sys.stderr,
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    if args.market is not None:
        from common.dynamo.config_store import check_ticker

        try:  # a malformed ticker is refused here, never sent to the exchange
            check_ticker(args.market)
        except ConfigError as exc:
            raise CliError(str(exc).replace("market_id", "--market", 1)) from None
    settings = cli_settings()
    from common.commands import cancel_all_resting
    from common.kalshi.errors import ExchangeError

    try:
        result = asyncio.run(  # no Redis
            cancel_all_resting(settings, args.market, on_retry=Progress())
        )
    except ExchangeError as exc:
        raise CliError(f"the exchange refused: {exc}") from None
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    print(result.message)
    return 0 if result.clean else 1
