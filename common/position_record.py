"""A market's books of record: its position, a version, and the fills applied to it lately.

``fills`` changes a position only together with its ``PositionRecord`` (``dora:pos:{ticker}``)
and a fills-stream event carrying the whole record after the change, in one MULTI. The persister
stores the newest record of each market as ``positions#{ticker}`` (DESIGN.md §4) from those
events, so what DynamoDB holds of a market is always one consistent state: a position and the ids
of the fills it already counts. After Redis loses its data, restore puts both back and the REST
backfill skips exactly the fills the position already has: none applied twice, none lost.

- ``version`` goes up by one with every change: a stored record is replaced only by a newer one
  (a replayed or reclaimed older event never steps back).
- ``recent_fills`` are the (fill id, exchange ms) of the fills the backfill could still list
  again after a restore: those newer than the backfill cursor minus ``RECENT_MARGIN_MS``. Older
  ones are dropped (the backfill never goes back that far).
- ``settled_ms``/``settlement_id``: the market settled and the position was closed out; the
  record stays as a tombstone (its ids still guard against a replay) and leaves the live set.

``CLOSED_TICKER`` names the record that accumulates the realized PnL and fees of the markets that
settled and left the live set, so every sum over ``dora:pos:*`` (daily PnL) still counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from common.domain import Position
from common.errors import SchemaError

CLOSED_TICKER = "_closed"  # no Kalshi ticker starts with "_"
RECENT_MARGIN_MS = 15_000  # recent fills kept this far behind the backfill cursor (3x its overlap)
MAX_RECENT_FILLS = 2_000  # a bound on one record's size while the backfill cannot run


@dataclass(frozen=True, slots=True)
class PositionRecord:
    position: Position
    version: int = 0
    recent_fills: tuple[tuple[str, int], ...] = ()  # (fill id, exchange ms), oldest first
    settled_ms: int = 0
    settlement_id: str = ""

    @property
    def ticker(self) -> str:
        return self.position.ticker

    @property
    def fill_ids(self) -> list[str]:
        ids = [fill_id for fill_id, _ in self.recent_fills]
        return [*ids, self.settlement_id] if self.settlement_id else ids

    def changed(
        self, position: Position, *, fill: tuple[str, int] | None = None, keep_from_ms: int = 0
    ) -> PositionRecord:
        """The next version holding ``position`` (and ``fill`` among the recent fills, which
        keep only those at or after ``keep_from_ms``)."""
        recent = [f for f in self.recent_fills if f[1] >= keep_from_ms]
        if fill is not None:
            recent.append(fill)
        return replace(
            self,
            position=position,
            version=self.version + 1,
            recent_fills=tuple(recent[-MAX_RECENT_FILLS:]),
        )

    # ---- Redis hash (dora:pos:{ticker}) -----------------------------------------------------

    def redis_fields(self) -> dict[str, str]:
        p = self.position
        return {
            "position": str(p.position),
            "cost": str(p.cost),
            "realized_pnl": str(p.realized_pnl),
            "fees": str(p.fees),
            "last_fill_ms": str(p.last_fill_ms),
            "version": str(self.version),
            "recent_fills": orjson.dumps([list(f) for f in self.recent_fills]).decode(),
        }

    @classmethod
    def from_redis(cls, ticker: str, fields: Mapping[str, Any]) -> PositionRecord:
        """A ``dora:pos:{ticker}`` hash (an empty one: a flat record at version 0)."""
        data: dict[str, Any] = {k: fields.get(k) for k in _POSITION_FIELDS}
        data["version"] = fields.get("version")
        raw = fields.get("recent_fills")
        try:
            data["recent_fills"] = orjson.loads(raw) if raw else []
        except orjson.JSONDecodeError:
            raise SchemaError(f"{ticker}.recent_fills is not JSON, was {raw!r}") from None
        return cls.from_payload(ticker, data)

    # ---- stream events and DynamoDB (plain JSON values) -------------------------------------

    def payload(self) -> dict[str, Any]:
        p = self.position
        out: dict[str, Any] = {
            "ticker": p.ticker,
            "position": p.position,
            "cost": p.cost,
            "realized_pnl": p.realized_pnl,
            "fees": p.fees,
            "last_fill_ms": p.last_fill_ms,
            "version": self.version,
            "recent_fills": [list(f) for f in self.recent_fills],
        }
        if self.settled_ms:
            out["settled_ms"] = self.settled_ms
            out["settlement_id"] = self.settlement_id
        return out

    @classmethod
    def from_payload(cls, ticker: str, data: Mapping[str, Any]) -> PositionRecord:
        """A record from an event payload (or a Redis hash's fields); ``SchemaError`` if any
        part does not have its shape."""
        numbers = {name: _whole(data.get(name), f"{ticker}.{name}") for name in _POSITION_FIELDS}
        recent = data.get("recent_fills") or []
        if not isinstance(recent, list):
            raise SchemaError(f"{ticker}.recent_fills must be a list, was {recent!r}")
        fills: list[tuple[str, int]] = []
        for item in recent:
            if (
                not isinstance(item, list | tuple)
                or len(item) != 2
                or not isinstance(item[0], str)
                or not item[0]
            ):
                raise SchemaError(f"{ticker}.recent_fills holds {item!r}, not [id, ms]")
            fills.append((item[0], _whole(item[1], f"{ticker}.recent_fills ms")))
        settlement_id = data.get("settlement_id") or ""
        if not isinstance(settlement_id, str):
            raise SchemaError(f"{ticker}.settlement_id must be a string, was {settlement_id!r}")
        return cls(
            Position(ticker, **numbers),
            version=_whole(data.get("version"), f"{ticker}.version"),
            recent_fills=tuple(fills),
            settled_ms=_whole(data.get("settled_ms"), f"{ticker}.settled_ms"),
            settlement_id=settlement_id,
        )


_POSITION_FIELDS = ("position", "cost", "realized_pnl", "fees", "last_fill_ms")


def _whole(value: object, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise SchemaError(f"{what} must be an integer, was {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise SchemaError(f"{what} must be an integer, was {value!r}")
