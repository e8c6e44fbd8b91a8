"""One JSON log line per event, ready for CloudWatch Logs, with secrets scrubbed.

Use ``get_logger(service)`` and call ``log.info("order_placed", market=..., reason=...)``: the
first argument is the event name, keyword arguments become fields. Every registered secret value
and anything that looks like PEM key material is replaced with ``[REDACTED]`` before the line is
written, so a secret that slips into an exception message still never reaches a log.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import traceback
from typing import Any

import orjson

_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
REDACTED = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Make sure ``value`` (and each line of it, for PEM text) never appears in a log line."""
    if not value or len(value) < 8:
        return
    with _secrets_lock:
        _secrets.add(value)
        for line in value.splitlines():
            if len(line.strip()) >= 16:
                _secrets.add(line.strip())


def scrub(text: str) -> str:
    if "PRIVATE KEY" in text:
        text = _PEM.sub(REDACTED, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            line["traceback"] = "".join(traceback.format_exception(*record.exc_info))[-4000:]
        return scrub(orjson.dumps(line, default=str).decode())


class EventLogger:
    """A thin wrapper: ``log.info(event, **fields)``."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, exc_info=exc_info, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, False, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, False, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, False, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, False, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, True, fields)


def setup_logging(service: str, level: str = "info", stream: Any = None) -> EventLogger:
    """Route every ``dora`` logger to one JSON line per event on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger("dora")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    return get_logger(service)


def get_logger(name: str) -> EventLogger:
    return EventLogger(logging.getLogger(f"dora.{name}"))
