"""supervisord's control socket (whoever can write to it can stop or start the bot) is owner
only while a stack runs, and the processes' logs are not world-readable (``umask=077``).

supervisord is started with the repository's supervisord.conf (in a copy beside a link to the
virtualenv, as every test stack does) and an environment pointing nowhere: the processes need not
come up for the socket to be checked."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from cli.devstack import REPO, LocalStack, StackConfig
from tests.support.procs import wait_for


def test_control_socket_is_owner_only_and_logs_private(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(base_dir=tmp_path / "stack"))
    (stack.var_dir / "log").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DORA_")}
    env["DORA_REDIS_URL"] = "redis://127.0.0.1:9/0"
    started = subprocess.run(
        [str(REPO / ".venv/bin/supervisord"), "-c", str(stack.conf_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 0, started.stderr
    sock = stack.var_dir / "supervisor.sock"
    try:
        wait_for(sock.exists, 10, "the supervisord socket")
        mode = stat.S_IMODE(sock.stat().st_mode)
        assert mode & 0o077 == 0, f"socket mode {oct(mode)}: group/other may use it"
        assert mode == 0o700, oct(mode)
        # the processes' logs (supervisord opens its own log before it applies the umask)
        log = stack.var_dir / "log" / "persister.log"
        wait_for(log.exists, 10, "persister.log")
        assert stat.S_IMODE(log.stat().st_mode) & 0o077 == 0, oct(log.stat().st_mode)
    finally:
        subprocess.run(
            [str(REPO / ".venv/bin/supervisorctl"), "-c", str(stack.conf_path), "shutdown"],
            env=env,
            capture_output=True,
            timeout=60,
        )
        pid_file = stack.var_dir / "supervisord.pid"
        wait_for(lambda: not pid_file.exists(), 40, "supervisord to stop")
