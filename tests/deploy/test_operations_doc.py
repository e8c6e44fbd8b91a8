"""docs/operations.md mentions only commands, processes, keys and files that exist."""

from __future__ import annotations

import re
import shlex

import botocore.session
import pytest

from cli.main import CliError, build_parser
from common.keys import SERVICES, STREAMS, Keys
from tests.deploy.support import DEPLOY, REPO

DOC = REPO / "docs" / "operations.md"
TOPICS = (
    "Deploy",
    "Configure",
    "Start and stop",
    "Inspect",
    "Halt and resume",
    "Restart one process",
    "Recover from a crash",
    "Rotate keys",
)
SUPERVISORCTL_ACTIONS = {"status", "start", "stop", "restart", "tail", "signal", "pid"}


def _command_lines() -> list[list[str]]:
    """Every command in a code block, and every `dora …` in inline code, as argv."""
    text = DOC.read_text()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("# or: ")
            if line and not line.startswith("#"):
                lines.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [span for span in re.findall(r"`([^`]+)`", prose) if span.startswith("dora ")]
    argvs = []
    for line in lines:
        if "…" in line:
            continue  # a placeholder in prose
        argv = shlex.split(line, comments=True)
        if argv:
            argvs.append(argv)
    return argvs


def _by_tool(tool: str) -> list[list[str]]:
    return [argv[1:] for argv in _command_lines() if argv[0] == tool]


def test_every_topic_of_the_issue_is_there() -> None:
    headings = re.findall(r"^## (.+)$", DOC.read_text(), re.M)
    for topic in TOPICS:
        assert topic in headings


def test_dora_commands_parse() -> None:
    commands = _by_tool("dora")
    assert len(commands) >= 10
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except CliError as exc:
            pytest.fail(f"'dora {' '.join(argv)}' does not parse: {exc}")


def test_the_halt_contract_is_shown() -> None:
    assert ["publish", "dora:control", "halt"] in _by_tool("dora-redis-cli")
    assert any(argv[0] == "halt" for argv in _by_tool("dora"))
    assert ["resume", "--reason", "checked"] in _by_tool("dora")


def test_supervisorctl_commands_name_real_processes() -> None:
    commands = _by_tool("dora-supervisorctl")
    assert ["status"] in commands and ["restart", "executor"] in commands
    for argv in commands:
        assert argv[0] in SUPERVISORCTL_ACTIONS, argv
        names = [a for a in argv[1:] if not a.startswith("-")]
        assert set(names) <= set(SERVICES), argv


def _key_patterns() -> list[re.Pattern[str]]:
    return [p for keys in (Keys("dora:"), Keys("dora:", cluster=True)) for p in _patterns(keys)]


def _patterns(keys: Keys) -> list[re.Pattern[str]]:
    names = [
        keys.book("T"),
        keys.market("T"),
        keys.pos("T"),
        keys.orders("T"),
        keys.targets("T"),
        keys.cfg_global,
        keys.cfg_market("T"),
        keys.cfg_markets,
        keys.cfg_invalid,
        keys.persister_lag,
        keys.risk,
        keys.hb("T"),
        keys.control,
        keys.fill_ids,
        keys.fills_meta,
        keys.restored,
        keys.positions_synced,
        keys.persister_parked,
        *(keys.stream(s) for s in STREAMS),
    ]
    return [re.compile(re.escape(n).replace("T", r"[A-Za-z0-9*_-]+") + "$") for n in names]


def test_redis_keys_are_in_the_schema() -> None:
    patterns = _key_patterns()
    commands = _by_tool("dora-redis-cli")
    assert len(commands) >= 10
    for argv in commands:
        for arg in argv:
            if arg.startswith("dora:"):
                assert any(p.match(arg) for p in patterns), f"{arg} is not a key of common/keys.py"
    heartbeats = [a for argv in commands for a in argv if a.startswith("dora:hb:")]
    assert {h.rsplit(":", 1)[1] for h in heartbeats} <= {*SERVICES, "*"}


def test_systemctl_is_used_on_the_dora_unit() -> None:
    for argv in _command_lines():
        if argv[:2] == ["sudo", "systemctl"]:
            assert argv[3] in {"dora", "redis6", "redis-server"}, argv


def _pascal(kebab: str) -> str:
    return "".join(word.title() for word in kebab.split("-"))


def test_aws_cli_commands_exist() -> None:
    session = botocore.session.get_session()
    commands = _by_tool("aws")
    assert len(commands) >= 4
    for argv in commands:
        service, operation = argv[0], argv[1]
        if (service, operation) == ("cloudformation", "deploy"):
            continue  # an AWS CLI command of its own, not an API operation
        model = session.get_service_model(service)
        assert _pascal(operation) in model.operation_names, argv
        members = model.operation_model(_pascal(operation)).input_shape.members
        for flag in (a for a in argv[2:] if a.startswith("--")):
            assert _pascal(flag[2:]) in members, f"{flag} of aws {service} {operation}"


def test_files_it_names_exist() -> None:
    text = DOC.read_text()
    for path in set(re.findall(r"`((?:deploy|docs)/[A-Za-z0-9_./-]+)`", text)):
        assert (REPO / path).exists(), path
    assert (DEPLOY / "bin" / "dora-supervisorctl").exists()
    assert (DEPLOY / "bin" / "dora-redis-cli").exists()
