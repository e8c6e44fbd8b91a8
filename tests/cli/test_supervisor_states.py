"""``cli.supervisor_states``: process states over supervisord's control socket."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from cli.supervisor_states import SupervisorStates, server_url, stop_order
from tests.support.procs import REPO

CONF = """
[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

[program:sleeper]
command={python} -c "import time; time.sleep(60)"
startsecs=0

[program:starter]
command={python} -c "import time; time.sleep(60)"
startsecs=30

[group:pair]
programs=starter
"""


def test_states_are_asked_over_the_socket_and_named_as_supervisorctl_names_them(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(CONF.format(python=sys.executable))
    assert server_url(conf) == f"unix://{tmp_path}/supervisor.sock"
    asker = SupervisorStates(conf)
    assert asker.states() == {}  # nothing listens yet
    subprocess.run([str(REPO / ".venv/bin/supervisord"), "-c", str(conf)], check=True, timeout=30)
    try:
        deadline = time.monotonic() + 20
        states = asker.states()
        while states.get("sleeper") != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
            states = asker.states()
        assert states == {"sleeper": "RUNNING", "pair:starter": "STARTING"}
        listed = subprocess.run(
            [str(REPO / ".venv/bin/supervisorctl"), "-c", str(conf), "status"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert {line.split()[0] for line in listed.splitlines()} == set(states)
    finally:
        subprocess.run(
            [str(REPO / ".venv/bin/supervisorctl"), "-c", str(conf), "shutdown"],
            capture_output=True,
            timeout=30,
        )
    deadline = time.monotonic() + 20
    while asker.states() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert asker.states() == {}  # gone


def test_the_stop_order_is_supervisord_s_the_highest_priority_first(tmp_path: Path) -> None:
    """A stack stops its programs itself in supervisord's shutdown order (the persister last)
    before the shutdown: supervisord's own took 7-8 s a stack."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        CONF.replace("{python}", sys.executable)
        + "\n[program:persister]\ncommand=true\npriority=10\n"
        + "[program:executor]\ncommand=true\npriority=40\n"
        + "[program:web]\ncommand=true\npriority=50\n"
        + "[program:risk]\ncommand=true\npriority=15\n"
    )
    order = stop_order(conf)
    assert order.index("web") < order.index("executor") < order.index("risk")
    assert order[-1] == "persister"
    assert set(order[:2]) == {"sleeper", "pair:starter"}  # no priority (999): first; a group's
