"""KalshiClient: the one way every dora process talks to Kalshi's REST API (real or simulated).

It speaks dora's domain types (``Order``, ``Fill``, ``YesBook``, ``MarketMeta``) and hides the
wire. Writes use only the V2 endpoints. Outcomes are never guessed: a create that may or may not
have reached the exchange is resent with the same ``client_order_id`` (a duplicate answers 409)
and then looked up; when even that fails, ``OutcomeUnknown`` carries the id so the caller can
resolve it later. Amend and decrease outcomes that are unknown are resolved by reading the order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis

from common.book import YesBook
from common.clock import Clock
from common.domain import Fill, MarketMeta, Order
from common.fees import FeeType
from common.kalshi import wire
from common.kalshi.errors import (
    Conflict,
    ExchangeError,
    NotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TransportError,
    error_for_status,
)
from common.kalshi.ratelimit import (
    COST_AMEND,
    COST_BATCH_CANCEL_ITEM,
    COST_BATCH_CREATE_ITEM,
    COST_CANCEL,
    COST_CANCEL_ALL,
    COST_CREATE,
    COST_DECREASE,
    COST_GET_ORDER,
    COST_ORDER_GROUP,
    DEFAULT_COST,
    READ,
    WRITE,
    LocalRateBudget,
    RateBudget,
    RedisRateBudget,
)
from common.kalshi.signing import Signer, load_signer
from common.kalshi.transport import CANCEL_RETRY, READ_RETRY, WRITE_RETRY, Transport
from common.kalshi.wire import (
    Balance,
    CancelResult,
    ErrorBody,
    ExchangePosition,
    ExchangeStatus,
    FeeInfo,
    MarketInfo,
    OrderGroup,
    OrderRequest,
)
from common.keys import Keys
from common.log import get_logger
from common.settings import Settings

T = TypeVar("T")

ORDERS_V2 = "/portfolio/events/orders"
ORDERS_V2_BATCH = "/portfolio/events/orders/batched"
ORDER_GROUPS = "/portfolio/order_groups"
PAGE_LIMIT = 1000
AMBIGUOUS = (TransportError, ServerError)
_GONE_CODES = ("not_found", "order_not_found", "order_not_resting", "not_resting")


def _from_body(info: ErrorBody, status: int, method: str, path: str) -> ExchangeError:
    kind: type[ExchangeError] = OrderRejected
    if info.code == "order_already_exists":
        kind = Conflict
    elif status:
        kind = error_for_status(status)
    return kind(
        info.message or "refused",
        status=status,
        code=info.code,
        details=info.details,
        method=method,
        path=path,
    )


class KalshiClient:
    """Async Kalshi REST client. Build with ``from_settings`` (or around a ``Transport``)."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Clock | None = None,
        create_attempts: int = 3,
        lookup_attempts: int = 3,
        lookup_delay_s: float = 0.2,
    ) -> None:
        self.transport = transport
        self.clock = clock or transport.clock
        self.create_attempts = create_attempts
        self.lookup_attempts = lookup_attempts
        self.lookup_delay_s = lookup_delay_s
        self._series_fees: dict[str, FeeInfo] = {}
        self._event_fees: dict[str, tuple[str, FeeInfo]] = {}
        self._log = get_logger("kalshi.client")

    @classmethod
    def create(
        cls,
        base_url: str,
        signer: Signer | None,
        *,
        budget: RateBudget | None = None,
        clock: Clock | None = None,
        **transport_options: Any,
    ) -> KalshiClient:
        transport = Transport(base_url, signer, budget=budget, clock=clock, **transport_options)
        return cls(transport, clock=clock)

    @classmethod
    async def from_settings(
        cls,
        settings: Settings,
        *,
        redis: aioredis.Redis | None = None,
        clock: Clock | None = None,
        budget: RateBudget | None = None,
        signer: Signer | None = None,
        **transport_options: Any,
    ) -> KalshiClient:
        """A client for ``settings``' environment and key. With ``redis`` the rate budget is
        the account-wide one in Redis; without, a process-local one."""
        if signer is None:
            signer = await asyncio.to_thread(load_signer, settings)
        if budget is None:
            if redis is not None:
                budget = RedisRateBudget(
                    redis,
                    Keys(settings.key_prefix),
                    settings.rate_tier,
                    account=settings.kalshi_key_id,
                    clock=clock,
                )
            else:
                budget = LocalRateBudget(settings.rate_tier, clock)
        return cls.create(
            settings.rest_base_url, signer, budget=budget, clock=clock, **transport_options
        )

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> KalshiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- plumbing --------------------------------------------------------------------------

    async def _get(
        self, path: str, params: dict[str, Any] | None = None, cost: int = DEFAULT_COST
    ) -> Any:
        return await self.transport.request(
            "GET", path, params=params, bucket=READ, cost=cost, retry=READ_RETRY
        )

    async def _paginate(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Any], tuple[list[T], str | None]],
        max_pages: int = 1000,
    ) -> list[T]:
        out: list[T] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            items, cursor = parse(await self._get(path, page_params))
            out.extend(items)
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
        return out

    async def _write(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        cost: int,
        priority: bool = False,
        idempotent: bool = False,
    ) -> Any:
        return await self.transport.request(
            method,
            path,
            params=params,
            body=body,
            bucket=WRITE,
            cost=cost,
            priority=priority,
            retry=CANCEL_RETRY if idempotent else WRITE_RETRY,
        )

    def max_batch_create(self) -> int:
        return self.transport.budget.max_batch(WRITE, COST_BATCH_CREATE_ITEM)

    def max_batch_cancel(self) -> int:
        return self.transport.budget.max_batch(WRITE, COST_BATCH_CANCEL_ITEM, priority=True)

    # ---- exchange and markets --------------------------------------------------------------

    async def get_exchange_status(self) -> ExchangeStatus:
        return wire.parse_exchange_status(await self._get("/exchange/status"))

    async def get_order_book(self, ticker: str, depth: int | None = None) -> YesBook:
        params = {"depth": depth} if depth else None
        return wire.parse_orderbook(await self._get(f"/markets/{ticker}/orderbook", params))

    async def get_market_info(self, ticker: str) -> MarketInfo:
        return wire.parse_market_response(await self._get(f"/markets/{ticker}"))

    async def get_market_infos(
        self,
        *,
        tickers: Sequence[str] | None = None,
        event_ticker: str | None = None,
        series_ticker: str | None = None,
        status: str | None = None,
    ) -> list[MarketInfo]:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if tickers:
            params["tickers"] = ",".join(tickers)
        if event_ticker:
            params["event_ticker"] = event_ticker
        if series_ticker:
            params["series_ticker"] = series_ticker
        if status:
            params["status"] = status
        return await self._paginate("/markets", params, wire.parse_markets_page)

    async def get_market(self, ticker: str) -> MarketMeta:
        """Tick grid, status, close time and fee type/multiplier of one market."""
        info = await self.get_market_info(ticker)
        return await self._with_fees(info)

    async def get_markets(
        self,
        *,
        tickers: Sequence[str] | None = None,
        event_ticker: str | None = None,
        series_ticker: str | None = None,
        status: str | None = None,
    ) -> list[MarketMeta]:
        infos = await self.get_market_infos(
            tickers=tickers, event_ticker=event_ticker, series_ticker=series_ticker, status=status
        )
        return [await self._with_fees(info) for info in infos]

    async def _with_fees(self, info: MarketInfo) -> MarketMeta:
        fee_type, multiplier = await self.get_fees(info.event_ticker)
        return info.to_meta(fee_type, multiplier, self.clock.now_ms())

    async def get_fees(self, event_ticker: str) -> tuple[FeeType, int]:
        """(fee type, multiplier in hundredths) of an event: its override, else its series'.
        Cached per event and series; a missing event or series means the default schedule."""
        if not event_ticker:
            return FeeType.QUADRATIC, 100
        if event_ticker not in self._event_fees:
            try:
                self._event_fees[event_ticker] = wire.parse_event_fees(
                    await self._get(f"/events/{event_ticker}")
                )
            except NotFound:
                self._log.warning("fees_default", market=event_ticker, reason="event not found")
                self._event_fees[event_ticker] = ("", FeeInfo(None, None))
        series_ticker, override = self._event_fees[event_ticker]
        series = FeeInfo(None, None)
        if series_ticker:
            if series_ticker not in self._series_fees:
                try:
                    self._series_fees[series_ticker] = wire.parse_series_fees(
                        await self._get(f"/series/{series_ticker}")
                    )
                except NotFound:
                    self._series_fees[series_ticker] = FeeInfo(None, None)
            series = self._series_fees[series_ticker]
        fee_type = override.fee_type or series.fee_type or FeeType.QUADRATIC
        multiplier = override.fee_multiplier_pct
        if multiplier is None:
            multiplier = series.fee_multiplier_pct
        return fee_type, 100 if multiplier is None else multiplier

    # ---- portfolio reads -------------------------------------------------------------------

    async def get_balance(self) -> Balance:
        return wire.parse_balance(await self._get("/portfolio/balance"))

    async def get_positions(self, ticker: str | None = None) -> list[ExchangePosition]:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if ticker:
            params["ticker"] = ticker
        return await self._paginate("/portfolio/positions", params, wire.parse_positions_page)

    async def get_orders(
        self,
        *,
        ticker: str | None = None,
        status: str | None = None,
        since_ms: int | None = None,
    ) -> list[Order]:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if ticker:
            params["ticker"] = ticker
        if status:
            params["status"] = status
        if since_ms is not None:
            params["min_ts"] = max(0, since_ms // 1000)
        return await self._paginate("/portfolio/orders", params, wire.parse_orders_page)

    async def get_open_orders(self, ticker: str | None = None) -> list[Order]:
        """Every resting order (of one market, or all)."""
        return await self.get_orders(ticker=ticker, status="resting")

    async def get_order(self, order_id: str) -> Order:
        return wire.parse_order_response(
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

    async def get_fills(
        self,
        since_ms: int | None = None,
        *,
        ticker: str | None = None,
        order_id: str | None = None,
    ) -> list[Fill]:
        """Fills at or after ``since_ms``, oldest first. The exchange filters by whole seconds,
        so fills of the second of ``since_ms`` come again: dedupe by ``fill_id``."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if since_ms is not None:
            params["min_ts"] = max(0, since_ms // 1000)
        if ticker:
            params["ticker"] = ticker
        if order_id:
            params["order_id"] = order_id
        fills = await self._paginate("/portfolio/fills", params, wire.parse_fills_page)
        fills.sort(key=lambda f: (f.ts_ms, f.fill_id))
        return fills

    async def get_settlements(self, since_ms: int | None = None) -> list[wire.Settlement]:
        """Markets that paid out at or after ``since_ms`` (whole seconds: dedupe), oldest first."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if since_ms is not None:
            params["min_ts"] = max(0, since_ms // 1000)
        items = await self._paginate("/portfolio/settlements", params, wire.parse_settlements_page)
        items.sort(key=lambda s: (s.settled_ms, s.ticker))
        return items

    # ---- order entry -----------------------------------------------------------------------

    async def _lookup_created(self, request: OrderRequest, since_ms: int) -> Order | None:
        for attempt in range(self.lookup_attempts):
            try:
                found = await self.find_order(
                    request.client_order_id, request.ticker, since_ms=since_ms - 60_000
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

    async def place_order(self, request: OrderRequest) -> Order:
        """Create one order (V2). Returns the order as acknowledged. After a transport error or
        5xx the create is resent with the same client_order_id (never a duplicate: a repeat
        answers 409) and then looked up; raises ``OutcomeUnknown`` if it still is not known."""
        body = wire.build_create_order(request)
        started_ms = self.clock.now_ms()
        ambiguous: ExchangeError | None = None
        for attempt in range(self.create_attempts):
            try:
                ack = await self._write("POST", ORDERS_V2, body=body, cost=COST_CREATE)
                return wire.order_from_ack(request, ack)
            except Conflict as exc:
                found = await self._lookup_created(request, started_ms)
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
                await asyncio.sleep(min(1.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            except (OrderRejected, RateLimited, NotFound):
                if ambiguous is None:
                    raise
                # an earlier attempt may have created it before this refusal: ask
                found = await self._lookup_created(request, started_ms)
                if found is not None:
                    return found
                raise
        found = await self._lookup_created(request, started_ms)
        if found is not None:
            return found
        raise OutcomeUnknown(
            request.client_order_id,
            f"create outcome unknown after {self.create_attempts} attempts: {ambiguous}",
        )

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[Order | ExchangeError]:
        """Batch create, split to fit the write bucket. One result per request, in order: the
        Order, or the ExchangeError for that item (``OutcomeUnknown`` if it cannot be told)."""
        results: list[Order | ExchangeError] = []
        size = self.max_batch_create()
        for start in range(0, len(requests), size):
            results.extend(await self._place_chunk(list(requests[start : start + size])))
        return results

    async def _place_chunk(self, requests: list[OrderRequest]) -> list[Order | ExchangeError]:
        body = {"orders": [wire.build_create_order(r) for r in requests]}
        cost = COST_BATCH_CREATE_ITEM * len(requests)
        started_ms = self.clock.now_ms()
        ambiguous: ExchangeError | None = None
        answer: Any = None
        for attempt in range(self.create_attempts):
            try:
                answer = await self._write("POST", ORDERS_V2_BATCH, body=body, cost=cost)
                break
            except AMBIGUOUS as exc:
                ambiguous = exc
                await asyncio.sleep(min(1.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        out: list[Order | ExchangeError] = []
        if answer is None:
            for request in requests:
                found = await self._lookup_created(request, started_ms)
                out.append(
                    found
                    if found is not None
                    else OutcomeUnknown(
                        request.client_order_id, f"batch outcome unknown: {ambiguous}"
                    )
                )
            return out
        for request, item in zip(requests, wire.parse_batch_create(answer, requests), strict=True):
            if isinstance(item, Order):
                out.append(item)
                continue
            error = _from_body(item, 0, "POST", ORDERS_V2_BATCH)
            if isinstance(error, Conflict) or ambiguous is not None:
                found = await self._lookup_created(request, started_ms)
                if found is not None:
                    out.append(found)
                    continue
                if isinstance(error, Conflict):
                    error = OutcomeUnknown(request.client_order_id, "exists but not found")
            out.append(error)
        return out

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
        body = wire.build_amend(order, new_price, count, updated_client_order_id)
        path = f"{ORDERS_V2}/{order.order_id}/amend"
        try:
            ack = await self._write("POST", path, body=body, cost=COST_AMEND)
        except AMBIGUOUS:
            return await self.get_order(order.order_id)
        return wire.order_from_amend_ack(order, new_price, count, ack, new_remaining)

    async def decrease_order(
        self, order: Order, *, reduce_by: int | None = None, reduce_to: int | None = None
    ) -> Order:
        """Shrink ``order`` keeping its queue priority (exactly one of reduce_by / reduce_to).
        ``reduce_to`` is idempotent and retried; an unknown ``reduce_by`` is read back."""
        if order.order_id is None:
            raise ValueError("decrease needs an order_id")
        body = wire.build_decrease(order.ticker, reduce_by=reduce_by, reduce_to=reduce_to)
        path = f"{ORDERS_V2}/{order.order_id}/decrease"
        try:
            ack = await self._write(
                "POST",
                path,
                body=body,
                cost=COST_DECREASE,
                priority=True,
                idempotent=reduce_to is not None,
            )
        except AMBIGUOUS:
            return await self.get_order(order.order_id)
        return wire.order_from_decrease_ack(order, ack)

    async def cancel_order(self, order_id: str, ticker: str | None = None) -> CancelResult:
        """Cancel one order (served first by the rate budget; retried). An order that is
        already gone answers ``reduced_by == 0``."""
        params = {"market_ticker": ticker} if ticker else None
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
        return wire.parse_cancel(answer)

    async def cancel_orders(
        self, orders: Sequence[tuple[str, str | None]] | Sequence[Order]
    ) -> list[CancelResult | ExchangeError]:
        """Batch cancel of (order_id, ticker) pairs or Orders, split to fit the bucket."""
        items: list[tuple[str, str | None]] = []
        for item in orders:
            if isinstance(item, Order):
                if item.order_id is None:
                    raise ValueError(f"cannot cancel {item.client_order_id}: no order_id")
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
                body=wire.build_batch_cancel(chunk),
                cost=COST_BATCH_CANCEL_ITEM * len(chunk),
                priority=True,
                idempotent=True,
            )
            for (order_id, _), result in zip(
                chunk, wire.parse_batch_cancel(answer, [o for o, _ in chunk]), strict=True
            ):
                if isinstance(result, CancelResult):
                    out.append(result)
                elif result.code in _GONE_CODES:
                    out.append(CancelResult(order_id, None, 0, self.clock.now_ms()))
                else:
                    out.append(_from_body(result, 0, "DELETE", ORDERS_V2_BATCH))
        return out

    async def cancel_all_orders(self, ticker: str | None = None) -> int | None:
        """Cancel every resting order: of one market (listed, then batch-cancelled; returns how
        many), or of the account (one ``DELETE /portfolio/events/orders``; returns None as the
        exchange does not say how many; falls back to list + batch if the route is missing)."""
        if ticker is None:
            try:
                await self._write(
                    "DELETE", ORDERS_V2, cost=COST_CANCEL_ALL, priority=True, idempotent=True
                )
                return None
            except (NotFound, OrderRejected) as exc:
                if exc.status not in (404, 405):
                    raise
                self._log.warning("cancel_all_fallback", reason=str(exc))
        orders = await self.get_open_orders(ticker)
        results = await self.cancel_orders(orders)
        failed = [r for r in results if isinstance(r, ExchangeError)]
        if failed:
            raise failed[0]
        return len(results)

    # ---- order groups ----------------------------------------------------------------------

    async def _group_write(
        self, method: str, path: str, body: Any = None, priority: bool = False
    ) -> Any:
        return await self._write(method, path, body=body, cost=COST_ORDER_GROUP, priority=priority)

    async def create_order_group(self, contracts_limit: int) -> str:
        """A new order group (exchange-side kill switch) with a limit in centi-contracts."""
        body = wire.build_order_group_limit(contracts_limit)
        return wire.parse_order_group_created(
            await self._group_write("POST", f"{ORDER_GROUPS}/create", body)
        )

    async def get_order_group(self, order_group_id: str) -> OrderGroup:
        return wire.parse_order_group(
            await self._get(f"{ORDER_GROUPS}/{order_group_id}"), order_group_id
        )

    async def get_order_groups(self) -> list[OrderGroup]:
        return wire.parse_order_groups(await self._get(ORDER_GROUPS))

    async def reset_order_group(self, order_group_id: str) -> None:
        await self._group_write("PUT", f"{ORDER_GROUPS}/{order_group_id}/reset")

    async def trigger_order_group(self, order_group_id: str) -> None:
        await self._group_write("PUT", f"{ORDER_GROUPS}/{order_group_id}/trigger", priority=True)

    async def set_order_group_limit(self, order_group_id: str, contracts_limit: int) -> None:
        await self._group_write(
            "PUT",
            f"{ORDER_GROUPS}/{order_group_id}/limit",
            wire.build_order_group_limit(contracts_limit),
        )

    async def delete_order_group(self, order_group_id: str) -> None:
        await self._group_write("DELETE", f"{ORDER_GROUPS}/{order_group_id}", priority=True)


async def gather_limited(coros: Sequence[Awaitable[T]], limit: int = 8) -> list[T]:
    """Run awaitables with at most ``limit`` at once (for fan-out reads)."""
    gate = asyncio.Semaphore(limit)

    async def run(coro: Awaitable[T]) -> T:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(run(c) for c in coros)))
