"""Entry point of the ``dora`` command (DESIGN.md §8).

Each subcommand lives in its own module under ``cli`` with:

- ``HELP``: one line for ``dora --help``
- ``configure(parser)``: adds its arguments (and sub-subcommands)
- ``run(args) -> int``: does the work and returns the exit code

A subcommand whose module is not there yet is simply not listed. Bad input raises ``CliError``,
which becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

from common.errors import DoraError

# (command, module) in the order ``dora --help`` shows them
COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "cli.demo"),
    ("sim", "cli.sim"),
    ("status", "cli.status"),
    ("halt", "cli.halt"),
    ("resume", "cli.resume"),
    ("cancel-all", "cli.cancel_all"),
    ("config", "cli.config"),
    ("markets", "cli.markets"),
    ("tables", "cli.tables"),
    ("backtest", "cli.backtest"),
    ("service", "cli.service"),
)


class CliError(DoraError):
    """Bad input to a command: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus the message; one line is what an operator needs.
        raise CliError(f"{self.prog}: {message}")


def _available() -> list[tuple[str, ModuleType]]:
    found = []
    for name, module_name in COMMANDS:
        if importlib.util.find_spec(module_name) is None:
            continue
        found.append((name, importlib.import_module(module_name)))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dora", description="dora: a market maker for Kalshi event contracts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _available():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def error_line(exc: BaseException) -> str:
    """The one stderr line of an error, naming dora once: a message that already starts with its
    command (argparse's ``dora sim: ...``, ``dora status failed: ...``) is shown as it is."""
    text = str(exc)
    return text if text.startswith(("dora:", "dora ")) else f"dora: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "_run", None) is None:
            parser.print_help()
            return 2
        code: int = args._run(args)
        return code
    except DoraError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
