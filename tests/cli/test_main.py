import subprocess
import sys

from cli.main import main
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
