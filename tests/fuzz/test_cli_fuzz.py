"""The ``dora`` command under fuzzed arguments: ``main(argv)`` returns 0, 1 or 2 and never lets
an exception out; a refusal (2) is one line on stderr.

Every endpoint points at a closed port (Redis, DynamoDB, the exchange), so commands that talk to
them fail fast and cleanly instead of touching anything. Three commands would start servers or
long runs if their arguments parsed (``demo``, ``sim``, ``backtest``): their argument parsing
is fuzzed the same way, with their ``run`` replaced by a stub.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main as cli_main

NOWHERE = {
    "DORA_REDIS_URL": "redis://127.0.0.1:9/0",
    "DORA_DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
    "DORA_KALSHI_ENV": "sim",
    "DORA_KALSHI_BASE_URL": "http://127.0.0.1:9/trade-api/v2",
    "DORA_KALSHI_KEY_ID": "fuzz",
    "DORA_KALSHI_PRIVATE_KEY_PATH": "/nonexistent/fuzz.pem",
    "AWS_ACCESS_KEY_ID": "fuzz",
    "AWS_SECRET_ACCESS_KEY": "fuzz",
}
STUBBED = ("cli.demo", "cli.sim", "cli.backtest")

WORDS = [
    *(name for name, _ in cli_main.COMMANDS),
    "show",
    "set",
    "list",
    "enable",
    "disable",
    "create",
    "keygen",
    "--json",
    "--watch",
    "--reason",
    "--market",
    "--markets",
    "--port",
    "--host",
    "--seed",
    "--hours",
    "--scenario",
    "--duration",
    "--headless",
    "--out",
    "--name",
    "--strategy",
    "--rate-tier",
    "--plot",
    "--api-keys",
    "-h",
    "--help",
    "--bogus",
    "quote_size=5",
    "enabled=false",
    "min_spread=0.02",
    "max_daily_loss=-1",
    "bogus=1",
    "=",
    "KX-1",
    "0",
    "-1",
    "99999999999999999999",
    "nan",
    "",
    " ",
    "\x00",
    "é",
    "--",
    "-",
]
ARG = st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
ARGV = st.one_of(
    st.lists(ARG, max_size=6),
    st.tuples(st.sampled_from([n for n, _ in cli_main.COMMANDS]), st.lists(ARG, max_size=5)).map(
        lambda t: [t[0], *t[1]]
    ),
)


@pytest.fixture(scope="module", autouse=True)
def nowhere() -> Iterator[None]:
    import importlib

    with pytest.MonkeyPatch.context() as mp:
        for name, value in NOWHERE.items():
            mp.setenv(name, value)
        for module_name in STUBBED:
            with contextlib.suppress(ImportError):
                mp.setattr(importlib.import_module(module_name), "run", lambda args: 0)
        yield


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli_main.main(argv)
        except SystemExit as exc:  # argparse's own --help
            assert exc.code == 0 and ({"-h", "--help"} & set(argv)), f"{argv}: exit {exc.code}"
            code = 0
    return code, err.getvalue()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=ARGV)
def test_fuzzed_arguments_exit_cleanly(argv: list[str]) -> None:
    code, err = run(argv)
    assert code in (0, 1, 2), f"{argv}: exit {code}"
    if code == 2 and err:
        echoed = sum(a.count("\n") for a in argv)  # an argument's own newlines, quoted back
        assert err.rstrip("\n").count("\n") <= echoed, f"{argv}: not one line: {err!r}"
        assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["halt", "--reason", "x"],
        ["resume"],
        ["cancel-all"],
        ["config", "show"],
        ["config", "set", "quote_size=-5"],
        ["markets", "enable", "KX"],
        ["tables", "create"],
        ["sim", "--port", "abc"],
        ["backtest", "--hours", "-"],
    ],
)
def test_commands_with_nowhere_to_go_refuse_in_one_line(argv: list[str]) -> None:
    code, err = run(argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
