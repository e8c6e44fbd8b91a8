"""What lands on the server: the shell scripts, the systemd unit, supervisord.conf, the
CloudWatch agent config and the env file (every setting in it valid, no key material)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest

from common.keys import SERVICES
from common.settings import Settings, load_settings
from tests.deploy.support import DEPLOY, REPO, SECRET_ARN, load_template

SCRIPTS = sorted([*DEPLOY.glob("**/*.sh"), *(DEPLOY / "bin").iterdir()])
SETTING_NAMES = {"DORA_" + f.upper() for f in Settings.__dataclass_fields__}
# Variables of the bootstrap only (not settings of the processes)
DEPLOY_ONLY = {
    "DORA_HOST_ROLE",
    "DORA_REPO_URL",
    "DORA_REPO_REF",
    "DORA_LOG_GROUP",
    "DORA_PYTHON",
    "DORA_REDIS_SERVICE",
    "DORA_REDIS_CONF",
    "DORA_REDIS_CLI",
    "DORA_START",
    "DORA_HOME",
    "DORA_ENV_FILE",
}
# Settings the monitoring code reads (common/metrics.py), not in Settings at the time of writing
METRICS_SETTINGS = {"DORA_METRICS_ENABLED", "DORA_CLOUDWATCH_ENDPOINT"}


def _interpreter(path: Path) -> str:
    return "sh" if path.read_text().startswith("#!/bin/sh") else "bash"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_script_parses(script: Path) -> None:
    result = subprocess.run(
        [_interpreter(script), "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


def test_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(
        ["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_the_template_user_data_parses() -> None:
    resources = load_template()["Resources"]
    instance = resources["Instance"]["Properties"]
    shard = resources["ShardLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    for user_data in (instance["UserData"], shard["UserData"]):
        sub = user_data["Fn::Base64"]["Fn::Sub"]
        script = sub[0] if isinstance(sub, list) else sub  # [text, {its variables}]
        text = re.sub(r"\$\{[A-Za-z:]+\}", "x", script)
        result = subprocess.run(
            ["bash", "-n"], input=text, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "/opt/dora/deploy/user-data/amazon-linux-2023.sh" in script


def test_bootstrap_variables_are_known_settings() -> None:
    """A misspelt DORA_* in a script would be silently ignored by the processes."""
    texts = [p.read_text() for p in SCRIPTS]
    texts.append(str(load_template()["Resources"]["Instance"]["Properties"]["UserData"]))
    used = {v for t in texts for v in re.findall(r"\bDORA_[A-Z0-9_]+", t)}
    unknown = used - SETTING_NAMES - DEPLOY_ONLY - METRICS_SETTINGS
    assert not unknown, f"not a setting: {sorted(unknown)}"


# ---- systemd + supervisord --------------------------------------------------------------------


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "dora.service")
    return unit


def _supervisord() -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    conf.read(REPO / "supervisord.conf")
    return conf


def test_systemd_unit_has_what_it_needs() -> None:
    service = _unit()["Service"]
    assert service["Type"] == "simple"
    assert service["User"] == "dora" and service["Group"] == "dora"
    assert service["WorkingDirectory"] == "/opt/dora"
    assert service["EnvironmentFile"] == "/etc/dora/dora.env"
    assert service["ExecStart"] == (
        "/opt/dora/.venv/bin/supervisord -c /opt/dora/supervisord.conf -n"
    )
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"  # SIGTERM to supervisord only: it orders the stop
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"
    assert _unit()["Unit"]["StartLimitIntervalSec"] == "0"


def test_stop_timeout_covers_every_process_draining() -> None:
    """supervisord stops the programs one priority group after another: the worst case is the
    sum of their stopwaitsecs."""
    conf = _supervisord()
    programs = [s for s in conf.sections() if s.startswith("program:")]
    worst_s = sum(int(conf[p]["stopwaitsecs"]) for p in programs)
    assert int(_unit()["Service"]["TimeoutStopSec"]) > worst_s


def test_the_unit_lets_supervisord_write_what_it_writes() -> None:
    service = _unit()["Service"]
    assert service["ProtectSystem"] == "strict"
    writable = service["ReadWritePaths"].split()
    assert writable == ["/opt/dora/var"]
    conf = _supervisord()
    paths = [conf["unix_http_server"]["file"], conf["supervisord"]["logfile"]]
    paths += [conf["supervisord"]["pidfile"], conf["supervisord"]["childlogdir"]]
    paths += [conf[s]["stdout_logfile"] for s in conf.sections() if s.startswith("program:")]
    for path in paths:
        assert path.startswith("%(here)s/var/"), path


def test_supervisord_runs_the_six_processes_without_settings() -> None:
    conf = _supervisord()
    programs = {s.removeprefix("program:") for s in conf.sections() if s.startswith("program:")}
    assert programs == set(SERVICES)
    text = (REPO / "supervisord.conf").read_text()
    assert not re.search(r"^\s*environment\s*=", text, re.M)  # everything from the environment
    assert "DORA_" not in text.replace("(DORA_*", "")


def test_systemd_analyze_verify() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(DEPLOY / "systemd" / "dora.service")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # On a machine without /opt/dora it says the ExecStart is not executable: that is expected.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if re.search(r"Unknown|Failed to parse|Invalid|Missing", line)
    ]
    assert not problems, problems


# ---- logs ---------------------------------------------------------------------------------------


def test_cloudwatch_agent_ships_every_process_log() -> None:
    config = json.loads((DEPLOY / "cloudwatch-agent.json").read_text())
    entries = config["logs"]["logs_collected"]["files"]["collect_list"]
    shipped = {e["file_path"] for e in entries}
    conf = _supervisord()
    logs = {
        conf[s]["stdout_logfile"].replace("%(here)s", "/opt/dora")
        for s in conf.sections()
        if s.startswith("program:")
    }
    assert logs <= shipped
    assert shipped - logs == {"/opt/dora/var/log/supervisord.log"}
    assert {e["log_group_name"] for e in entries} == {"__DORA_LOG_GROUP__"}
    assert "__DORA_LOG_GROUP__" in (DEPLOY / "install.sh").read_text()


# ---- the env file -------------------------------------------------------------------------------


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert re.fullmatch(r"[A-Za-z0-9_./:@+=,%-]*", value), line  # systemd and sh alike
            env[name] = value
    return env


def _check_env(env: dict[str, str]) -> Settings:
    assert set(env) <= SETTING_NAMES | METRICS_SETTINGS | {"AWS_DEFAULT_REGION"}
    for name in env:
        assert "PRIVATE_KEY" not in name or name.endswith(("_SECRET_ID", "_SSM_PARAM")), name
    settings = load_settings(env, read_file=False)
    settings.require_kalshi_credentials()
    return settings


def test_env_example_is_valid_and_holds_no_key() -> None:
    text = (DEPLOY / "dora.env.example").read_text()
    assert "BEGIN" not in text
    settings = _check_env(_parse_env(text))
    assert settings.key_source == "kalshi_private_key_secret_id"
    assert settings.dynamodb_endpoint == ""  # AWS


def test_install_env_renders_a_valid_env_file() -> None:
    environ = {
        "PATH": os.environ["PATH"],
        "DORA_KALSHI_ENV": "prod",
        "DORA_KALSHI_KEY_ID": "0b5e0a8c-1111-2222-3333-444455556666",
        "DORA_KALSHI_PRIVATE_KEY_SECRET_ID": SECRET_ARN,
        "DORA_AWS_REGION": "us-east-1",
        "DORA_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:dora-alerts",
        "DORA_RATE_TIER": "advanced",
    }
    result = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "env"],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    env = _parse_env(result.stdout)
    settings = _check_env(env)
    assert settings.kalshi_env == "prod" and settings.rate_tier == "advanced"
    assert settings.sns_topic_arn.endswith(":dora-alerts")
    assert settings.redis_url == "redis://default:GENERATED@127.0.0.1:6379/0"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"


@pytest.mark.parametrize(
    "bad",
    [
        {"DORA_KALSHI_ENV": "sim"},
        {"DORA_KALSHI_PRIVATE_KEY_SECRET_ID": "x", "DORA_KALSHI_PRIVATE_KEY_SSM_PARAM": "/y"},
        {"DORA_KALSHI_KEY_ID": "has space"},
    ],
)
def test_install_env_refuses_bad_settings(bad: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "env"],
        env={"PATH": os.environ["PATH"], **bad},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "ERROR" in result.stderr


def test_both_user_data_scripts_carry_the_same_settings_block() -> None:
    """Each user-data script must stand alone (it runs before /opt/dora exists), so the settings
    block an operator fills in is written in both; this keeps the two from drifting apart."""

    def settings_block(name: str) -> list[str]:
        lines = (DEPLOY / "user-data" / name).read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("# ---- settings"))
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("# ----"))
        return lines[start : end + 1]

    amazon = settings_block("amazon-linux-2023.sh")
    assert len(amazon) > 10
    assert amazon == settings_block("ubuntu-22.04.sh")


# ---- past one box: core and shard hosts ----------------------------------------------------------


def test_the_role_configs_are_made_from_supervisord_conf() -> None:
    """supervisord-core.conf and supervisord-shard.conf are supervisord.conf minus programs
    (``python -m cli.host_confs``); the committed ones must be current."""
    from cli.host_confs import ROLES, path_of, render

    for role in ROLES:
        assert path_of(role).read_text() == render(role), f"run: python -m cli.host_confs ({role})"
    core = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    core.read_string(render("core"))
    shard = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    shard.read_string(render("shard"))
    programs = {s.removeprefix("program:") for s in core.sections() if s.startswith("program:")}
    assert programs == {"persister", "risk", "marketdata", "fills", "web"}
    programs = {s.removeprefix("program:") for s in shard.sections() if s.startswith("program:")}
    assert programs == {"strategy", "executor"}
    assert core["unix_http_server"]["file"] == _supervisord()["unix_http_server"]["file"]


def test_install_env_for_a_shard_host() -> None:
    base = {
        "PATH": os.environ["PATH"],
        "DORA_KALSHI_KEY_ID": "k",
        "DORA_KALSHI_PRIVATE_KEY_SECRET_ID": SECRET_ARN,
        "DORA_REDIS_URL": "rediss://clustercfg.dora.example.cache.amazonaws.com:6379/0",
        "DORA_REDIS_CLUSTER": "true",
        "DORA_SHARD_COUNT": "2",
        "DORA_HOST_ROLE": "shard",
    }
    run = partial(
        subprocess.run, ["bash", str(DEPLOY / "install.sh"), "env"], capture_output=True, text=True
    )
    refused = run(env=base, check=False)
    assert refused.returncode != 0 and "DORA_SHARD_INDEX" in refused.stderr
    settings = _check_env(_parse_env(run(env={**base, "DORA_SHARD_INDEX": "1"}, check=True).stdout))
    assert settings.redis_cluster and (settings.shard_index, settings.shard_count) == (1, 2)
    local = run(env={**base, "DORA_SHARD_INDEX": "1", "DORA_REDIS_URL": ""}, check=False)
    assert local.returncode != 0 and "shared DORA_REDIS_URL" in local.stderr
