"""DynamoDB: the durable backing (DESIGN.md §4). Only the persister process and the operator
commands (``dora config|markets|tables``) use this package.

- ``tables``: names from the prefix, key schemas, idempotent creation, the client
- ``codec``: exact values in and out (never a float)
- ``config_store``: market and global config with conditional, versioned writes
- ``position_store``: one position item per market (with its recent fill ids), the backfill cursor
- ``state_store``: risk_state (the durable halt), daily PnL snapshots
- ``rows`` + ``log_writer``: trade and decision log rows, batched and idempotent
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.dynamo.config_store import ConfigStore
from common.dynamo.log_writer import LogWriter
from common.dynamo.position_store import PositionStore
from common.dynamo.state_store import StateStore
from common.dynamo.tables import TableNames, make_client
from common.settings import Settings


@dataclass(frozen=True, slots=True)
class Dynamo:
    """One client and the stores built on it (boto3 clients are thread-safe)."""

    client: Any
    names: TableNames
    config: ConfigStore
    state: StateStore
    positions: PositionStore
    logs: LogWriter

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> Dynamo:
        return cls.from_client(make_client(settings, **client_options), settings.table_prefix)

    @classmethod
    def from_client(cls, client: Any, table_prefix: str) -> Dynamo:
        names = TableNames.from_prefix(table_prefix)
        return cls(
            client=client,
            names=names,
            config=ConfigStore(client, names),
            state=StateStore(client, names),
            positions=PositionStore(client, names),
            logs=LogWriter(client, names),
        )
