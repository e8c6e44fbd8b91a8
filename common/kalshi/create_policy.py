"""What a create does when its answer is lost (DESIGN.md §5): outcomes are never guessed.

A create that may or may not have reached the exchange (a transport error after sending, a 5xx)
is resent with the same ``client_order_id``: a duplicate answers 409 ("exists"), never a second
order. The order is then looked up by its id; when even that fails, ``OutcomeUnknown`` carries
the id so the caller can resolve it later.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from common.clock import Clock
from common.domain import Order
from common.kalshi.errors import (
    Conflict,
    ExchangeError,
    NotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TransportError,
    error_from_body,
)
from common.kalshi.ratelimit import COST_BATCH_CREATE_ITEM, COST_CREATE
from common.kalshi.wire.orders import (
    OrderRequest,
    build_create_order,
    order_from_ack,
    parse_batch_create,
)
from common.log import get_logger

ORDERS_V2 = "/portfolio/events/orders"
ORDERS_V2_BATCH = "/portfolio/events/orders/batched"
AMBIGUOUS = (TransportError, ServerError)
LOOKBACK_MS = 60_000  # look for the order from a minute before the first attempt

Send = Callable[[str, Any, int], Awaitable[Any]]  # (path, body, cost) -> the decoded answer
Find = Callable[[str, str, int], Awaitable[Order | None]]  # (client_order_id, ticker, since_ms)


class CreatePolicy:
    """Creates one order or a batch through ``send`` and resolves lost answers with ``find``."""

    def __init__(
        self,
        send: Send,
        find: Find,
        clock: Clock,
        *,
        subaccount: int | None = None,
        create_attempts: int = 3,
        lookup_attempts: int = 3,
        lookup_delay_s: float = 0.2,
    ) -> None:
        self.send = send
        self.find = find
        self.clock = clock
        self.subaccount = subaccount  # every create carries it
        self.create_attempts = create_attempts
        self.lookup_attempts = lookup_attempts
        self.lookup_delay_s = lookup_delay_s
        self._log = get_logger("kalshi.client")

    @staticmethod
    async def _pause(attempt: int) -> None:
        await asyncio.sleep(min(1.0, 0.05 * 2**attempt) * (0.5 + random.random()))

    async def lookup(self, request: OrderRequest, since_ms: int) -> Order | None:
        """The order ``request`` created, if the exchange has it (a few tries)."""
        for attempt in range(self.lookup_attempts):
            try:
                found = await self.find(
                    request.client_order_id, request.ticker, since_ms - LOOKBACK_MS
                )
            except ExchangeError as exc:
                self._log.warning(
                    "order_lookup_failed",
                    market=request.ticker,
                    client_order_id=request.client_order_id,
                    reason=str(exc),
                )
                found = None
            if found is not None:
                return found
            if attempt + 1 < self.lookup_attempts:
                await asyncio.sleep(self.lookup_delay_s * (attempt + 1))
        return None

    async def place(self, request: OrderRequest) -> Order:
        """Create one order (V2); returns it as acknowledged, found, or raises."""
        body = build_create_order(request, self.subaccount)
        started_ms = self.clock.now_ms()
        ambiguous: ExchangeError | None = None
        for attempt in range(self.create_attempts):
            try:
                ack = await self.send(ORDERS_V2, body, COST_CREATE)
                return order_from_ack(request, ack)
            except Conflict as exc:
                found = await self.lookup(request, started_ms)
                if found is not None:
                    return found
                raise OutcomeUnknown(
                    request.client_order_id,
                    "the exchange says the order exists but it was not found",
                    status=exc.status,
                    code=exc.code,
                ) from None
            except AMBIGUOUS as exc:
                ambiguous = exc
                self._log.warning(
                    "order_create_ambiguous",
                    market=request.ticker,
                    client_order_id=request.client_order_id,
                    attempt=attempt + 1,
                    reason=str(exc),
                )
                await self._pause(attempt)
            except (OrderRejected, RateLimited, NotFound):
                if ambiguous is None:
                    raise
                # an earlier attempt may have created it before this refusal: ask
                found = await self.lookup(request, started_ms)
                if found is not None:
                    return found
                raise
        found = await self.lookup(request, started_ms)
        if found is not None:
            return found
        raise OutcomeUnknown(
            request.client_order_id,
            f"create outcome unknown after {self.create_attempts} attempts: {ambiguous}",
        )

    async def place_batch(self, requests: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        """One batch create (that fits the write bucket): per request, the Order or its error."""
        body = {"orders": [build_create_order(r, self.subaccount) for r in requests]}
        cost = COST_BATCH_CREATE_ITEM * len(requests)
        started_ms = self.clock.now_ms()
        ambiguous: ExchangeError | None = None
        answer: Any = None
        for attempt in range(self.create_attempts):
            try:
                answer = await self.send(ORDERS_V2_BATCH, body, cost)
                break
            except AMBIGUOUS as exc:
                ambiguous = exc
                await self._pause(attempt)
        out: list[Order | ExchangeError] = []
        if answer is None:
            for request in requests:
                found = await self.lookup(request, started_ms)
                out.append(
                    found
                    if found is not None
                    else OutcomeUnknown(
                        request.client_order_id, f"batch outcome unknown: {ambiguous}"
                    )
                )
            return out
        for request, item in zip(requests, parse_batch_create(answer, requests), strict=True):
            if isinstance(item, Order):
                out.append(item)
                continue
            error = error_from_body(item, 0, "POST", ORDERS_V2_BATCH)
            if isinstance(error, Conflict) or ambiguous is not None:
                found = await self.lookup(request, started_ms)
                if found is not None:
                    out.append(found)
                    continue
                if isinstance(error, Conflict):
                    error = OutcomeUnknown(request.client_order_id, "exists but not found")
            out.append(error)
        return out
