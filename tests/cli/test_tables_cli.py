import pytest

from cli.main import main
from tests.support import moto
from tests.support.moto import Backend
from tests.support.procs import free_port

dynamo_backend = moto.dynamo_backend  # the fixtures this module uses
moto_server = moto.moto_server


@pytest.fixture
def env(dynamo_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    for name, value in dynamo_backend.env.items():
        monkeypatch.setenv(name, value)
    return dynamo_backend


def test_tables_create_is_idempotent(env: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tables", "create"]) == 0
    out = capsys.readouterr().out
    for table in ("market_config", "state", "trade_log", "decision_log"):
        assert f"created      dora_{table}" in out
    assert main(["tables", "create"]) == 0
    out = capsys.readouterr().out
    assert "created" not in out and out.count("exists") == 5
    names = env.dynamo().client.list_tables()["TableNames"]
    assert sorted(names) == [
        "dora_decision_log",
        "dora_market_config",
        "dora_state",
        "dora_trade_log",
    ]


def test_tables_uses_the_prefix(env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DORA_TABLE_PREFIX", "paper_")
    assert main(["tables", "create"]) == 0
    assert "paper_state" in env.dynamo().client.list_tables()["TableNames"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["tables"], "ACTION"), (["tables", "drop"], "invalid choice")],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_unreachable_dynamodb_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DORA_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert main(["tables", "create"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not create the DynamoDB tables" in err[0]
