import orjson
import pytest

from cli.main import main
from tests.support import moto
from tests.support.moto import Backend

dynamo_backend = moto.dynamo_backend  # the fixtures this module uses
moto_server = moto.moto_server


@pytest.fixture
def env(dynamo_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    for name, value in dynamo_backend.env.items():
        monkeypatch.setenv(name, value)
    dynamo_backend.create_tables()
    return dynamo_backend


def test_enable_list_disable(env: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["markets", "list"]) == 0
    assert "no markets" in capsys.readouterr().out
    assert main(["markets", "enable", "KXA"]) == 0
    assert "market KXA created and enabled (version 1)" in capsys.readouterr().out
    assert main(["config", "set", "--market", "KXB", "quote_size=2"]) == 0
    assert main(["markets", "disable", "KXA"]) == 0
    assert main(["markets", "enable", "KXB"]) == 0
    out = capsys.readouterr().out
    assert "market KXA disabled (version 2)" in out and "market KXB enabled (version 2)" in out
    assert main(["markets", "list"]) == 0
    out = capsys.readouterr().out
    assert "2 markets, 1 enabled" in out and "KXA" in out
    assert main(["markets", "list", "--json"]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [(m["market_id"], m["enabled"], m["version"]) for m in listed] == [
        ("KXA", False, 2),
        ("KXB", True, 2),
    ]
    assert listed[1]["quote_size"] == "2.00"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["markets", "disable", "KXNONE"], "market KXNONE has no config"),
        (["markets", "enable", "KX A"], "market_id must be a market ticker"),
        (["markets", "enable"], "required"),
        (["markets", "pause", "KXA"], "invalid choice"),
        (["markets"], "ACTION"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    env: Backend, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert env.dynamo().config.scan_markets() == []
