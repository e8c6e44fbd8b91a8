"""Headless chromium for the dashboard's tests, benchmark and screenshot.

Debian's ``chromium`` and ``chromium-driver`` packages (``make test`` installs them as root):
selenium is handed the driver's path, so it never downloads a browser or a driver of its own.
Each browser gets a fresh profile directory, removed when it quits.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def missing() -> str | None:
    """Why a browser cannot be started here, or None."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return (
            "chromium and chromium-driver are not installed: 'make test' installs them as root, "
            "or run 'sudo apt-get install -y chromium chromium-driver'"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


@contextmanager
def chromium(width: int = 1500, height: int = 1100) -> Iterator[Any]:
    """A headless chromium under selenium, quit (and its profile removed) on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dora-chromium-")
    options = webdriver.ChromeOptions()
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.binary_location = str(shutil.which("chromium"))
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(shutil.which("chromedriver"))), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
