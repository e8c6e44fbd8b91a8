"""The executor's ``Gateway`` over the real (or simulated) Kalshi REST API."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.clock import Clock
from common.connect import kalshi_client
from common.domain import Order
from common.kalshi.client import KalshiClient
from common.kalshi.errors import NotFound
from common.kalshi.wire.orders import OrderRequest
from common.settings import Settings

LOOKUP_WINDOW_MS = 120_000


class KalshiGateway:
    def __init__(self, client: KalshiClient) -> None:
        self.client = client

    @classmethod
    async def connect(
        cls, settings: Settings, redis: aioredis.Redis, clock: Clock
    ) -> KalshiGateway:
        return cls(await kalshi_client(settings, redis=redis, clock=clock))

    async def place(self, request: OrderRequest) -> Order:
        return await self.client.place_order(request)

    def presign(self, order: Order | None) -> None:
        if order is None:
            self.client.presign_create()
        elif order.order_id is not None:
            self.client.presign_amend(order.order_id)

    async def amend(self, order: Order, price: int, remaining: int) -> Order:
        return await self.client.amend_order(order, price=price, remaining=remaining)

    async def decrease(self, order: Order, remaining: int) -> Order:
        """By how much, not to how much: had part of the order executed unheard of, ``reduce_to``
        would answer ``remaining`` all the same and the execution would go unseen; ``reduce_by``
        answers less than ``remaining`` (or is refused when it would go below zero)."""
        reduce_by = order.remaining - remaining
        if reduce_by <= 0:
            return await self.client.decrease_order(order, reduce_to=remaining)
        return await self.client.decrease_order(order, reduce_by=reduce_by)

    async def cancel(self, order: Order) -> int:
        if order.order_id is None:
            raise NotFound(f"order {order.client_order_id} has no exchange id to cancel")
        return (await self.client.cancel_order(order.order_id, order.ticker)).reduced_by

    async def cancel_all(self) -> None:
        await self.client.cancel_all_orders()

    async def cancel_own(self) -> None:
        await self.client.cancel_own_orders()

    async def open_orders(self) -> list[Order]:
        return await self.client.get_open_orders()

    async def lookup(self, order: Order) -> Order | None:
        if order.order_id:
            try:
                return await self.client.get_order(order.order_id)
            except NotFound:
                return None
        return await self.client.find_order(
            order.client_order_id, order.ticker, since_ms=order.created_ms - LOOKUP_WINDOW_MS
        )

    async def create_group(self, contracts_limit: int, exchange_index: int) -> str:
        return await self.client.create_order_group(contracts_limit, exchange_index)

    async def reset_group(self, group_id: str) -> None:
        await self.client.reset_order_group(group_id)

    async def set_group_limit(self, group_id: str, contracts_limit: int) -> None:
        await self.client.set_order_group_limit(group_id, contracts_limit)

    async def aclose(self) -> None:
        await self.client.aclose()
