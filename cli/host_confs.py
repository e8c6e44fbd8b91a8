"""The supervisord configs of a deployment past one box (DESIGN.md §7, docs/operations.md).

``supervisord.conf`` runs all seven processes on one host. Past one box a *core* host runs
marketdata, fills, risk, persister and the dashboard (``supervisord-core.conf``), and each *shard*
host runs one strategy and one executor (``supervisord-shard.conf``, with ``DORA_SHARD_INDEX``).
Both are made from ``supervisord.conf`` by dropping programs, so the three never drift apart:
``python -m cli.host_confs`` rewrites them, and a test checks the committed ones are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARD_PROCESSES = ("strategy", "executor")  # what a shard host runs
ROLES = ("core", "shard")
HEADER = (
    "; GENERATED from supervisord.conf by `python -m cli.host_confs` (do not edit): the {role} "
    "host's programs.\n; {what}\n\n"
)
WHAT = {
    "core": "marketdata, fills, risk, persister and web; strategy and executor run on the shard "
    "hosts.",
    "shard": "strategy and executor for one slice of the markets (DORA_SHARD_INDEX of "
    "DORA_SHARD_COUNT).",
}


def conf_sections(text: str) -> list[tuple[str, str]]:
    """A supervisord.conf split into (section header, its text with the comments before it)."""
    sections: list[tuple[str, str]] = []
    head, lines = "", list[str]()
    for line in text.splitlines(keepends=True):
        if line.startswith("[") and head:
            sections.append((head, "".join(lines)))
            head, lines = "", []
        if line.startswith("["):
            head = line.strip()
        lines.append(line)
    sections.append((head, "".join(lines)))
    return sections


def render(role: str, source: Path = REPO / "supervisord.conf") -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, was {role!r}")
    shard_programs = {f"[program:{p}]" for p in SHARD_PROCESSES}
    kept = [
        text
        for head, text in conf_sections(source.read_text())
        if head  # the file's own header comment is replaced by ours
        and (
            head not in shard_programs
            if role == "core"
            else not head.startswith("[program:") or head in shard_programs
        )
    ]
    return HEADER.format(role=role, what=WHAT[role]) + "".join(kept)


def path_of(role: str) -> Path:
    return REPO / f"supervisord-{role}.conf"


def main() -> int:
    for role in ROLES:
        path_of(role).write_text(render(role))
        print(f"wrote {path_of(role)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
