import subprocess
from pathlib import Path

from cli.devstack import LocalStack, StackConfig
from tests.support.procs import REPO


def test_a_stacks_processes_import_this_checkouts_code(tmp_path: Path) -> None:
    """supervisord runs dora's processes in the stack's own directory (a copied conf): there
    ``-m services.x`` must still find this checkout's code, not the one the virtualenv's
    editable install names (another worktree's, when the tests run in a worktree)."""
    stack = LocalStack(StackConfig(base_dir=tmp_path / "stack"))
    stack.sim = {"rest_url": "http://127.0.0.1:1/trade-api/v2"}
    code = "import common.sched, services; print(common.sched.__file__)"
    out = subprocess.run(
        [str(stack.base / ".venv/bin/python"), "-c", code],
        cwd=stack.base,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert Path(out).resolve() == (REPO / "common" / "sched.py").resolve()
