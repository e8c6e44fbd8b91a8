"""Restart state in ``{prefix}state``: risk_state (with the durable halt), daily PnL snapshots.
Positions, one item per market, are in ``position_store``.

| key | attributes |
|---|---|
| ``risk_state`` | ``trading_halted``, ``halt_reason``, ``halted_ms``, ``resumed_ms``, ``daily_pnl`` ... ``last_fill_ms``, ``last_fill_timestamp`` |
| ``pnl#YYYY-MM-DD`` | that day's latest PnL snapshot, ``ts_ms`` (never replaced by an older one); once the day has rolled, its closing snapshot: ``closed_ms``, ``day_start_total``, ``day_end_total`` (never replaced by a running one) |

Money is stored in dollars, exact Decimals (see codec.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from common.clock import iso_from_ms
from common.domain import RiskState, halt_in_force, resumed_or_legacy
from common.dynamo.codec import (
    from_attrs,
    money_dollars,
    money_units,
    to_attrs,
    whole_number,
)
from common.dynamo.tables import PNL_KEY_PREFIX, STATE_RISK, TableNames, error_code
from common.errors import StorageError


@dataclass(frozen=True, slots=True)
class StoredRisk:
    risk: RiskState
    last_fill_ms: int


def risk_attrs(risk: RiskState, last_fill_ms: int) -> dict[str, Any]:
    return {
        "trading_halted": risk.halted,
        "halt_reason": risk.reason,
        "halted_ms": risk.halted_ms,
        "resumed_ms": risk.resumed_ms,
        "daily_pnl": money_dollars(risk.daily_pnl),
        "realized_pnl": money_dollars(risk.realized_pnl),
        "unrealized_pnl": money_dollars(risk.unrealized_pnl),
        "fees": money_dollars(risk.fees),
        "total_exposure": money_dollars(risk.total_exposure),
        "day": risk.day,
        "last_check_ms": risk.last_check_ms,
        "day_start_pnl": money_dollars(risk.day_start_pnl),
        "last_fill_ms": last_fill_ms,
        "last_fill_timestamp": iso_from_ms(last_fill_ms) if last_fill_ms else "",
    }


def risk_from_attrs(attrs: Mapping[str, Any]) -> StoredRisk:
    """The item as ``dora:risk`` reads (``decode_risk``): ``trading_halted`` false counts only
    with a resume after the halt (``halt_in_force``); an item without ``resumed_ms`` (stored before
    it existed) is read by its flag (``resumed_or_legacy``)."""
    halted = attrs.get("trading_halted", False)
    if not isinstance(halted, bool):
        raise StorageError(f"risk_state.trading_halted must be a bool, was {halted!r}")
    halted_ms = whole_number(attrs.get("halted_ms", 0), "risk_state.halted_ms")
    resumed = attrs.get("resumed_ms")
    resumed_ms = resumed_or_legacy(
        None if resumed is None else whole_number(resumed, "risk_state.resumed_ms"),
        halted,
        halted_ms,
    )
    risk = RiskState(
        halted=halt_in_force(halted, halted_ms, resumed_ms),
        reason=str(attrs.get("halt_reason") or ""),
        halted_ms=halted_ms,
        daily_pnl=money_units(attrs.get("daily_pnl", 0), "risk_state.daily_pnl"),
        realized_pnl=money_units(attrs.get("realized_pnl", 0), "risk_state.realized_pnl"),
        unrealized_pnl=money_units(attrs.get("unrealized_pnl", 0), "risk_state.unrealized_pnl"),
        fees=money_units(attrs.get("fees", 0), "risk_state.fees"),
        total_exposure=money_units(attrs.get("total_exposure", 0), "risk_state.total_exposure"),
        day=str(attrs.get("day") or ""),
        last_check_ms=whole_number(attrs.get("last_check_ms", 0), "risk_state.last_check_ms"),
        day_start_pnl=money_units(attrs.get("day_start_pnl", 0), "risk_state.day_start_pnl"),
        resumed_ms=resumed_ms,
    )
    return StoredRisk(risk, whole_number(attrs.get("last_fill_ms", 0), "risk_state.last_fill_ms"))


def pnl_snapshot_attrs(risk: RiskState, ts_ms: int) -> dict[str, Any]:
    return {
        "key": f"{PNL_KEY_PREFIX}{risk.day}",
        "day": risk.day,
        "ts_ms": ts_ms,
        "timestamp": iso_from_ms(ts_ms),
        "daily_pnl": money_dollars(risk.daily_pnl),
        "realized_pnl": money_dollars(risk.realized_pnl),
        "unrealized_pnl": money_dollars(risk.unrealized_pnl),
        "fees": money_dollars(risk.fees),
        "total_exposure": money_dollars(risk.total_exposure),
        "trading_halted": risk.halted,
        "halt_reason": risk.reason,
    }


def _drop_none(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        out[key] = _drop_none(value) if isinstance(value, Mapping) else value
    return out


class StateStore:
    def __init__(self, client: Any, names: TableNames) -> None:
        self.client = client
        self.names = names

    def _get(self, key: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.names.state, Key={"key": {"S": key}}, ConsistentRead=True
        )
        return from_attrs(response["Item"]) if "Item" in response else None

    def _put(self, item: Mapping[str, Any]) -> dict[str, Any]:
        attrs = to_attrs(_drop_none(item))
        self.client.put_item(TableName=self.names.state, Item=attrs)
        return attrs

    def put_risk(self, risk: RiskState, last_fill_ms: int, now_ms: int) -> None:
        self._put(
            {
                "key": STATE_RISK,
                **risk_attrs(risk, last_fill_ms),
                "updated_ms": now_ms,
                "updated_at": iso_from_ms(now_ms),
            }
        )

    def get_risk(self) -> StoredRisk | None:
        item = self._get(STATE_RISK)
        return risk_from_attrs(item) if item is not None else None

    def put_pnl_snapshot(self, risk: RiskState, ts_ms: int) -> bool:
        """Write the day's snapshot unless a newer one is there (so a replay never steps back)."""
        if not risk.day:
            raise StorageError("a PnL snapshot needs its day (YYYY-MM-DD)")
        try:
            self.client.put_item(
                TableName=self.names.state,
                Item=to_attrs(pnl_snapshot_attrs(risk, ts_ms)),
                ConditionExpression=(
                    "attribute_not_exists(#k) OR (#ts <= :ts AND attribute_not_exists(#closed))"
                ),
                ExpressionAttributeNames={"#k": "key", "#ts": "ts_ms", "#closed": "closed_ms"},
                ExpressionAttributeValues={":ts": {"N": str(ts_ms)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_day_closed(
        self, risk: RiskState, ts_ms: int, closed_ms: int, start_total: int, end_total: int
    ) -> None:
        """The day's closing snapshot (its last recorded state, sent at the roll): it replaces
        the running one, and no running one replaces it."""
        attrs = {
            **pnl_snapshot_attrs(risk, ts_ms),
            "closed_ms": closed_ms,
            "closed_at": iso_from_ms(closed_ms),
            "day_start_total": money_dollars(start_total),
            "day_end_total": money_dollars(end_total),
        }
        self.client.put_item(TableName=self.names.state, Item=to_attrs(attrs))

    def get_pnl_snapshot(self, day: str) -> dict[str, Any] | None:
        return self._get(f"{PNL_KEY_PREFIX}{day}")
