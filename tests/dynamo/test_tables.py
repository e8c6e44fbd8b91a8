from common.dynamo.tables import TableNames, create_tables, make_client
from tests.support.moto import Backend


def test_create_makes_the_four_tables_of_the_plan_once(dynamo_backend: Backend) -> None:
    client = make_client(dynamo_backend.settings())
    names = TableNames.from_prefix("dora_")
    report = create_tables(client, names)
    assert report[:4] == [(name, "created") for name in names.all()]
    assert report[4] == ("dora_decision_log", "ttl enabled")
    expected = {
        "dora_market_config": [("market_id", "HASH")],
        "dora_state": [("key", "HASH")],
        "dora_trade_log": [("date", "HASH"), ("sk", "RANGE")],
        "dora_decision_log": [("date", "HASH"), ("timestamp", "RANGE")],
    }
    for name, schema in expected.items():
        table = client.describe_table(TableName=name)["Table"]
        assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == schema
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName="dora_decision_log")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
    again = create_tables(client, names)
    assert again == [
        *((name, "exists") for name in names.all()),
        ("dora_decision_log", "ttl exists"),
    ]


def test_the_prefix_names_the_tables(dynamo_backend: Backend) -> None:
    client = make_client(dynamo_backend.settings(table_prefix="test_"))
    create_tables(client, TableNames.from_prefix("test_"))
    assert sorted(client.list_tables()["TableNames"]) == [
        "test_decision_log",
        "test_market_config",
        "test_state",
        "test_trade_log",
    ]
