"""What the executor asks of the exchange, as one small protocol.

The live implementation wraps ``common.kalshi.KalshiClient``; tests and the backtester can supply
their own. Every method either returns what the exchange said or raises a
``common.kalshi.errors.ExchangeError``; ``OutcomeUnknown`` means "look it up later".
"""

from __future__ import annotations

from typing import Protocol

from common.domain import Order
from common.kalshi.wire.orders import OrderRequest


class Gateway(Protocol):
    async def place(self, request: OrderRequest) -> Order: ...

    async def amend(self, order: Order, price: int, remaining: int) -> Order: ...

    def presign(self, order: Order | None) -> None:
        """Sign ahead the create (``order`` None) or the amend of ``order`` about to be sent:
        sent soon after, it leaves without signing (nothing to do for an exchange that does not
        sign)."""
        ...

    async def decrease(self, order: Order, remaining: int) -> Order: ...

    async def cancel(self, order: Order) -> int:
        """Cancel; returns the resting size removed (0: it had already filled or gone)."""
        ...

    async def cancel_all(self) -> None:
        """Cancel every resting order of the subaccount (the kill switches: halt, outage)."""
        ...

    async def cancel_own(self) -> None:
        """Cancel every resting order of the subaccount that dora made, and nothing else (quotes
        pulled while no kill switch is pulled)."""
        ...

    async def open_orders(self) -> list[Order]: ...

    async def lookup(self, order: Order) -> Order | None:
        """The exchange's view of ``order`` (by order id, else by client order id), or None
        when the exchange has no such order."""
        ...

    async def create_group(self, contracts_limit: int, exchange_index: int) -> str:
        """A new order group on shard ``exchange_index``; ``contracts_limit`` in
        centi-contracts per rolling 15 s."""
        ...

    async def reset_group(self, group_id: str) -> None: ...

    async def set_group_limit(self, group_id: str, contracts_limit: int) -> None: ...

    async def aclose(self) -> None: ...
