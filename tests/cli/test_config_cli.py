import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from cli.main import main
from common.dynamo.codec import to_attrs
from tests.support import moto
from tests.support.moto import Backend
from tests.support.procs import REPO

dynamo_backend = moto.dynamo_backend  # the fixtures this module uses
moto_server = moto.moto_server


@pytest.fixture
def env(dynamo_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    for name, value in dynamo_backend.env.items():
        monkeypatch.setenv(name, value)
    dynamo_backend.create_tables()
    return dynamo_backend


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_set_every_field_of_the_plan_and_show_it(
    env: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "config",
                "set",
                "max_total_exposure=500",
                "max_daily_loss=50.5",
                "loop_interval_ms=250",
                "trading_enabled=false",
            ]
        )
        == 0
    )
    assert "global config created" in capsys.readouterr().out
    assert (
        main(
            [
                "config",
                "set",
                "--market",
                "KXA-26",
                "enabled=true",
                "max_inventory_yes=40",
                "max_inventory_no=30",
                "min_spread=0.03",
                "quote_size=5",
                "inventory_skew_factor=0.25",
                "toxicity_score=0.1",
            ]
        )
        == 0
    )
    assert "market KXA-26 created" in capsys.readouterr().out
    assert main(["config", "set", "--market", "KXA-26", "quote_size=6"]) == 0
    assert "(version 2)" in capsys.readouterr().out

    assert main(["config", "show", "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["global"] == {
        "max_total_exposure": "500.00",
        "max_daily_loss": "50.50",
        "max_event_loss": "1000.00",  # the default
        "loop_interval_ms": "250",
        "trading_enabled": False,
        "updated_at": shown["global"]["updated_at"],
        "version": 1,
    }
    market = shown["markets"][0]
    assert market["market_id"] == "KXA-26" and market["version"] == 2
    assert market["quote_size"] == "6.00" and market["min_spread"] == "0.0300"
    assert market["inventory_skew_factor"] == "0.25" and market["toxicity_score"] == "0.1"
    assert market["updated_at"].endswith("Z") and shown["invalid"] == {}

    raw = env.dynamo().config.get_market("KXA-26")
    assert raw["min_spread"] == Decimal("0.03") and raw["enabled"] is True  # numbers, not floats

    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "max_daily_loss       50.50" in out and "KXA-26" in out and "0.0300" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "set", "max_daily_loss"], "expected KEY=VALUE, was 'max_daily_loss'"),
        (["config", "set", "colour=red"], "unknown global config field 'colour'"),
        (["config", "set", "quote_size=5"], "unknown global config field 'quote_size'"),
        (["config", "set", "max_daily_loss=-5"], "max_daily_loss must be > 0 dollars, was '-5'"),
        (["config", "set", "loop_interval_ms=5"], "loop_interval_ms must be between 10 and"),
        (["config", "set", "trading_enabled=maybe"], "trading_enabled must be true or false"),
        (["config", "set", "max_daily_loss=1", "max_daily_loss=2"], "given twice"),
        (["config", "set", "--market", "KXA", "min_spread=1.5"], "min_spread must be a dollar"),
        (["config", "set", "--market", "KXA", "quote_size=0"], "quote_size must be >= 0.01"),
        (["config", "set", "--market", "KXA", "quote_size=500"], "quote_size must be <="),
        (
            ["config", "set", "--market", "KXA", "toxicity_score=2"],
            "toxicity_score must be between",
        ),
        (["config", "set", "--market", "KXA", "max_inventory_yes=1.001"], "max_inventory_yes"),
        (["config", "set", "--market", "KXA", "updated_at=now"], "unknown market config field"),
        (["config", "set", "--market", "bad ticker", "enabled=1"], "market_id must be"),
        (["config", "set"], "required"),
        (["config"], "ACTION"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    env: Backend, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "set", "--market", "KXA", "quote_size=7"]) == 0
    before = env.dynamo().config.scan_markets(), env.dynamo().config.get_global()
    capsys.readouterr()
    assert main(argv) == 2
    assert message in one_error_line(capsys)
    assert (env.dynamo().config.scan_markets(), env.dynamo().config.get_global()) == before


def test_show_reports_invalid_items_without_failing(
    env: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    client = env.dynamo().client
    client.put_item(
        TableName="dora_market_config",
        Item=to_attrs({"market_id": "KXBAD", "quote_size": "lots", "version": 3}),
    )
    client.put_item(TableName="dora_state", Item=to_attrs({"key": "global_config", "x": 1}))
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "KXBAD" in out and "INVALID: quote_size must be a number of contracts" in out
    assert "INVALID: unknown global config field 'x'" in out
    assert main(["config", "show", "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert set(shown["invalid"]) == {"(global)", "KXBAD"}
    # fixing the bad field repairs the item; the unknown attribute is dropped
    assert main(["config", "set", "--market", "KXBAD", "quote_size=1"]) == 0
    assert "(version 4)" in capsys.readouterr().out
    assert main(["config", "set", "max_daily_loss=10"]) == 0
    assert "removed unknown attributes: x" in capsys.readouterr().out


def test_missing_tables_say_what_to_do(
    dynamo_backend: Backend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in dynamo_backend.env.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "show"]) == 2
    assert "run 'dora tables create'" in one_error_line(capsys)


def test_the_installed_command_against_a_moto_server(moto_server) -> None:  # type: ignore[no-untyped-def]
    moto_server.reset()
    env = {
        "DORA_DYNAMODB_ENDPOINT": moto_server.endpoint,
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }

    def dora(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert dora("tables", "create").returncode == 0
    proc = dora("config", "set", "--market", "KXA", "min_spread=2")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "min_spread" in proc.stderr and "'2'" in proc.stderr
    assert dora("config", "set", "--market", "KXA", "enabled=yes").returncode == 0
    assert "KXA" in dora("config", "show").stdout


def test_set_an_event_override_and_show_it(
    env: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "set", "max_event_loss=40"]) == 0
    assert main(["config", "set", "--event", "KXEV-26", "max_event_loss=12.5"]) == 0
    assert "event KXEV-26 created: max_event_loss=12.50 (version 1)" in capsys.readouterr().out
    assert main(["config", "set", "--event", "KXOTHER", "max_event_loss=3"]) == 0
    assert "(version 2)" in capsys.readouterr().out  # one item: both events in it
    stored = env.dynamo().config.get_events()
    assert stored is not None and stored["max_event_loss#KXEV-26"] == Decimal("12.50")
    assert main(["config", "show", "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["global"]["max_event_loss"] == "40.00"
    assert shown["events"]["events"] == {
        "KXEV-26": {"max_event_loss": "12.50"},
        "KXOTHER": {"max_event_loss": "3.00"},
    }
    assert main(["config", "show"]) == 0
    assert "KXEV-26" in capsys.readouterr().out
    for bad, why in (
        (["max_event_loss=-1"], "must be > 0"),
        (["quote_size=2"], "unknown event config field"),
    ):
        assert main(["config", "set", "--event", "KXEV-26", *bad]) == 2
        assert why in one_error_line(capsys)
    assert env.dynamo().config.get_events() == stored  # nothing written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["max_total_exposure=abc"], "max_total_exposure must be a dollar amount"),
        (["max_daily_loss=-1"], "max_daily_loss must be > 0 dollars"),
        (["--market", "KXA", "quote_size=lots"], "quote_size must be a number of contracts"),
        (["--market", "KXA", "enabled=maybe"], "enabled must be true or false"),
        (["--event", "EV-1", "max_event_loss=abc"], "max_event_loss must be a dollar amount"),
        (["--event", "EV-1", "max_event_loss=0"], "max_event_loss must be > 0 dollars"),
    ],
)
def test_a_bad_value_is_told_before_dynamodb_is_asked(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "validated first" (DESIGN.md §8): with DynamoDB unreachable the operator still hears what
    # is wrong with the value, not that the endpoint did not answer
    monkeypatch.setenv("DORA_DYNAMODB_ENDPOINT", "http://127.0.0.1:1")
    assert main(["config", "set", *argv]) == 2
    assert message in one_error_line(capsys)
