"""The dashboard's HTTP surface (aiohttp): the page, its assets, the live view and the controls.

| route | does |
|---|---|
| ``GET /`` (``?token=``) | the page; a right token starts a session and redirects to ``/`` |
| ``POST /login``, ``POST /logout`` | start (form field ``token``) or end the session |
| ``GET /static/*`` | the page's script and styles, served by dora itself (no CDN) |
| ``GET /api/session`` | whether this browser may act, and its CSRF token |
| ``GET /api/events`` | server-sent events: ``full`` on connect, then a ``delta`` per tick |
| ``GET /api/view`` | the current full view as JSON (what ``full`` carries) |
| ``GET /api/history/{ticker}`` | one market's position and PnL over time |
| ``POST /api/...`` | the controls (``services/web/controls.py``), behind ``guard`` |
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web

from common.commands import GLOBAL_KEYS, MARKET_KEYS
from services.web import controls
from services.web.auth import CSRF_HEADER, SESSION_COOKIE, cross_site_reason, host_allowed
from services.web.state import WebState

STATIC = Path(__file__).resolve().parent / "static"
STATE = web.AppKey("state", WebState)
KEEPALIVE_S = 15.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@web.middleware
async def protect(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse names other than loopback when bound to it (DNS rebinding); add the security
    headers to every answer."""
    state = request.app[STATE]
    if not host_allowed(request.host, state.settings.web_host):
        return web.Response(status=421, text="this dashboard answers only to 127.0.0.1\n")
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 404s and the like get the headers too
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)  # the page says it has none; pages of refusals ask anyway


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _session_id(request: web.Request) -> str | None:
    return request.app[STATE].auth.session_id(request.cookies.get(SESSION_COOKIE))


def guard(
    handler: Callable[[WebState, web.Request], Awaitable[web.Response]],
) -> Handler:
    """A control: a session, its CSRF token and a same-origin request, or nothing happens."""

    async def checked(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        refused = cross_site_reason(request.headers, request.host)
        if refused is not None:
            state.log.warning("control_refused", path=request.path, reason=refused)
            return controls.answer(403, error=refused)
        session = _session_id(request)
        if session is None:
            return controls.answer(401, error="read-only: give the dashboard token to act")
        if not state.auth.csrf_matches(session, request.headers.get(CSRF_HEADER)):
            state.log.warning("control_refused", path=request.path, reason="bad CSRF token")
            return controls.answer(403, error="missing or wrong CSRF token; reload the page")
        response = await controls.run_control(handler, state, request)
        state.reread_config = True
        state.hub.wake.set()  # show its effect without waiting for the next tick
        return response

    return checked


async def _session_for(request: web.Request, token: str, via: str) -> web.Response:
    """Back to the page: with a new session cookie when ``token`` is right; a wrong one costs
    half a second (no fast guessing) and says so."""
    state = request.app[STATE]
    if not state.auth.token_matches(token):
        await asyncio.sleep(0.5)
        return _see_other("/?login=failed")
    response = _see_other("/")
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(
        SESSION_COOKIE,
        state.auth.new_session(),
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/",
    )
    state.log.info("session_started", via=via, remote=request.remote)
    return response


async def index(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token")
    if token is not None:  # the token leaves the address bar (and the history) at once
        return await _session_for(request, token, "url")
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def login(request: web.Request) -> web.StreamResponse:
    refused = cross_site_reason(request.headers, request.host)
    if refused is not None:
        return web.Response(status=403, text=refused + "\n")
    form = await request.post()
    return await _session_for(request, str(form.get("token", "")), "form")


async def logout(request: web.Request) -> web.StreamResponse:
    refused = cross_site_reason(request.headers, request.host)
    if refused is not None:
        return web.Response(status=403, text=refused + "\n")
    response = _see_other("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def session(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    session_id = _session_id(request)
    return web.json_response(
        {
            "authenticated": session_id is not None,
            "csrf": state.auth.csrf_token(session_id) if session_id else None,
            "controls_configured": state.auth.enabled,
            "market_fields": MARKET_KEYS,
            "global_fields": GLOBAL_KEYS,
        }
    )


async def view(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[STATE].full(), dumps=_dumps)


def _dumps(data: object) -> str:
    return orjson.dumps(data).decode()


async def history(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return web.json_response(state.markets.to_json(request.match_info["ticker"]), dumps=_dumps)


async def events(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a proxy in front must not hold the stream back
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 1000\n\n")
    queue = state.hub.subscribe(state.full_message() if state.full_message else None)
    try:
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if message is None:
                break
            await response.write(message)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        state.hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def make_app(state: WebState) -> web.Application:
    app = web.Application(middlewares=[protect], client_max_size=64 * 1024)
    app[STATE] = state
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static/", STATIC, append_version=False)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/view", view)
    app.router.add_get("/api/history/{ticker}", history)
    app.router.add_post("/api/halt", guard(controls.halt))
    app.router.add_post("/api/resume", guard(controls.resume))
    app.router.add_post("/api/cancel-all", guard(controls.cancel_all))
    app.router.add_post("/api/markets/{ticker}/enable", guard(controls.enable_market))
    app.router.add_post("/api/markets/{ticker}/disable", guard(controls.disable_market))
    app.router.add_post("/api/config", guard(controls.set_config))
    return app
