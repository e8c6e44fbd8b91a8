import subprocess
import sys

import pytest

from cli.devstack import StackError
from cli.main import CliError, error_line, main
from tests.support.procs import REPO


def test_help_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and "dora" in proc.stdout


def test_unknown_command_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "frobnicate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "frobnicate" in proc.stderr


def test_no_command_prints_help_and_exits_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--bogus"], "dora: unrecognized arguments: --bogus"),
        (["sim", "--markets", "x"], "dora sim: argument --markets: invalid int value: 'x'"),
        (["config", "set"], "dora config set: the following arguments are required: KEY=VALUE"),
    ],
)
def test_a_bad_argument_names_dora_once(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_an_error_line_carries_the_prefix_once() -> None:
    assert error_line(CliError("market KXA has no config")) == "dora: market KXA has no config"
    failed = StackError("dora status failed: no Redis")
    assert error_line(failed) == "dora status failed: no Redis"
