"""The simulator as a server: aiohttp for REST (``/trade-api/v2``) and WebSocket
(``/trade-api/ws/v2``) in one process and one event loop, plus the ``/_sim`` control API.

A middleware does what Kalshi's edge does before a handler runs: fault injection, request
signing, the token buckets and the error bodies; after every request the engine's events are
published to the WebSocket subscribers. A background task runs the flow agents and the market
clock (``World.step_to``) on the wall clock; another pings every socket every 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from common.numbers import MONEY_SCALE
from sim import wire
from sim.auth import AuthError, KeyRegistry, credentials_from
from sim.calendar import Calendar
from sim.control import ControlApi
from sim.errors import EngineError
from sim.faults import Faults
from sim.ratelimit import DEFAULT_TIER, RateLimiter, request_cost
from sim.rest import BODY, KEY_ID, RestApi, json_response
from sim.scenario import Scenario, load_scenario
from sim.state import SimState, wall_clock_ms
from sim.world import World

log = logging.getLogger("dora.sim")

REST_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
_SIGNED_PUBLIC = {f"{REST_PREFIX}/account/limits", f"{REST_PREFIX}/exchange/user_data_timestamp"}
AGENT_INTERVAL_S = 0.05
SIM_STATE = web.AppKey("sim", SimState)
PING_INTERVAL_S = 10.0
CALENDAR_INTERVAL_S = 0.1


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    n_markets: int = 10
    scenario: str | Scenario = "calm"
    api_keys_dir: Path | None = None
    rate_tier: str = DEFAULT_TIER
    balance_dollars: int = 10_000
    agents: bool = True
    latency_ms: int = 0
    error_5xx_rate: float = 0.0
    pause_schedule: str = "weekly"  # weekly | none | every:PERIOD_S:PAUSE_S[:FIRST_S]
    direct_members: bool = False  # non-direct members pay Kalshi's rounding fee


def build_state(config: SimConfig, registry: KeyRegistry | None = None) -> SimState:
    scenario = (
        load_scenario(config.scenario) if isinstance(config.scenario, str) else config.scenario
    )
    registry = registry or KeyRegistry()
    if config.api_keys_dir is not None:
        registry.load_dir(config.api_keys_dir)
    world = World(
        scenario,
        seed=config.seed,
        n_markets=config.n_markets,
        start_ms=wall_clock_ms(),
        collect_events=True,
        agents=config.agents,
    )
    faults = Faults(latency_ms=config.latency_ms, error_5xx_rate=config.error_5xx_rate)
    faults.rng.seed(config.seed)
    now = wall_clock_ms()
    return SimState(
        world=world,
        registry=registry,
        limiter=RateLimiter(config.rate_tier),
        faults=faults,
        balance_money=config.balance_dollars * MONEY_SCALE,
        calendar=Calendar.parse(config.pause_schedule, now),
        direct_members=config.direct_members,
    )


def _error(status: int, code: str, message: str, details: str = "") -> web.Response:
    return json_response(wire.error_body(code, message, details), status=status)


def build_app(sim: SimState) -> web.Application:
    rest = RestApi(sim)

    @web.middleware
    async def kalshi_edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await answer(request, handler)
        if request.path.startswith(REST_PREFIX):
            # the exchange's clock, as Kalshi's answers carry it (the simulator's may be virtual)
            response.headers["Date"] = formatdate(sim.clock_ms() / 1000, usegmt=True)
        return response

    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not path.startswith(REST_PREFIX):
            return await handler(request)
        stats = sim.stats
        stats["requests"] += 1
        faults = sim.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        now = sim.clock_ms()
        sim.follow_calendar()
        if faults.in_429_burst(now):
            stats["http_429"] += 1
            stats["http_429_injected"] += 1
            return json_response(wire.TOO_MANY_REQUESTS, status=429)
        if faults.inject_5xx():
            stats["http_5xx_injected"] += 1
            return _error(500, "internal_server_error", "internal server error", "injected fault")
        resource = request.match_info.route.resource
        if resource is None:
            return _error(404, "not_found", "not found", path)
        route = resource.canonical
        creds = credentials_from(request.headers)
        needs_auth = route.startswith(f"{REST_PREFIX}/portfolio") or route in _SIGNED_PUBLIC
        key_id: str | None = None
        if needs_auth or creds is not None:
            try:
                key_id = sim.registry.verify(creds, request.method, path, now)
            except AuthError as exc:
                stats["http_401"] += 1
                return _error(401, "authentication_error", "authentication error", exc.details)
            request[KEY_ID] = key_id
        body: object = {}
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return _error(400, "bad_request", "request body is not valid JSON")
        request[BODY] = body
        if key_id is not None:
            items = len(body.get("orders") or []) if isinstance(body, dict) else 1
            bucket, cost = request_cost(request.method, route[len(REST_PREFIX) :], items)
            if not sim.limiter.allow(key_id, bucket, cost, now / 1000):
                stats["http_429"] += 1
                return json_response(wire.TOO_MANY_REQUESTS, status=429)
        try:
            response: web.StreamResponse = await handler(request)
        except EngineError as exc:
            stats[f"http_{exc.status}"] += 1
            stats[f"refused_{exc.code}"] += 1  # e.g. refused_trading_paused: sent into a pause
            response = _error(exc.status, exc.code, exc.message, exc.details)
        except web.HTTPException as exc:
            response = _error(
                exc.status, "not_found" if exc.status == 404 else "bad_request", exc.reason
            )
        finally:
            sim.flush()
        return response

    async def websocket(request: web.Request) -> web.StreamResponse:
        sim.stats["ws_upgrades"] += 1
        try:
            key_id = sim.registry.verify(
                credentials_from(request.headers), "GET", WS_PATH, sim.clock_ms()
            )
        except AuthError as exc:
            sim.stats["http_401"] += 1
            return _error(401, "authentication_error", "authentication error", exc.details)
        sim.ensure_account(key_id)
        return await sim.hub.serve(request, key_id)

    app = web.Application(middlewares=[kalshi_edge], client_max_size=64 * 1024 * 1024)
    app.add_routes(rest.routes())
    app.add_routes([web.get(WS_PATH, websocket)])
    app.add_routes(ControlApi(sim).routes())
    app[SIM_STATE] = sim
    return app


async def _agent_loop(sim: SimState) -> None:
    while True:
        try:
            sim.step()
        except Exception:
            log.exception("agent step failed")
        await asyncio.sleep(AGENT_INTERVAL_S)


async def _calendar_loop(sim: SimState) -> None:
    """Pauses start and end on time (and drop the sockets) with or without the agents."""
    while True:
        await asyncio.sleep(CALENDAR_INTERVAL_S)
        try:
            sim.follow_calendar()
        except Exception:
            log.exception("calendar step failed")


async def _ping_loop(sim: SimState) -> None:
    while True:
        await asyncio.sleep(PING_INTERVAL_S)
        try:
            await sim.hub.ping_all()
        except Exception:
            log.exception("ping failed")


class RunningSim:
    """A started server: its URLs and state; ``await stop()`` to end it."""

    def __init__(self, sim: SimState, runner: web.AppRunner, host: str, port: int) -> None:
        self.sim = sim
        self.runner = runner
        self.host = host
        self.port = port
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}{REST_PREFIX}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in list(self.sim.hub.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        await self.runner.cleanup()


async def start(
    config: SimConfig, *, registry: KeyRegistry | None = None, run_agents_loop: bool = True
) -> RunningSim:
    sim = build_state(config, registry)
    app = build_app(sim)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    port = int(runner.addresses[0][1])
    running = RunningSim(sim, runner, config.host, port)
    if run_agents_loop:
        running._tasks.append(asyncio.create_task(_agent_loop(sim)))
    running._tasks.append(asyncio.create_task(_ping_loop(sim)))
    running._tasks.append(asyncio.create_task(_calendar_loop(sim)))
    return running
