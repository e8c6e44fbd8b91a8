"""The virtualenv with Kalshi's newest official SDK (``kalshi-python-async`` 3.34.0), which
needs Python >= 3.13: on 3.11 pip silently installs the old 3.2.0. ``make test`` (and this
module, when a test needs it) creates ``.venv-sdk`` once with the first Python >= 3.13 it finds
(``DORA_SDK_PYTHON``, ``python3.13`` or newer on the PATH, pyenv's versions) and reuses it
while the pinned version is unchanged. Without such a Python the tests that need it skip and
say why."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-sdk"
SDK = "kalshi-python-async==3.34.0"
STAMP = VENV / ".installed"
MINIMUM = (3, 13)


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_python() -> str | None:
    """A Python >= 3.13 on this machine, or None."""
    candidates = [os.environ.get("DORA_SDK_PYTHON", "")]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in range(20, 12, -1)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(glob.glob(str(pyenv / "3.*" / "bin" / "python3")), reverse=True)
    for python in filter(None, candidates):
        version = _version(python)
        if version is not None and version >= MINIMUM:
            return python
    return None


def sdk_python() -> tuple[str | None, str]:
    """(the SDK virtualenv's python, "") or (None, why there is none)."""
    python = VENV / "bin" / "python"
    if STAMP.exists() and STAMP.read_text().strip() == SDK and python.exists():
        return str(python), ""
    base = find_python()
    if base is None:
        return None, (
            f"no Python >= {MINIMUM[0]}.{MINIMUM[1]} on this machine ({SDK} needs it; on older "
            "Pythons pip installs its old 3.2.0): set DORA_SDK_PYTHON to one"
        )
    try:
        subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", SDK], check=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not set up {VENV.name} with {SDK}: {exc}"
    STAMP.write_text(SDK + "\n")
    return str(python), ""


if __name__ == "__main__":  # make test: set it up beside .venv
    found, why = sdk_python()
    print(found or f"skipped: {why}")
    sys.exit(0)
