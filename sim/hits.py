"""Flow on demand, for chaos runs: takers that hit an account's resting orders, and a market
whose background makers leave one side of the book.

- ``hit_resting``: for every resting order of an account (up to ``limit``), an IOC taker from the
  noise agent sweeps the other side through that order's price, so the order trades (in full:
  the taker takes everything queued ahead of it too). The taker pays; the account under test is
  the maker, as when a real taker lifts its quote.
- one-sided books live in ``FlowAgents.one_sided`` (``sim.agents``): while a market is listed
  there, its makers cancel and do not quote that side.
"""

from __future__ import annotations

import contextlib

from sim.agents import AGENT_CASH, NOISE_KEY
from sim.engine import Exchange, OrderRequest
from sim.errors import EngineError
from sim.model import BookSide, SelfTradePrevention, TimeInForce


def hit_resting(exchange: Exchange, key_id: str, now_ms: int, *, limit: int = 1_000) -> int:
    """Hit up to ``limit`` resting orders of ``key_id``'s account; returns how many traded."""
    account = exchange.accounts.get(key_id)
    if account is None:
        return 0
    exchange.open_account(NOISE_KEY, AGENT_CASH, is_agent=True)  # a world without agents too
    hit = 0
    for order in list(account.resting.values())[:limit]:
        if not order.is_resting:  # an earlier sweep took it already
            continue
        half = exchange.books[order.ticker].half(order.side)
        if order.side is BookSide.BID:  # everything priced at or above ours is ahead of us
            ahead = sum(half.levels[p].size for p in half.prices if p >= order.price)
            taker_side = BookSide.ASK
        else:
            ahead = sum(half.levels[p].size for p in half.prices if p <= order.price)
            taker_side = BookSide.BID
        request = OrderRequest(
            order.ticker,
            taker_side,
            order.price,
            ahead,
            tif=TimeInForce.IOC,
            stp=SelfTradePrevention.TAKER_AT_CROSS,
        )
        with contextlib.suppress(EngineError):  # a paused or closed market: nothing to hit
            exchange.create_order(NOISE_KEY, request, now_ms)
            hit += 1
    return hit
