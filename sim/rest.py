"""Kalshi's REST surface under ``/trade-api/v2`` (API.md §5), over the engine.

Handlers take the authenticated key id (set by the middleware in ``sim.server``) from
``request[KEY_ID]`` and the parsed JSON body from ``request[BODY]``; engine refusals are
raised as ``EngineError`` and turned into Kalshi's error bodies by the middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web

from common.numbers import COUNT_SCALE, format_count, format_money, format_price
from sim import groups, parse, wire
from sim.engine import Exchange, Execution
from sim.errors import EngineError, not_found
from sim.model import Account
from sim.parse import invalid
from sim.ratelimit import endpoint_costs
from sim.state import SimState

T = TypeVar("T")
Json = dict[str, Any]
KEY_ID = web.RequestKey("key_id", str)  # the authenticated key id (set by the middleware)
BODY = web.RequestKey("body", object)  # the parsed JSON body


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def page(
    items: Sequence[T], key: Callable[[T], str], cursor: str | None, limit: int
) -> tuple[list[T], str]:
    """One page of ``items`` (already in output order) after the item keyed by ``cursor``."""
    start = 0
    after = parse.decode_cursor(cursor)
    if after is not None:
        for index, item in enumerate(items):
            if key(item) == after:
                start = index + 1
                break
        else:
            raise invalid("cursor does not match any item")
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    return chunk, parse.encode_cursor(key(chunk[-1])) if more and chunk else ""


def _ack_fills(execution: Execution) -> Json:
    data: Json = {}
    if execution.order.filled:
        order = execution.order
        data["average_fill_price"] = format_price(order.fill_yes_money // order.filled)
        fees = order.taker_fees + order.maker_fees
        data["average_fee_paid"] = format_money(fees * COUNT_SCALE // order.filled, 4)
    return data


def create_ack(execution: Execution, now_ms: int) -> Json:
    order = execution.order
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "fill_count": format_count(order.filled),
        "remaining_count": format_count(order.remaining),
        **_ack_fills(execution),
        "ts_ms": now_ms,
    }


def _flat_error(exc: EngineError) -> Json:
    return {"code": exc.code, "message": exc.message, "details": exc.details}


def _ts_filter(query: Any, ms: int) -> bool:
    min_ts, max_ts = parse.int_query(query, "min_ts"), parse.int_query(query, "max_ts")
    return (min_ts is None or ms >= min_ts * 1000) and (max_ts is None or ms <= max_ts * 1000)


class RestApi:
    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        r = web
        p = "/trade-api/v2"
        return [
            r.get(f"{p}/exchange/status", self.exchange_status),
            r.get(f"{p}/exchange/schedule", self.exchange_schedule),
            r.get(f"{p}/exchange/user_data_timestamp", self.user_data_timestamp),
            r.get(f"{p}/account/limits", self.account_limits),
            r.get(f"{p}/account/endpoint_costs", self.account_endpoint_costs),
            r.get(f"{p}/markets", self.markets),
            r.get(f"{p}/markets/orderbooks", self.orderbooks),
            r.get(f"{p}/markets/trades", self.trades),
            r.get(f"{p}/markets/{{ticker}}", self.market),
            r.get(f"{p}/markets/{{ticker}}/orderbook", self.orderbook),
            r.get(f"{p}/events", self.events),
            r.get(f"{p}/events/{{event_ticker}}", self.event),
            r.get(f"{p}/series", self.series_list),
            r.get(f"{p}/series/fee_changes", self.series_fee_changes),
            r.get(f"{p}/series/{{series_ticker}}", self.series),
            r.get(f"{p}/portfolio/balance", self.balance),
            r.get(f"{p}/portfolio/positions", self.positions),
            r.get(f"{p}/portfolio/fills", self.fills),
            r.get(f"{p}/portfolio/settlements", self.settlements),
            r.get(f"{p}/portfolio/orders", self.orders),
            r.get(f"{p}/portfolio/orders/queue_positions", self.queue_positions),
            r.get(f"{p}/portfolio/orders/{{order_id}}", self.order),
            r.get(f"{p}/portfolio/orders/{{order_id}}/queue_position", self.queue_position),
            r.post(f"{p}/portfolio/events/orders", self.create_order),
            r.post(f"{p}/portfolio/events/orders/batched", self.batch_create),
            r.delete(f"{p}/portfolio/events/orders/batched", self.batch_cancel),
            r.delete(f"{p}/portfolio/events/orders", self.cancel_all),
            r.delete(f"{p}/portfolio/events/orders/{{order_id}}", self.cancel_order),
            r.post(f"{p}/portfolio/events/orders/{{order_id}}/amend", self.amend_order),
            r.post(f"{p}/portfolio/events/orders/{{order_id}}/decrease", self.decrease_order),
            r.post(f"{p}/portfolio/order_groups/create", self.create_group),
            r.get(f"{p}/portfolio/order_groups", self.list_groups),
            r.get(f"{p}/portfolio/order_groups/{{group_id}}", self.get_group),
            r.delete(f"{p}/portfolio/order_groups/{{group_id}}", self.delete_group),
            r.put(f"{p}/portfolio/order_groups/{{group_id}}/reset", self.reset_group),
            r.put(f"{p}/portfolio/order_groups/{{group_id}}/trigger", self.trigger_group),
            r.put(f"{p}/portfolio/order_groups/{{group_id}}/limit", self.limit_group),
            # legacy V1 mutations: gone since 2026-06, they answer "switch to V2"
            r.post(f"{p}/portfolio/orders", self.legacy),
            r.post(f"{p}/portfolio/orders/batched", self.legacy),
            r.delete(f"{p}/portfolio/orders/batched", self.legacy),
            r.delete(f"{p}/portfolio/orders/{{order_id}}", self.legacy),
            r.post(f"{p}/portfolio/orders/{{order_id}}/amend", self.legacy),
            r.post(f"{p}/portfolio/orders/{{order_id}}/decrease", self.legacy),
        ]

    @property
    def ex(self) -> Exchange:
        return self.sim.exchange

    def now(self) -> int:
        return self.sim.clock_ms()

    # ----- exchange, account -------------------------------------------------------------

    async def exchange_status(self, request: web.Request) -> web.Response:
        return json_response(self.sim.calendar.status_json(self.now()))

    async def exchange_schedule(self, request: web.Request) -> web.Response:
        return json_response(self.sim.calendar.schedule_json(self.now()))

    async def series_fee_changes(self, request: web.Request) -> web.Response:
        """Announced fee changes: upcoming ones, and past ones with ``show_historical``."""
        q, now = request.query, self.now()
        historical = q.get("show_historical") in ("true", "1", "True")
        rows = [
            wire.fee_change_json(change)
            for change in self.ex.fee_changes
            if (not q.get("series_ticker") or change.series_ticker == q["series_ticker"])
            and (historical or change.scheduled_ms > now)
        ]
        return json_response({"series_fee_change_arr": rows})

    async def user_data_timestamp(self, request: web.Request) -> web.Response:
        return json_response({"as_of_time": wire.rfc3339(self.now())})

    async def account_limits(self, request: web.Request) -> web.Response:
        return json_response(self.sim.limiter.limits_json())

    async def account_endpoint_costs(self, request: web.Request) -> web.Response:
        return json_response({"default_cost": 10, "endpoint_costs": endpoint_costs()})

    # ----- markets, events, series ----------------------------------------------------------

    async def markets(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 100, 1000)
        status = q.get("status")
        if status and status not in ("unopened", "open", "paused", "closed", "settled"):
            raise invalid(
                f"status must be unopened, open, paused, closed or settled, was {status!r}"
            )
        tickers = set(filter(None, q.get("tickers", "").split(","))) or None
        min_close, max_close = (
            parse.int_query(q, "min_close_ts"),
            parse.int_query(q, "max_close_ts"),
        )
        found = []
        for market in sorted(self.ex.markets.values(), key=lambda m: m.ticker):
            if tickers is not None and market.ticker not in tickers:
                continue
            if q.get("event_ticker") and market.event_ticker != q["event_ticker"]:
                continue
            if q.get("series_ticker") and market.series_ticker != q["series_ticker"]:
                continue
            if status and not wire.status_filter_matches(market.status, status):
                continue
            if min_close is not None and market.close_ms < min_close * 1000:
                continue
            if max_close is not None and market.close_ms > max_close * 1000:
                continue
            found.append(market)
        chunk, cursor = page(found, lambda m: m.ticker, q.get("cursor"), limit)
        markets = [wire.market_json(m, self.ex.books[m.ticker]) for m in chunk]
        return json_response({"markets": markets, "cursor": cursor})

    async def market(self, request: web.Request) -> web.Response:
        market = self.ex.market(request.match_info["ticker"])
        return json_response({"market": wire.market_json(market, self.ex.books[market.ticker])})

    def _depth(self, request: web.Request) -> int:
        depth = parse.int_query(request.query, "depth") or 0
        if not 0 <= depth <= 100:
            raise invalid("depth must be 0-100")
        return depth

    async def orderbook(self, request: web.Request) -> web.Response:
        market = self.ex.market(request.match_info["ticker"])
        book = self.ex.books[market.ticker]
        return json_response({"orderbook_fp": wire.orderbook_fp(book, self._depth(request))})

    async def orderbooks(self, request: web.Request) -> web.Response:
        tickers: list[str] = []
        for raw in request.query.getall("tickers", []):
            tickers.extend(t for t in raw.split(",") if t)
        if not 1 <= len(tickers) <= 100:
            raise invalid("tickers must name 1-100 markets")
        books = []
        for ticker in tickers:
            market = self.ex.market(ticker)
            books.append(
                {"ticker": market.ticker, "orderbook_fp": wire.orderbook_fp(self.ex.books[ticker])}
            )
        return json_response({"orderbooks": books})

    async def trades(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 100, 1000)
        ticker = q.get("ticker")
        found = [
            t
            for t in reversed(self.ex.trades)
            if (not ticker or t.ticker == ticker) and _ts_filter(q, t.created_ms)
        ]
        chunk, cursor = page(found, lambda t: t.trade_id, q.get("cursor"), limit)
        return json_response({"trades": [wire.trade_json(t) for t in chunk], "cursor": cursor})

    def _event_markets(self, event_ticker: str) -> list[Json]:
        return [
            wire.market_json(m, self.ex.books[m.ticker])
            for m in sorted(self.ex.markets.values(), key=lambda m: m.ticker)
            if m.event_ticker == event_ticker
        ]

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 200, 200)
        nested = q.get("with_nested_markets") == "true"
        status = q.get("status")
        found = []
        for event in sorted(self.ex.events_by_ticker.values(), key=lambda e: e.event_ticker):
            if q.get("series_ticker") and event.series_ticker != q["series_ticker"]:
                continue
            if status and not any(
                wire.status_filter_matches(m.status, status)
                for m in self.ex.markets.values()
                if m.event_ticker == event.event_ticker
            ):
                continue
            found.append(event)
        chunk, cursor = page(found, lambda e: e.event_ticker, q.get("cursor"), limit)
        events = [
            wire.event_json(e, self._event_markets(e.event_ticker) if nested else None)
            for e in chunk
        ]
        return json_response({"events": events, "cursor": cursor})

    async def event(self, request: web.Request) -> web.Response:
        event = self.ex.events_by_ticker.get(request.match_info["event_ticker"])
        if event is None:
            raise not_found("event")
        markets = self._event_markets(event.event_ticker)
        nested = request.query.get("with_nested_markets") == "true"
        return json_response(
            {"event": wire.event_json(event, markets if nested else None), "markets": markets}
        )

    def _series_volume(self, ticker: str) -> int:
        return sum(m.volume for m in self.ex.markets.values() if m.series_ticker == ticker)

    async def series_list(self, request: web.Request) -> web.Response:
        volume = request.query.get("include_volume") == "true"
        return json_response(
            {
                "series": [
                    wire.series_json(s, self._series_volume(s.ticker) if volume else None)
                    for s in sorted(self.ex.series.values(), key=lambda s: s.ticker)
                ]
            }
        )

    async def series(self, request: web.Request) -> web.Response:
        series = self.ex.series.get(request.match_info["series_ticker"])
        if series is None:
            raise not_found("series")
        return json_response(
            {"series": wire.series_json(series, self._series_volume(series.ticker))}
        )

    # ----- portfolio reads ---------------------------------------------------------------
    # Kalshi keeps orders, fills, positions and cash per subaccount: balance and positions read
    # one (``subaccount``, default 0), listings of orders, fills and settlements cover every
    # subaccount unless one is named, and a write acts in the one it names (default 0).

    def _account(self, request: web.Request) -> Account:
        """The subaccount named by ``?subaccount=`` (default 0)."""
        return self.ex.ledger(request[KEY_ID], _subaccount(request.query) or 0)

    def _ledgers(self, request: web.Request) -> list[Account]:
        """The subaccount named by ``?subaccount=``, or every one of the key."""
        return self.ex.ledgers_of(request[KEY_ID], _subaccount(request.query))

    async def balance(self, request: web.Request) -> web.Response:
        return json_response(wire.balance_json(self._account(request), self.ex.markets, self.now()))

    async def positions(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 100, 1000)
        count_filter = set(filter(None, q.get("count_filter", "").split(",")))
        settlement_status = q.get("settlement_status", "unsettled")  # 3.32+
        if settlement_status not in ("unsettled", "settled", "all"):
            raise invalid(
                f"settlement_status must be unsettled, settled or all, was {settlement_status!r}"
            )
        account = self._account(request)
        held = list(account.positions.values()) if settlement_status != "settled" else []
        if settlement_status != "unsettled":
            held += wire.settled_positions(account.settlements)
        found = []
        for position in sorted(held, key=lambda p: p.ticker):
            if q.get("ticker") and position.ticker != q["ticker"]:
                continue
            if q.get("event_ticker") and position.event_ticker not in q["event_ticker"].split(","):
                continue
            if "position" in count_filter and position.position == 0:
                continue
            if "total_traded" in count_filter and position.total_traded == 0:
                continue
            found.append(position)
        chunk, cursor = page(found, lambda p: p.ticker, q.get("cursor"), limit)
        return json_response(
            {
                "market_positions": [wire.position_json(p) for p in chunk],
                "event_positions": wire.event_positions_json(chunk),
                "cursor": cursor,
            }
        )

    async def fills(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 100, 1000)
        fills = sorted((f for a in self._ledgers(request) for f in a.fills), key=lambda f: f.seq)
        found = [
            f
            for f in reversed(fills)
            if (not q.get("ticker") or f.ticker == q["ticker"])
            and (not q.get("order_id") or f.order_id == q["order_id"])
            and _ts_filter(q, f.created_ms)
        ]
        chunk, cursor = page(found, lambda f: str(f.seq), q.get("cursor"), limit)
        return json_response({"fills": [wire.fill_json(f) for f in chunk], "cursor": cursor})

    async def settlements(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 100, 1000)
        settled = sorted(
            (s for a in self._ledgers(request) for s in a.settlements), key=lambda s: s.seq
        )
        found = [
            s
            for s in reversed(settled)
            if (not q.get("ticker") or s.ticker == q["ticker"])
            and (not q.get("event_ticker") or s.event_ticker == q["event_ticker"])
            and _ts_filter(q, s.settled_ms)
        ]
        chunk, cursor = page(found, lambda s: str(s.seq), q.get("cursor"), limit)
        return json_response(
            {"settlements": [wire.settlement_json(s) for s in chunk], "cursor": cursor}
        )

    async def orders(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse.limit_of(q, 100, 1000)
        status = q.get("status")
        if status and status not in ("resting", "canceled", "executed"):
            raise invalid(f"status must be resting, canceled or executed, was {status!r}")
        events = set(filter(None, q.get("event_ticker", "").split(",")))
        if len(events) > 10:
            raise invalid("event_ticker takes at most 10 tickers")
        orders = [o for a in self._ledgers(request) for o in a.orders.values()]
        found = []
        for order in sorted(orders, key=lambda o: o.order_id, reverse=True):  # newest first
            if q.get("ticker") and order.ticker != q["ticker"]:
                continue
            if events and self.ex.markets[order.ticker].event_ticker not in events:
                continue
            if status and order.status.value != status:
                continue
            if not _ts_filter(q, order.created_ms):
                continue
            found.append(order)
        chunk, cursor = page(found, lambda o: o.order_id, q.get("cursor"), limit)
        return json_response({"orders": [wire.order_json(o) for o in chunk], "cursor": cursor})

    async def order(self, request: web.Request) -> web.Response:
        order = self.ex.order_of(request[KEY_ID], request.match_info["order_id"])
        return json_response({"order": wire.order_json(order)})

    async def queue_position(self, request: web.Request) -> web.Response:
        order = self.ex.order_of(request[KEY_ID], request.match_info["order_id"])
        return json_response({"queue_position_fp": format_count(self.ex.queue_position(order))})

    async def queue_positions(self, request: web.Request) -> web.Response:
        q = request.query
        tickers = set(filter(None, q.get("market_tickers", "").split(",")))
        event_ticker = q.get("event_ticker")
        if not tickers and not event_ticker:
            raise parse.missing("market_tickers", "event_ticker")
        rows = []
        resting = [o for a in self._ledgers(request) for o in a.resting.values()]
        for order in sorted(resting, key=lambda o: o.seq):
            market = self.ex.markets[order.ticker]
            if order.ticker in tickers or market.event_ticker == event_ticker:
                rows.append(
                    {
                        "order_id": order.order_id,
                        "market_ticker": order.ticker,
                        "queue_position_fp": format_count(self.ex.queue_position(order)),
                    }
                )
        return json_response({"queue_positions": rows})

    # ----- V2 order entry ----------------------------------------------------------------

    async def create_order(self, request: web.Request) -> web.Response:
        order_request = parse.create_request(request[BODY])
        now = self.now()
        execution = self.ex.create_order(request[KEY_ID], order_request, now)
        return json_response(create_ack(execution, now), status=201)

    async def batch_create(self, request: web.Request) -> web.Response:
        items = _batch_items(request[BODY])
        now = self.now()
        results = []
        for item in items:
            client_order_id = item.get("client_order_id") if isinstance(item, dict) else None
            try:
                execution = self.ex.create_order(request[KEY_ID], parse.create_request(item), now)
                results.append(create_ack(execution, now))
            except EngineError as exc:
                results.append({"client_order_id": client_order_id, "error": _flat_error(exc)})
        return json_response({"orders": results}, status=201)

    def _cancel_ack(self, key_id: str, order_id: str, now: int, subaccount: int) -> Json:
        order, reduced = self.ex.cancel_order(key_id, order_id, now, subaccount)
        return {
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "reduced_by": format_count(reduced),
            "ts_ms": now,
        }

    async def cancel_order(self, request: web.Request) -> web.Response:
        ack = self._cancel_ack(
            request[KEY_ID],
            request.match_info["order_id"],
            self.now(),
            _subaccount(request.query) or 0,
        )
        return json_response(ack)

    async def batch_cancel(self, request: web.Request) -> web.Response:
        items = _batch_items(request[BODY])
        now = self.now()
        results = []
        for item in items:
            order_id = item.get("order_id") if isinstance(item, dict) else None
            if not isinstance(order_id, str) or not order_id:
                exc = parse.missing("order_id")
                results.append({"order_id": "", "reduced_by": "0.00", "error": _flat_error(exc)})
                continue
            try:
                subaccount = parse.subaccount_of(item.get("subaccount"))
                results.append(self._cancel_ack(request[KEY_ID], order_id, now, subaccount))
            except EngineError as exc:
                results.append(
                    {"order_id": order_id, "reduced_by": "0.00", "error": _flat_error(exc)}
                )
        return json_response({"orders": results})

    async def cancel_all(self, request: web.Request) -> web.Response:
        self.ex.cancel_all(request[KEY_ID], self.now(), _subaccount(request.query))
        return web.Response(status=204)

    async def amend_order(self, request: web.Request) -> web.Response:
        body = parse.body_object(request[BODY])
        absent = [k for k in ("ticker", "side", "price", "count") if body.get(k) in (None, "")]
        if absent:
            raise parse.missing(*absent)
        now = self.now()
        execution = self.ex.amend_order(
            request[KEY_ID],
            request.match_info["order_id"],
            now,
            ticker=str(body["ticker"]),
            side=parse.side_of(body["side"]),
            price=parse.price_of(body["price"]),
            count=parse.count_of(body["count"]),
            client_order_id=body.get("client_order_id") or None,
            updated_client_order_id=body.get("updated_client_order_id") or None,
            expiration_s=parse.optional_int(body, "expiration_time"),
            subaccount=_subaccount(request.query) or 0,
        )
        order = execution.order
        return json_response(
            {
                "order_id": order.order_id,
                "client_order_id": order.client_order_id,
                "remaining_count": format_count(order.remaining),
                "fill_count": format_count(order.filled),
                **_ack_fills(execution),
                "ts_ms": now,
            }
        )

    async def decrease_order(self, request: web.Request) -> web.Response:
        body = parse.body_object(request[BODY])
        reduce_by = body.get("reduce_by")
        reduce_to = body.get("reduce_to")
        if (reduce_by is None) == (reduce_to is None):
            raise invalid("exactly one of reduce_by or reduce_to is required")
        now = self.now()
        order = self.ex.decrease_order(
            request[KEY_ID],
            request.match_info["order_id"],
            now,
            reduce_by=parse.count_of(reduce_by, "reduce_by") if reduce_by is not None else None,
            reduce_to=parse.count_of(reduce_to, "reduce_to") if reduce_to is not None else None,
            subaccount=_subaccount(request.query) or 0,
        )
        return json_response(
            {
                "order_id": order.order_id,
                "client_order_id": order.client_order_id,
                "remaining_count": format_count(order.remaining),
                "ts_ms": now,
            }
        )

    async def legacy(self, request: web.Request) -> web.Response:
        return json_response(
            wire.error_body("endpoint_deprecated", "Please switch to the V2 endpoints"),
            status=400,
        )

    # ----- order groups ------------------------------------------------------------------

    def _limit_from(self, body: Json) -> int:
        if body.get("contracts_limit_fp") is not None:
            return parse.count_of(body["contracts_limit_fp"], "contracts_limit_fp")
        raw = body.get("contracts_limit")
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise parse.missing("contracts_limit_fp")
        return raw * COUNT_SCALE

    async def create_group(self, request: web.Request) -> web.Response:
        body = parse.body_object(request[BODY])
        subaccount = parse.subaccount_of(body.get("subaccount"))
        group = groups.create_group(
            self.ex, request[KEY_ID], self._limit_from(body), self.now(), subaccount
        )
        return json_response(
            {"order_group_id": group.group_id, "subaccount": subaccount, "exchange_index": 0},
            status=201,
        )

    async def list_groups(self, request: web.Request) -> web.Response:
        rows = [wire.order_group_json(g) for a in self._ledgers(request) for g in a.groups.values()]
        return json_response({"order_groups": rows})

    async def get_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        group = next(
            (a.groups[group_id] for a in self._ledgers(request) if group_id in a.groups), None
        )
        if group is None:
            raise not_found("order group")
        return json_response(
            {
                "is_auto_cancel_enabled": True,
                "contracts_limit_fp": format_count(group.contracts_limit),
                "orders": groups.resting_order_ids(self.ex, group),
                "exchange_index": 0,
            }
        )

    async def delete_group(self, request: web.Request) -> web.Response:
        groups.delete_group(self.ex, request[KEY_ID], request.match_info["group_id"], self.now())
        return json_response({})

    async def reset_group(self, request: web.Request) -> web.Response:
        groups.reset_group(self.ex, request[KEY_ID], request.match_info["group_id"], self.now())
        return json_response({})

    async def trigger_group(self, request: web.Request) -> web.Response:
        groups.trigger_group(self.ex, request[KEY_ID], request.match_info["group_id"], self.now())
        return json_response({})

    async def limit_group(self, request: web.Request) -> web.Response:
        body = parse.body_object(request[BODY])
        groups.set_group_limit(
            self.ex,
            request[KEY_ID],
            request.match_info["group_id"],
            self._limit_from(body),
            self.now(),
        )
        return json_response({})


def _subaccount(query: Any) -> int | None:
    """``?subaccount=`` (0-63), or None when absent."""
    value = parse.int_query(query, "subaccount")
    return None if value is None else parse.subaccount_of(value)


def _batch_items(raw: object) -> list[Any]:
    body = parse.body_object(raw)
    items = body.get("orders")
    if not isinstance(items, list) or not items:
        raise parse.missing("orders")
    return items
