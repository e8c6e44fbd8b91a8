"""Where the steering repository's ``shared/kalshi`` (Kalshi's specs, read in place, never copied
into this repository) is: beside the repository (``../shared``, as in the lead's tree), or beside
a folder above it (a helper's worktree under ``wt/``)."""

from __future__ import annotations

from pathlib import Path


def shared_kalshi() -> Path:
    root = Path(__file__).resolve().parents[2]
    for folder in (root, *root.parents):
        candidate = folder.parent / "shared" / "kalshi"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "kalshi"
