"""What travels between processes: stream entries and operator control messages.

A stream entry is ``type`` plus the payload as one JSON field ``data`` (readable with
``redis-cli XRANGE``; the payloads are built in ``common.events``). A control message on
``dora:control`` is plain ``halt`` / ``resume`` / ``reload`` or JSON ``{"cmd": ..., "reason": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from common.errors import SchemaError

CONTROL_COMMANDS = ("halt", "resume", "reload")


# ---- stream events -------------------------------------------------------------------------


def encode_event(kind: str, payload: Mapping[str, Any]) -> dict[str, bytes]:
    """A stream entry: ``type`` plus the payload as one JSON field (readable with XRANGE)."""
    return {"type": kind.encode(), "data": orjson.dumps(payload)}


def decode_event(fields: Mapping[Any, Any]) -> tuple[str, dict[str, Any]]:
    kind = fields.get("type", fields.get(b"type"))
    data = fields.get("data", fields.get(b"data"))
    if kind is None or data is None:
        raise SchemaError(f"stream entry lacks type/data: {dict(fields)!r}")
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise SchemaError(f"stream entry data is not JSON: {data!r}") from None
    if not isinstance(payload, dict):
        raise SchemaError(f"stream entry data must be an object, was {payload!r}")
    return (kind.decode() if isinstance(kind, bytes) else str(kind)), payload


# ---- control channel -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlCommand:
    cmd: str
    reason: str = ""
    source: str = ""


def parse_control(message: str | bytes) -> ControlCommand:
    """``halt`` / ``resume`` / ``reload``, plain or as JSON ``{"cmd": ..., "reason": ...}``."""
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    text = text.strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise SchemaError(f"control message is not valid JSON: {text[:200]!r}") from None
        if not isinstance(data, dict):
            raise SchemaError(f"control message must be a JSON object, was {text[:200]!r}")
        cmd, reason, source = data.get("cmd"), data.get("reason", ""), data.get("source", "")
    else:
        cmd, _, rest = text.partition(" ")
        reason, source = rest.strip(), ""
    if not isinstance(cmd, str) or cmd.lower() not in CONTROL_COMMANDS:
        raise SchemaError(
            f"control command must be one of {', '.join(CONTROL_COMMANDS)}, was {cmd!r}"
        )
    return ControlCommand(cmd.lower(), str(reason or "")[:500], str(source or "")[:100])


def encode_control(cmd: str, reason: str = "", source: str = "") -> str:
    return orjson.dumps({"cmd": cmd, "reason": reason, "source": source}).decode()
