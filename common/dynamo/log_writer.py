"""Batched, idempotent writes of log rows: BatchWriteItem, 25 at a time, unprocessed items retried.

Rows are keyed deterministically (rows.py), so writing a row twice leaves one row. Within one
request DynamoDB rejects two puts of the same key, so each batch keeps the last row per key.
Unprocessed items (throttling) are retried with backoff a few times; if some remain the write
raises and the caller keeps the events unacknowledged and tries again later. A batch DynamoDB
refuses as invalid is retried row by row, and a single row it refuses is reported, not retried
forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from common.dynamo.codec import to_attrs
from common.dynamo.tables import TableNames, describe, error_code, key_of
from common.errors import StorageError

BATCH_LIMIT = 25
UNPROCESSED_RETRIES = 5
RETRY_BASE_S = 0.05
RETRY_MAX_S = 1.0


@dataclass
class WriteReport:
    written: int = 0
    requests: int = 0
    retries: int = 0
    rejected: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)


class LogWriter:
    def __init__(
        self, client: Any, names: TableNames, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.client = client
        self.names = names
        self.sleep = sleep

    def write(self, rows: Iterable[tuple[str, Mapping[str, Any]]]) -> WriteReport:
        """Write ``(table, row)`` pairs; returns once DynamoDB has accepted every one."""
        report = WriteReport()
        unique: dict[tuple[str, ...], tuple[str, Mapping[str, Any]]] = {}
        for table, row in rows:
            hash_key, range_key = key_of(self.names, table)
            key = (table, str(row[hash_key]), str(row[range_key]) if range_key else "")
            unique.pop(key, None)  # keep the last one, in arrival order
            unique[key] = (table, row)
        pending = list(unique.values())
        for start in range(0, len(pending), BATCH_LIMIT):
            self._write_batch(pending[start : start + BATCH_LIMIT], report)
        return report

    def _write_batch(
        self, batch: Sequence[tuple[str, Mapping[str, Any]]], report: WriteReport
    ) -> None:
        request: dict[str, list[dict[str, Any]]] = {}
        for table, row in batch:
            request.setdefault(table, []).append({"PutRequest": {"Item": to_attrs(row)}})
        attempt = 0
        while request:
            report.requests += 1
            try:
                response = self.client.batch_write_item(RequestItems=request)
            except ClientError as exc:
                if error_code(exc) == "ValidationException":
                    self._write_one_by_one(request, report)
                    return
                raise
            unprocessed: dict[str, list[dict[str, Any]]] = response.get("UnprocessedItems") or {}
            report.written += sum(len(v) for v in request.values()) - sum(
                len(v) for v in unprocessed.values()
            )
            request = unprocessed
            if request:
                attempt += 1
                if attempt > UNPROCESSED_RETRIES:
                    left = sum(len(v) for v in request.values())
                    raise StorageError(f"DynamoDB left {left} items unprocessed (throttled)")
                report.retries += 1
                self.sleep(min(RETRY_BASE_S * 2**attempt, RETRY_MAX_S))

    def _write_one_by_one(
        self, request: Mapping[str, list[dict[str, Any]]], report: WriteReport
    ) -> None:
        for table, puts in request.items():
            for put in puts:
                item = put["PutRequest"]["Item"]
                try:
                    self.client.put_item(TableName=table, Item=item)
                    report.written += 1
                except ClientError as exc:
                    if error_code(exc) != "ValidationException":
                        raise
                    report.rejected.append((table, item, describe(exc)))
