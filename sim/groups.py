"""Order groups: the exchange-side kill switch (API.md §5.5).

Contracts matched by a group's orders are summed over a rolling 15 s window; when the sum
reaches the group's limit (or on ``trigger``, or when the limit is set at or below the current
sum) the group triggers: its resting orders are cancelled and new orders naming it are refused
until ``reset``, which also zeroes the window.
"""

from __future__ import annotations

from typing import Protocol

from sim.errors import EngineError, not_found
from sim.events import EngineEvent, OrderGroupEvent
from sim.model import Account, Order, OrderGroup

WINDOW_MS = 15_000


class Engine(Protocol):
    """What order groups need of the engine (``sim.engine.Exchange``), which calls them: a
    protocol, so the engine depends on this module and not the other way round."""

    orders: dict[str, Order]

    def ledger(self, key_id: str, subaccount: int = 0) -> Account: ...

    def ledgers_of(self, key_id: str, subaccount: int | None = None) -> list[Account]: ...

    def new_id(self, kind: str) -> str: ...

    def emit(self, event: EngineEvent) -> None: ...

    def cancel_resting(self, order: Order, now_ms: int, *, reason: str = ...) -> int: ...


def _evict(group: OrderGroup, now_ms: int) -> None:
    while group.window and group.window[0][0] <= now_ms - WINDOW_MS:
        _, count = group.window.popleft()
        group.window_sum -= count


def count_fill(account: Account, group_id: str, count: int, now_ms: int) -> bool:
    """Add a matched quantity; True when the group must trigger now."""
    group = account.groups.get(group_id)
    if group is None or group.triggered:
        return False
    _evict(group, now_ms)
    group.window.append((now_ms, count))
    group.window_sum += count
    return group.window_sum >= group.contracts_limit


def _books_of(exchange: Engine, key_id: str, group_id: str) -> Account:
    """The subaccount whose group ``group_id`` is (group ids are unique across subaccounts)."""
    for books in exchange.ledgers_of(key_id):
        if group_id in books.groups:
            return books
    raise not_found("order group")


def _group(exchange: Engine, key_id: str, group_id: str) -> OrderGroup:
    return _books_of(exchange, key_id, group_id).groups[group_id]


def create_group(
    exchange: Engine, key_id: str, contracts_limit: int, now_ms: int, subaccount: int = 0
) -> OrderGroup:
    if not 1 <= contracts_limit <= 1_000_000 * 100:
        raise EngineError(
            400, "invalid_parameters", "invalid parameters", "contracts_limit must be 1-1000000"
        )
    account = exchange.ledger(key_id, subaccount)
    group = OrderGroup(exchange.new_id("group"), key_id, contracts_limit, now_ms, subaccount)
    account.groups[group.group_id] = group
    _emit(exchange, group, "created", now_ms)
    return group


def _cancel_orders(exchange: Engine, group: OrderGroup, now_ms: int, reason: str) -> None:
    for order_id in sorted(group.order_ids):
        order = exchange.orders.get(order_id)
        if order is not None and order.is_resting:
            exchange.cancel_resting(order, now_ms, reason=reason)
    group.order_ids = {
        oid for oid in group.order_ids if (o := exchange.orders.get(oid)) and o.is_resting
    }


def trigger_group(exchange: Engine, key_id: str, group_id: str, now_ms: int) -> None:
    group = _group(exchange, key_id, group_id)
    group.triggered = True
    _cancel_orders(exchange, group, now_ms, "OrderGroupTriggered")
    _emit(exchange, group, "triggered", now_ms)


def reset_group(exchange: Engine, key_id: str, group_id: str, now_ms: int) -> None:
    group = _group(exchange, key_id, group_id)
    group.triggered = False
    group.window.clear()
    group.window_sum = 0
    _emit(exchange, group, "reset", now_ms)


def set_group_limit(
    exchange: Engine, key_id: str, group_id: str, contracts_limit: int, now_ms: int
) -> None:
    if not 1 <= contracts_limit <= 1_000_000 * 100:
        raise EngineError(
            400, "invalid_parameters", "invalid parameters", "contracts_limit must be 1-1000000"
        )
    group = _group(exchange, key_id, group_id)
    group.contracts_limit = contracts_limit
    _emit(exchange, group, "limit_updated", now_ms)
    _evict(group, now_ms)
    if not group.triggered and group.window_sum >= contracts_limit:
        trigger_group(exchange, key_id, group_id, now_ms)


def delete_group(exchange: Engine, key_id: str, group_id: str, now_ms: int) -> None:
    books = _books_of(exchange, key_id, group_id)
    group = books.groups[group_id]
    _cancel_orders(exchange, group, now_ms, "OrderGroupDeleted")
    del books.groups[group_id]
    _emit(exchange, group, "deleted", now_ms)


def resting_order_ids(exchange: Engine, group: OrderGroup) -> list[str]:
    return sorted(
        oid for oid in group.order_ids if (o := exchange.orders.get(oid)) and o.is_resting
    )


def _emit(exchange: Engine, group: OrderGroup, event_type: str, now_ms: int) -> None:
    exchange.emit(
        OrderGroupEvent(group.key_id, group.group_id, event_type, group.contracts_limit, now_ms)
    )
