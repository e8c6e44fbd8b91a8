"""The plumbing every Kalshi endpoint shares: a read, a paginated read, a write.

Reads draw on the read bucket and are retried (``READ_RETRY``); writes on the write bucket, and
only idempotent ones (cancels, ``reduce_to``) are retried after an ambiguous failure.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

from common.clock import Clock
from common.kalshi.ratelimit import (
    COST_BATCH_CANCEL_ITEM,
    COST_BATCH_CREATE_ITEM,
    DEFAULT_COST,
    READ,
    WRITE,
)
from common.kalshi.transport import CANCEL_RETRY, READ_RETRY, WRITE_RETRY, Transport
from common.kalshi.wire.listing import Skipped
from common.log import get_logger

T = TypeVar("T")

PAGE_LIMIT = 1000


class RestClient:
    """Signed requests through one ``Transport``; the endpoints are in the subclasses.

    ``subaccount`` (0-63) scopes every portfolio read and every write: dora trades in one
    subaccount and never lists, changes or cancels anything outside it."""

    def __init__(
        self, transport: Transport, *, clock: Clock | None = None, subaccount: int = 0
    ) -> None:
        if not 0 <= subaccount <= 63:
            raise ValueError(f"subaccount must be 0-63, was {subaccount}")
        self.transport = transport
        self.clock = clock or transport.clock
        self.subaccount = subaccount
        self._listing_log = get_logger("kalshi.client")

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

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

    async def _listing(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[..., tuple[list[T], str | None]],
        skipped: list[Skipped] | None,
    ) -> list[T]:
        """A paginated portfolio listing of this subaccount, read item by item: an item that
        does not parse is logged and set aside (into ``skipped`` when the caller passes one, to
        know which), and the rest are returned."""
        found: list[Skipped] = []
        items = await self._paginate(
            path, {**params, "subaccount": self.subaccount}, partial(parse, skipped=found)
        )
        for item in found:
            self._listing_log.warning(
                "listing_item_skipped",
                listing=path,
                what=item.what,
                key=item.key,
                reason=item.reason,
            )
        if skipped is not None:
            skipped.extend(found)
        return items

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
