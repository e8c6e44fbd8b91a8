"""The simulator's own control API under ``/_sim`` (unauthenticated, loopback only).

For tests, the demo, chaos runs and benchmarks: counters, the exchange's truth about an account,
the log of every accepted order, fault injection, market lifecycle actions and key
registration. The path cannot clash with Kalshi's (``/trade-api/...``).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from common.errors import ConfigError
from common.numbers import format_count, format_price
from sim import hits, lifecycle, wire
from sim.errors import EngineError
from sim.model import BookSide, ledger_key
from sim.rest import json_response
from sim.state import SimState

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


class ControlApi:
    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/health", self.health),
            web.get("/_sim/stats", self.stats),
            web.get("/_sim/accounts/{key_id}", self.account),
            web.post("/_sim/accounts/{key_id}/hit", self.hit),
            web.get("/_sim/orders", self.order_log),
            web.get("/_sim/faults", self.get_faults),
            web.post("/_sim/faults", self.set_faults),
            web.post("/_sim/keys", self.add_key),
            web.post("/_sim/churn", self.set_churn),
            web.post("/_sim/exchange/{action}", self.exchange_action),
            web.post("/_sim/events/{event_ticker}/fees", self.event_fees),
            web.post("/_sim/series/{series_ticker}/fee_change", self.series_fee_change),
            web.get("/_sim/markets/{ticker}/fair", self.fair),
            web.post("/_sim/markets/{ticker}/{action}", self.market_action),
        ]

    def _guard(self, request: web.Request) -> web.Response | None:
        if request.remote not in _LOOPBACK:
            return _error(403, "the control API answers loopback clients only")
        return None

    async def _json(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ConfigError("body must be JSON") from None
        if not isinstance(data, dict):
            raise ConfigError("body must be a JSON object")
        return data

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"ok": True, "markets": len(self.sim.exchange.markets)})

    async def stats(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        ex = self.sim.exchange
        resting = {key: len(a.resting) for key, a in ex.accounts.items() if not a.is_agent}
        data = {
            **dict(self.sim.stats),
            **ex.counters,
            "ws_connections_open": len(self.sim.hub.connections),
            # messages queued for a socket but not yet written to it (a slow reader backs up)
            "ws_backlog": max((c.queued - c.written for c in self.sim.hub.connections), default=0),
            "ws_delta_age_ms": self.sim.hub.delta_age_ms(),
            "resting_orders_by_account": resting,
            "resting_orders_agents": sum(
                len(a.resting) for a in ex.accounts.values() if a.is_agent
            ),
            "fees_collected_dollars": wire.money(ex.fees_collected),
            "money_conserved": ex.total_money() == ex.deposits,
            "now_ms": self.sim.clock_ms(),
            "rate_tier": self.sim.limiter.tier,
            "churn_deltas_per_s": self.sim.churn.rate,
            "churn_touch_pct": self.sim.churn.touch_pct,
            "churn_deltas": self.sim.churn.deltas,
            "scenario": self.sim.world.scenario.name,
            "seed": self.sim.world.seed,
        }
        return json_response(data)

    async def account(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        try:  # ?subaccount=N: that subaccount's books (default 0, the account itself)
            subaccount = int(request.query.get("subaccount", "0") or 0)
        except ValueError:
            return _error(400, "subaccount must be a number")
        key = ledger_key(request.match_info["key_id"], subaccount)
        account = self.sim.exchange.accounts.get(key)
        if account is None:
            return _error(404, "no such account")
        return json_response(
            {
                "key_id": account.key_id,
                "subaccount": account.subaccount,
                "user_id": account.user_id,
                "cash_dollars": wire.money(account.cash),
                "locked_dollars": wire.money(account.locked),
                "available_dollars": wire.money(account.available),
                "positions": {
                    t: {
                        "position_fp": format_count(p.position),
                        "cost_dollars": wire.money(p.cost),
                        "realized_pnl_dollars": wire.money(p.realized_pnl),
                        "fees_paid_dollars": wire.money(p.fees_paid),
                    }
                    for t, p in sorted(account.positions.items())
                },
                "resting_orders": [wire.order_json(o) for o in account.resting.values()],
                "fills": len(account.fills),
                "settlements": len(account.settlements),
            }
        )

    async def hit(self, request: web.Request) -> web.Response:
        """{limit}: takers hit that many of the account's resting orders now (``sim.hits``)."""
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            body = await self._json(request)
            limit = _whole(body.get("limit", 1000), "limit")
        except ConfigError as exc:
            return _error(400, str(exc))
        try:
            hit = hits.hit_resting(
                self.sim.exchange, request.match_info["key_id"], self.sim.clock_ms(), limit=limit
            )
        finally:
            self.sim.flush()
        return json_response({"hit": hit})

    async def order_log(self, request: web.Request) -> web.Response:
        """Every order ever accepted (oldest first): ``?key_id=&since_ms=&limit=``."""
        if (denied := self._guard(request)) is not None:
            return denied
        key_id = request.query.get("key_id")
        since = int(request.query.get("since_ms", "0") or 0)
        limit = int(request.query.get("limit", "100000") or 100000)
        rows = []
        for order in self.sim.exchange.order_log:
            if key_id and order.key_id != key_id:
                continue
            if order.created_ms < since:
                continue
            rows.append(
                {
                    "order_id": order.order_id,
                    "key_id": order.key_id,
                    "client_order_id": order.client_order_id,
                    "ticker": order.ticker,
                    "side": order.side.value,
                    "price_dollars": format_price(order.price),
                    "initial_count_fp": format_count(order.initial_count),
                    "created_ms": order.created_ms,
                    "status": order.status.value,
                }
            )
            if len(rows) >= limit:
                break
        return json_response({"orders": rows})

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.sim.faults.as_json(self.sim.clock_ms()))

    async def set_faults(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            changes = await self._json(request)
            drop = self.sim.faults.apply(changes, self.sim.clock_ms())
        except ConfigError as exc:
            return _error(400, str(exc))
        dropped = self.sim.hub.drop_all() if drop else 0
        return json_response({**self.sim.faults.as_json(self.sim.clock_ms()), "dropped": dropped})

    async def set_churn(self, request: web.Request) -> web.Response:
        """{"deltas_per_s": N, "touch_pct": P}: book churn at N deltas/s across the open
        markets (0 stops), P % of its orders joining the best bid or ask (default 0: all deep;
        sim/churn.py)."""
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            body = await self._json(request)
            self.sim.churn.set_rate(
                _whole(body.get("deltas_per_s"), "deltas_per_s"),
                _whole(body.get("touch_pct", 0), "touch_pct"),
            )
        except (ConfigError, ValueError) as exc:
            return _error(400, str(exc))
        return json_response(
            {"deltas_per_s": self.sim.churn.rate, "touch_pct": self.sim.churn.touch_pct}
        )

    async def add_key(self, request: web.Request) -> web.Response:
        """Register ``{"key_id": ..., "public_key_pem": ...}`` (as a file in --api-keys would)."""
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            body = await self._json(request)
            key_id, pem = body.get("key_id"), body.get("public_key_pem")
            if not isinstance(key_id, str) or not key_id or not isinstance(pem, str):
                raise ConfigError("need key_id and public_key_pem strings")
            self.sim.register_key(key_id, pem.encode())
        except ConfigError as exc:
            return _error(400, str(exc))
        return json_response({"key_id": key_id})

    async def exchange_action(self, request: web.Request) -> web.Response:
        """pause {in_s: 0, for_s, kind: trading|exchange, scheduled: true} | resume.

        A scheduled pause is published in ``GET /exchange/schedule`` as a maintenance window
        from now on; an unscheduled one is an incident nobody announced."""
        if (denied := self._guard(request)) is not None:
            return denied
        now, calendar = self.sim.clock_ms(), self.sim.calendar
        try:
            body = await self._json(request)
            action = request.match_info["action"]
            if action == "pause":
                window = calendar.pause(
                    now,
                    float(body.get("in_s", 0)),
                    float(body.get("for_s", 0)),
                    str(body.get("kind", "trading")),
                    bool(body.get("scheduled", True)),
                )
                answer: dict[str, Any] = {"start_ms": window.start_ms, "end_ms": window.end_ms}
            elif action == "resume":
                answer = {"ended": calendar.resume(now)}
            else:
                return _error(404, f"unknown action {action!r}")
        except (ConfigError, ValueError, TypeError) as exc:
            return _error(400, str(exc))
        self.sim.follow_calendar()
        return json_response({**answer, **calendar.status_json(now)})

    async def event_fees(self, request: web.Request) -> web.Response:
        """{fee_type, fee_multiplier}: the event's fee override changes now, and is announced
        (``event_fee_update`` on the lifecycle channel), as Kalshi does."""
        if (denied := self._guard(request)) is not None:
            return denied
        event_ticker = request.match_info["event_ticker"]
        try:
            body = await self._json(request)
            changed = lifecycle.override_event_fees(
                self.sim.exchange,
                event_ticker,
                body.get("fee_type"),
                body.get("fee_multiplier"),
                self.sim.clock_ms(),
            )
        except EngineError as exc:
            return _error(exc.status, exc.message)
        except (ConfigError, ValueError, TypeError) as exc:
            return _error(400, str(exc))
        finally:
            self.sim.flush()
        return json_response({"event_ticker": event_ticker, "markets": changed})

    async def series_fee_change(self, request: web.Request) -> web.Response:
        """{fee_type, fee_multiplier, in_s}: a series' fee change, announced now and applied
        ``in_s`` seconds later (``GET /series/fee_changes`` lists it)."""
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            body = await self._json(request)
            at_ms = self.sim.clock_ms() + int(float(body.get("in_s", 0)) * 1000)
            change = lifecycle.schedule_series_fee_change(
                self.sim.exchange,
                request.match_info["series_ticker"],
                body.get("fee_type"),
                body.get("fee_multiplier", 1),
                at_ms,
            )
        except EngineError as exc:
            return _error(exc.status, exc.message)
        except (ConfigError, ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return json_response(wire.fee_change_json(change))

    async def fair(self, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]
        if ticker not in self.sim.exchange.markets:
            return _error(404, "no such market")
        return json_response(
            {"ticker": ticker, "fair_probability": self.sim.world.fair_value(ticker)}
        )

    async def market_action(self, request: web.Request) -> web.Response:
        """pause | resume | close | determine {result} | settle | close_date {close_ts|close_in_s}
        | one_sided {side, for_s}."""
        if (denied := self._guard(request)) is not None:
            return denied
        ticker, action = request.match_info["ticker"], request.match_info["action"]
        ex, now = self.sim.exchange, self.sim.clock_ms()
        try:
            body = await self._json(request)
            if action == "pause":
                lifecycle.pause(ex, ticker, now)
            elif action == "resume":
                lifecycle.resume(ex, ticker, now)
            elif action == "close":
                lifecycle.close_now(ex, ticker, now)
            elif action == "determine":
                result = body.get("result") or self.sim.world.resolve(ticker)
                self.sim.world._determined.add(ticker)
                lifecycle.determine(ex, ticker, str(result), now)
            elif action == "settle":
                lifecycle.settle(ex, ticker, now)
            elif action == "one_sided":  # {side: bid|ask, for_s}: the makers leave that side
                agents = self.sim.world.agents
                if agents is None or ticker not in agents.flows:
                    raise ConfigError("this market has no background makers")
                side = BookSide(str(body.get("side", "")))
                until = now + int(float(body.get("for_s", 0)) * 1000)
                agents.collapse(ticker, side, until, now)
            elif action == "close_date":
                if "close_ts" in body:
                    close_ms = int(body["close_ts"]) * 1000
                elif "close_in_s" in body:
                    close_ms = now + int(float(body["close_in_s"]) * 1000)
                else:
                    raise ConfigError("close_date needs close_ts (Unix s) or close_in_s")
                lifecycle.set_close_time(ex, ticker, close_ms, now)
            else:
                return _error(404, f"unknown action {action!r}")
        except EngineError as exc:
            return _error(exc.status, exc.message + (f": {exc.details}" if exc.details else ""))
        except (ConfigError, ValueError, TypeError) as exc:
            return _error(400, str(exc))
        finally:
            self.sim.flush()
        market = ex.markets[ticker]
        return json_response(
            {"ticker": ticker, "status": market.status.value, "result": market.result}
        )


def _whole(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, was {value!r}")
    return value
