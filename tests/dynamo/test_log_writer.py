from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.dynamo.log_writer import LogWriter
from common.dynamo.tables import TableNames
from common.errors import StorageError
from tests.support.moto import Backend

NAMES = TableNames.from_prefix("dora_")


def trade(i: int, size: str = "1") -> tuple[str, dict[str, Any]]:
    return NAMES.trade_log, {"date": "2026-01-01", "sk": f"t{i:04d}", "size": Decimal(size)}


def decision(i: int) -> tuple[str, dict[str, Any]]:
    return NAMES.decision_log, {"date": "2026-01-01", "timestamp": f"d{i:04d}", "inventory": i}


def count(client: Any, table: str) -> int:
    return int(client.scan(TableName=table, Select="COUNT")["Count"])


def test_rows_are_written_in_batches_once_per_key(dynamo_backend: Backend) -> None:
    dynamo_backend.create_tables()
    db = dynamo_backend.dynamo()
    rows = [trade(i) for i in range(40)] + [decision(i) for i in range(30)]
    rows += [trade(3, "9"), decision(5)]  # the same keys again, in one call
    report = db.logs.write(rows)
    assert report.written == 70 and report.requests == 3 and not report.rejected
    assert count(db.client, NAMES.trade_log) == 40 and count(db.client, NAMES.decision_log) == 30
    item = db.client.get_item(
        TableName=NAMES.trade_log, Key={"date": {"S": "2026-01-01"}, "sk": {"S": "t0003"}}
    )
    assert item["Item"]["size"] == {"N": "9"}  # the last one of a key wins
    db.logs.write(rows)  # a replay of everything
    assert count(db.client, NAMES.trade_log) == 40 and count(db.client, NAMES.decision_log) == 30


class Throttling:
    """A client that leaves the first item of a request unprocessed ``times`` times."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls: list[int] = []
        self.stored: list[dict[str, Any]] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        puts = [(t, p) for t, ps in RequestItems.items() for p in ps]
        self.calls.append(len(puts))
        if self.times > 0:
            self.times -= 1
            table, first = puts[0]
            self.stored.extend(p["PutRequest"]["Item"] for _, p in puts[1:])
            return {"UnprocessedItems": {table: [first]}}
        self.stored.extend(p["PutRequest"]["Item"] for _, p in puts)
        return {"UnprocessedItems": {}}


def test_unprocessed_items_are_retried_with_backoff() -> None:
    client = Throttling(times=3)
    sleeps: list[float] = []
    writer = LogWriter(client, NAMES, sleep=sleeps.append)
    report = writer.write([trade(i) for i in range(30)])
    assert client.calls == [25, 1, 1, 1, 5]
    assert report.written == 30 and report.retries == 3 and len(client.stored) == 30
    assert sleeps == sorted(sleeps) and sleeps[0] > 0


def test_items_left_unprocessed_too_long_fail_the_write() -> None:
    writer = LogWriter(Throttling(times=100), NAMES, sleep=lambda s: None)
    with pytest.raises(StorageError, match="unprocessed"):
        writer.write([trade(1)])


class Refusing:
    """Refuses a batch holding the row ``bad`` as invalid, and that row alone too."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    def _error(self) -> ClientError:
        return ClientError({"Error": {"Code": "ValidationException", "Message": "too big"}}, "x")

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        raise self._error()

    def put_item(self, TableName: str, Item: dict[str, Any]) -> None:
        if Item["sk"]["S"] == "bad":
            raise self._error()
        self.stored.append(Item["sk"]["S"])


def test_a_row_dynamodb_refuses_is_reported_and_the_others_written() -> None:
    client = Refusing()
    rows = [trade(1), (NAMES.trade_log, {"date": "2026-01-01", "sk": "bad"}), trade(2)]
    report = LogWriter(client, NAMES).write(rows)
    assert client.stored == ["t0001", "t0002"] and report.written == 2
    assert len(report.rejected) == 1 and "too big" in report.rejected[0][2]


def test_throttling_errors_propagate_for_the_caller_to_back_off(dynamo_backend: Backend) -> None:
    db = dynamo_backend.dynamo()  # no tables: every write fails
    with pytest.raises(ClientError):
        db.logs.write([trade(1)])
