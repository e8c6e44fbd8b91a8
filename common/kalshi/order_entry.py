"""Kalshi's order endpoints (API.md §5.3-§5.5): our orders read back, the V2 writes, order groups.

Creates follow ``CreatePolicy`` (resend with the same id, 409 means exists, then look up).
Amend and decrease outcomes that are unknown are resolved by reading the order back; cancels are
served first by the rate budget and retried, and an order already gone counts as cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.clock import Clock
from common.domain import Order, is_own_client_order_id
from common.kalshi.create_policy import (
    AMBIGUOUS,
    ORDERS_V2,
    ORDERS_V2_BATCH,
    CreatePolicy,
)
from common.kalshi.errors import ExchangeError, NotFound, OrderRejected, error_from_body
from common.kalshi.ratelimit import (
    COST_AMEND,
    COST_BATCH_CANCEL_ITEM,
    COST_CANCEL,
    COST_CANCEL_ALL,
    COST_DECREASE,
    COST_GET_ORDER,
    COST_ORDER_GROUP,
)
from common.kalshi.rest import PAGE_LIMIT, RestClient
from common.kalshi.transport import Transport
from common.kalshi.wire.listing import Skipped
from common.kalshi.wire.order_changes import (
    CancelResult,
    build_amend,
    build_batch_cancel,
    build_decrease,
    order_from_amend_ack,
    order_from_decrease_ack,
    parse_batch_cancel,
    parse_cancel,
)
from common.kalshi.wire.orders import (
    OrderRef,
    OrderRequest,
    parse_order_refs_page,
    parse_order_response,
    parse_orders_page,
)
from common.kalshi.wire.portfolio import (
    OrderGroup,
    build_order_group_limit,
    parse_order_group,
    parse_order_group_created,
    parse_order_groups,
)
from common.log import get_logger

ORDER_GROUPS = "/portfolio/order_groups"
_GONE_CODES = ("not_found", "order_not_found", "order_not_resting", "not_resting")


def amend_path(order_id: str) -> str:
    return f"{ORDERS_V2}/{order_id}/amend"


class OrderEntry(RestClient):
    """Our orders at the exchange: reads, creates, amends, decreases, cancels, order groups."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Clock | None = None,
        subaccount: int = 0,
        create_attempts: int = 3,
        lookup_attempts: int = 3,
        lookup_delay_s: float = 0.2,
    ) -> None:
        super().__init__(transport, clock=clock, subaccount=subaccount)
        self.creates = CreatePolicy(
            self._send_create,
            self._find_for_create,
            self.clock,
            subaccount=subaccount,
            create_attempts=create_attempts,
            lookup_attempts=lookup_attempts,
            lookup_delay_s=lookup_delay_s,
        )
        self._log = get_logger("kalshi.client")

    # ---- reads -----------------------------------------------------------------------------

    async def get_orders(
        self,
        *,
        ticker: str | None = None,
        status: str | None = None,
        since_ms: int | None = None,
        skipped: list[Skipped] | None = None,
    ) -> list[Order]:
        """Orders of this subaccount (an order that does not parse: logged, into ``skipped``)."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if ticker:
            params["ticker"] = ticker
        if status:
            params["status"] = status
        if since_ms is not None:
            params["min_ts"] = max(0, since_ms // 1000)
        return await self._listing("/portfolio/orders", params, parse_orders_page, skipped)

    async def get_open_orders(
        self, ticker: str | None = None, *, skipped: list[Skipped] | None = None
    ) -> list[Order]:
        """Every resting order of this subaccount (of one market, or all)."""
        return await self.get_orders(ticker=ticker, status="resting", skipped=skipped)

    async def get_open_order_refs(
        self, ticker: str | None = None, *, skipped: list[Skipped] | None = None
    ) -> list[OrderRef]:
        """The id and market of every resting order of this subaccount, read no further: what
        a cancel needs, whatever else an order holds."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT, "status": "resting"}
        if ticker:
            params["ticker"] = ticker
        return await self._listing("/portfolio/orders", params, parse_order_refs_page, skipped)

    async def get_order(self, order_id: str) -> Order:
        return parse_order_response(
            await self._get(f"/portfolio/orders/{order_id}", cost=COST_GET_ORDER)
        )

    async def find_order(
        self, client_order_id: str, ticker: str, since_ms: int | None = None
    ) -> Order | None:
        """The order with ``client_order_id`` in ``ticker`` (any status), or None."""
        for order in await self.get_orders(ticker=ticker, since_ms=since_ms):
            if order.client_order_id == client_order_id:
                return order
        return None

    # ---- creates ---------------------------------------------------------------------------

    async def _send_create(self, path: str, body: Any, cost: int) -> Any:
        return await self._write("POST", path, body=body, cost=cost)

    async def _find_for_create(
        self, client_order_id: str, ticker: str, since_ms: int
    ) -> Order | None:
        return await self.find_order(client_order_id, ticker, since_ms=since_ms)

    async def place_order(self, request: OrderRequest) -> Order:
        """Create one order (V2). Returns the order as acknowledged. After a transport error or
        5xx the create is resent with the same client_order_id (never a duplicate: a repeat
        answers 409) and then looked up; raises ``OutcomeUnknown`` if it still is not known."""
        return await self.creates.place(request)

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        """Batch create, split to fit the write bucket. One result per request, in order: the
        Order, or the ExchangeError for that item (``OutcomeUnknown`` if it cannot be told)."""
        results: list[Order | ExchangeError] = []
        size = self.max_batch_create()
        for start in range(0, len(requests), size):
            results.extend(await self.creates.place_batch(requests[start : start + size]))
        return results

    # ---- amend, decrease, cancel -----------------------------------------------------------

    def presign_create(self) -> None:
        """Sign the next single create ahead (``Transport.presign``)."""
        self.transport.presign("POST", ORDERS_V2)

    def presign_amend(self, order_id: str) -> None:
        """Sign the next amend of ``order_id`` ahead."""
        self.transport.presign("POST", amend_path(order_id))

    async def amend_order(
        self,
        order: Order,
        *,
        price: int | None = None,
        remaining: int | None = None,
        updated_client_order_id: str | None = None,
    ) -> Order:
        """Move ``order`` to ``price`` with ``remaining`` contracts resting. Kalshi's amend count
        is filled + remaining; ``order.filled`` is what we know, so a stale fill count can only
        make the new resting size smaller, never larger. If the outcome is unknown the order is
        read back and returned as the exchange has it."""
        if order.order_id is None:
            raise ValueError("amend needs an order_id")
        new_price = order.price if price is None else price
        new_remaining = order.remaining if remaining is None else remaining
        count = order.filled + new_remaining
        body = build_amend(order, new_price, count, updated_client_order_id)
        path = amend_path(order.order_id)
        try:
            ack = await self._write("POST", path, body=body, params=self._scope(), cost=COST_AMEND)
        except AMBIGUOUS:
            return await self.get_order(order.order_id)
        return order_from_amend_ack(order, new_price, count, ack, new_remaining)

    async def decrease_order(
        self, order: Order, *, reduce_by: int | None = None, reduce_to: int | None = None
    ) -> Order:
        """Shrink ``order`` keeping its queue priority (exactly one of reduce_by / reduce_to).
        ``reduce_to`` is idempotent and retried; an unknown ``reduce_by`` is read back."""
        if order.order_id is None:
            raise ValueError("decrease needs an order_id")
        body = build_decrease(order.ticker, reduce_by=reduce_by, reduce_to=reduce_to)
        path = f"{ORDERS_V2}/{order.order_id}/decrease"
        try:
            ack = await self._write(
                "POST",
                path,
                body=body,
                params=self._scope(),
                cost=COST_DECREASE,
                priority=True,
                idempotent=reduce_to is not None,
            )
        except AMBIGUOUS:
            return await self.get_order(order.order_id)
        return order_from_decrease_ack(order, ack)

    async def cancel_order(self, order_id: str, ticker: str | None = None) -> CancelResult:
        """Cancel one order (served first by the rate budget; retried). An order that is
        already gone answers ``reduced_by == 0``."""
        params: dict[str, Any] = self._scope()
        if ticker:
            params["market_ticker"] = ticker
        try:
            answer = await self._write(
                "DELETE",
                f"{ORDERS_V2}/{order_id}",
                params=params,
                cost=COST_CANCEL,
                priority=True,
                idempotent=True,
            )
        except (NotFound, OrderRejected) as exc:
            if isinstance(exc, NotFound) or exc.code in _GONE_CODES:
                return CancelResult(order_id, None, 0, self.clock.now_ms())
            raise
        return parse_cancel(answer)

    async def cancel_orders(
        self, orders: Sequence[tuple[str, str | None]] | Sequence[Order] | Sequence[OrderRef]
    ) -> list[CancelResult | ExchangeError]:
        """Batch cancel (in this subaccount) of (order_id, ticker) pairs, Orders or OrderRefs,
        split to fit the bucket."""
        items: list[tuple[str, str | None]] = []
        for item in orders:
            if isinstance(item, Order):
                if item.order_id is None:
                    raise ValueError(f"cannot cancel {item.client_order_id}: no order_id")
                items.append((item.order_id, item.ticker))
            elif isinstance(item, OrderRef):
                items.append((item.order_id, item.ticker))
            else:
                items.append(item)
        out: list[CancelResult | ExchangeError] = []
        size = self.max_batch_cancel()
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            answer = await self._write(
                "DELETE",
                ORDERS_V2_BATCH,
                body=build_batch_cancel(chunk, self.subaccount),
                cost=COST_BATCH_CANCEL_ITEM * len(chunk),
                priority=True,
                idempotent=True,
            )
            for (order_id, _), result in zip(
                chunk, parse_batch_cancel(answer, [o for o, _ in chunk]), strict=True
            ):
                if isinstance(result, CancelResult):
                    out.append(result)
                elif result.code in _GONE_CODES:
                    out.append(CancelResult(order_id, None, 0, self.clock.now_ms()))
                else:
                    out.append(error_from_body(result, 0, "DELETE", ORDERS_V2_BATCH))
        return out

    async def cancel_all_orders(self, ticker: str | None = None) -> int | None:
        """Cancel every resting order of this subaccount: of one market (its ids listed, then
        batch-cancelled; returns how many), or all of them (one ``DELETE
        /portfolio/events/orders?subaccount=N``; returns None as the exchange does not say how
        many; falls back to listing ids + batch cancels if the route is missing). Kalshi may
        also cancel orders placed in the minute after a cancel-all."""
        if ticker is None:
            try:
                await self._write(
                    "DELETE",
                    ORDERS_V2,
                    params=self._scope(),
                    cost=COST_CANCEL_ALL,
                    priority=True,
                    idempotent=True,
                )
                return None
            except (NotFound, OrderRejected) as exc:
                if exc.status not in (404, 405):
                    raise
                self._log.warning("cancel_all_fallback", reason=str(exc))
        return await self.cancel_listed(ticker)

    async def cancel_listed(self, ticker: str | None = None) -> int:
        """Batch-cancel every resting order of this subaccount whose id can be read (of one
        market, or all); returns how many were cancelled. An item without a readable id is
        logged by the listing; the rest are cancelled whatever else they hold."""
        refs = await self.get_open_order_refs(ticker)
        results = await self.cancel_orders(refs)
        failed = [r for r in results if isinstance(r, ExchangeError)]
        if failed:
            raise failed[0]
        return len(results)

    async def cancel_own_orders(self, refs: Sequence[OrderRef] | None = None) -> int:
        """Batch-cancel every resting order of this subaccount that dora made (its client order
        id carries dora's check), leaving any other order alone: how quotes are pulled when no
        kill switch was pulled. ``refs``: a listing just read (``get_open_order_refs``), not
        read again. Returns how many were cancelled."""
        if refs is None:
            refs = await self.get_open_order_refs()
        results = await self.cancel_orders(
            [r for r in refs if is_own_client_order_id(r.client_order_id)]
        )
        failed = [r for r in results if isinstance(r, ExchangeError)]
        if failed:
            raise failed[0]
        return len(results)

    def _scope(self) -> dict[str, Any]:
        """The query parameter that keeps a write in this client's subaccount."""
        return {"subaccount": self.subaccount}

    # ---- order groups ----------------------------------------------------------------------

    async def _group_write(
        self, method: str, path: str, body: Any = None, priority: bool = False
    ) -> Any:
        return await self._write(method, path, body=body, cost=COST_ORDER_GROUP, priority=priority)

    async def create_order_group(self, contracts_limit: int, exchange_index: int = 0) -> str:
        """A new order group (exchange-side kill switch) with a limit in centi-contracts, on
        the shard of the markets whose orders will join it (a group lives on one shard), in this
        client's subaccount."""
        body = {
            **build_order_group_limit(contracts_limit),
            "exchange_index": exchange_index,
            "subaccount": self.subaccount,
        }
        return parse_order_group_created(
            await self._group_write("POST", f"{ORDER_GROUPS}/create", body)
        )

    async def get_order_group(self, order_group_id: str) -> OrderGroup:
        return parse_order_group(
            await self._get(f"{ORDER_GROUPS}/{order_group_id}"), order_group_id
        )

    async def get_order_groups(self) -> list[OrderGroup]:
        return parse_order_groups(await self._get(ORDER_GROUPS))

    async def reset_order_group(self, order_group_id: str) -> None:
        await self._group_write("PUT", f"{ORDER_GROUPS}/{order_group_id}/reset")

    async def trigger_order_group(self, order_group_id: str) -> None:
        await self._group_write("PUT", f"{ORDER_GROUPS}/{order_group_id}/trigger", priority=True)

    async def set_order_group_limit(self, order_group_id: str, contracts_limit: int) -> None:
        await self._group_write(
            "PUT",
            f"{ORDER_GROUPS}/{order_group_id}/limit",
            build_order_group_limit(contracts_limit),
        )

    async def delete_order_group(self, order_group_id: str) -> None:
        await self._group_write("DELETE", f"{ORDER_GROUPS}/{order_group_id}", priority=True)
