"""The dashboard's controls: the same code paths as ``dora halt``, ``dora resume``,
``dora cancel-all``, ``dora markets enable|disable`` and ``dora config set``.

Each handler runs only after ``app.guard`` has checked the session, the CSRF token and the
origin. Bad input is answered 400 with the same one-line message the command prints, and
nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from common.commands import cancel_all_resting, change_config, set_market_enabled
from common.config import utc_now_iso
from common.dynamo.config_store import check_ticker
from common.errors import ConfigError, StorageError
from common.halt import ResumeRefused, lift_halt, set_halt
from services.web.state import WebState

REASON_MAX_CHARS = 500


def answer(status: int, **body: Any) -> web.Response:
    return web.json_response({"ok": status < 400, **body}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ConfigError("the request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError("the request body must be a JSON object")
    return data


def _reason(data: dict[str, Any], default: str) -> str:
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise ConfigError(f"reason must be text, was {reason!r}")
    return reason.strip()[:REASON_MAX_CHARS] or default


async def halt(state: WebState, request: web.Request) -> web.Response:
    reason = _reason(await _body(request), "operator halt (dashboard)")
    halted = await set_halt(state.redis, state.keys, reason, state.clock.now_ms(), "web")
    state.log.warning(
        "control_halt",
        reason=reason,
        heard=halted.heard,
        replaced=halted.note(),
        remote=request.remote,
    )
    return answer(200, message=f"halted: {reason} ({halted.told()})")


async def resume(state: WebState, request: web.Request) -> web.Response:
    reason = _reason(await _body(request), "operator resume (dashboard)")
    try:
        resumed = await lift_halt(state.redis, state.keys, reason, state.clock.now_ms(), "web")
    except ResumeRefused as exc:  # dora:risk corrupted or deleted, no record of the day: halted
        state.log.warning("control_resume_refused", reason=str(exc), remote=request.remote)
        return answer(409, error=str(exc))
    state.log.warning(
        "control_resume",
        reason=reason,
        heard=resumed.heard,
        replaced=resumed.note(),
        remote=request.remote,
    )
    return answer(200, message=f"resumed ({resumed.told()})")


async def cancel_all(state: WebState, request: web.Request) -> web.Response:
    market = (await _body(request)).get("market") or None
    if market is not None:
        check_ticker(market)
    from common.kalshi.errors import ExchangeError

    try:
        result = await cancel_all_resting(state.settings, market, redis=state.redis)
    except ExchangeError as exc:
        return answer(502, error=f"the exchange refused: {exc}")
    except ConfigError as exc:
        return answer(503, error=f"cancel-all cannot reach the exchange: {exc}")
    state.log.warning(
        "control_cancel_all",
        market=market or "",
        left=result.left,
        unreadable=result.unreadable,
        remote=request.remote,
    )
    return answer(200 if result.clean else 502, message=result.message)


def _enabler(enabled: bool) -> Callable[[WebState, web.Request], Awaitable[web.Response]]:
    async def handle(state: WebState, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]
        db = await state.dynamo()
        write = await asyncio.to_thread(set_market_enabled, db, ticker, enabled, utc_now_iso())
        verb = "created and enabled" if write.created else ("enabled" if enabled else "disabled")
        state.log.warning("control_market", market=ticker, enabled=enabled, version=write.version)
        return answer(200, message=f"market {ticker} {verb} (version {write.version})")

    return handle


enable_market = _enabler(True)
disable_market = _enabler(False)


async def set_config(state: WebState, request: web.Request) -> web.Response:
    data = await _body(request)
    market = data.get("market") or None
    changes = data.get("changes")
    if market is not None and not isinstance(market, str):
        raise ConfigError(f"market must be a ticker, was {market!r}")
    if not isinstance(changes, dict):
        raise ConfigError("changes must be an object of field: value")
    for key, value in changes.items():
        if not isinstance(value, str | bool):
            raise ConfigError(f"{key} must be given as text, was {value!r}")
    db = await state.dynamo()
    change = await asyncio.to_thread(change_config, db, market, changes, utc_now_iso())
    shown = " ".join(f"{k}={change.item[k]}" for k in changes)
    verb = "created" if change.write.created else "updated"
    state.log.warning(
        "control_config", target=change.label, changes=shown, version=change.write.version
    )
    return answer(200, message=f"{change.label} {verb}: {shown} (version {change.write.version})")


async def run_control(
    handler: Callable[[WebState, web.Request], Awaitable[web.Response]],
    state: WebState,
    request: web.Request,
) -> web.Response:
    """Run a control, turning the errors an operator can cause into their one-line answer."""
    try:
        return await handler(state, request)
    except ConfigError as exc:
        return answer(400, error=str(exc))
    except StorageError as exc:
        return answer(503, error=str(exc))
