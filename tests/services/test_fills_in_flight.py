"""The executor's count of executions not in the position yet, for orders a cancel-all took."""

from __future__ import annotations

from dataclasses import replace

from common.domain import Order, OrderStatus, Side
from services.executor.fills_in_flight import IN_FLIGHT_MAX_MS, FillsInFlight

RESTING = Order("KX", Side.BID, 4100, 500, "c1", "o1", OrderStatus.RESTING, 100, 400, 0, 1_000)


def held(in_flight: FillsInFlight) -> list[tuple[int, int]]:
    return [(o.price, o.remaining) for o in in_flight.stand_ins([], "KX")]


def cancelled(order: Order) -> Order:
    return replace(order, status=OrderStatus.CANCELED, remaining=0)


def test_a_doubted_order_is_held_as_executed_until_the_exchange_says() -> None:
    in_flight = FillsInFlight()
    in_flight.credit(RESTING, 1_000)  # its first contract's fill is in the position
    in_flight.doubt(RESTING)
    in_flight.retire(cancelled(RESTING))  # the record of the cancel does not undo the doubt
    assert held(in_flight) == [(4100, 400)]
    in_flight.on_fill("o1", 100, 1_100)  # one more contract's fill posts
    assert held(in_flight) == [(4100, 300)]
    assert in_flight.settle("o1", 300)  # the exchange: 3 executed in all, 2 of them posted
    assert held(in_flight) == [(4100, 100)]
    in_flight.on_fill("o1", 100, 1_200)
    assert held(in_flight) == [] and in_flight.done == {} and in_flight.doubted == set()


def test_an_order_that_never_executed_is_let_go_at_its_last_word() -> None:
    in_flight = FillsInFlight()
    in_flight.doubt(replace(RESTING, filled=0, remaining=500))
    assert held(in_flight) == [(4100, 500)]
    assert in_flight.settle("o1", 0)
    assert held(in_flight) == [] and in_flight.done == {}
    assert not in_flight.settle("o1", 0)  # no longer in doubt: nothing to settle


def test_no_word_on_a_doubted_order_is_not_reported_as_a_lost_fill() -> None:
    in_flight = FillsInFlight()
    in_flight.doubt(RESTING)
    lost = in_flight.expire(RESTING.updated_ms + IN_FLIGHT_MAX_MS + 1, set())
    assert lost == [] and in_flight.done == {} and in_flight.doubted == set()
