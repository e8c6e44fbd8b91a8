from typing import Any

import pytest

import bench.run


def test_the_floors_relays_lead_sessions_of_their_own_as_doras_processes_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, Any]] = []

    class Relay:
        def __init__(self, args: list[str], **kwargs: Any) -> None:
            seen.append(kwargs)

        def terminate(self) -> None: ...

        def wait(self, timeout: float) -> int:
            return 0

    monkeypatch.setattr(bench.run.subprocess, "Popen", Relay)
    monkeypatch.setattr(bench.run, "run_loop", lambda coro, uvloop: coro.close() or [])
    assert bench.run.floor("redis://unused", 0.1, 50, uvloop=False) == []
    assert len(seen) == 3 and all(kw.get("start_new_session") for kw in seen)
