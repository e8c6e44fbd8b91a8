"""The breach dump: the first time an event passes its limit, the exchange's and dora's views of
it are written beside the run, per market."""

from __future__ import annotations

import json
from pathlib import Path

from common.numbers import MONEY_SCALE
from sim.chaos import limits as lim
from sim.chaos.breach import BreachDump
from tests.chaos.test_limits import acct


def test_the_first_breach_of_an_event_is_written_once_with_each_market(tmp_path: Path) -> None:
    event = lim.EventInfo("EV", False, ("A", "B"))
    seen: list[str] = []

    def snapshot(e: lim.EventInfo) -> dict[str, object]:
        seen.append(e.event_ticker)
        return {"parts": {"A": {"pn": [3 * MONEY_SCALE, 1, 1]}}}

    dump = BreachDump([event], lambda ms: 5 * MONEY_SCALE, snapshot, tmp_path)
    dump(acct({"A": ("10.00", "3.0000")}), 1)  # $3 of $5: nothing
    assert not list(tmp_path.iterdir())
    over = acct({"A": ("10.00", "3.0000")}, [("B", "bid", "0.4000", "6.00")])  # $3 + $2.40
    dump(over, 2)
    dump(over, 3)
    assert seen == ["EV"]  # once per event
    record = json.loads((tmp_path / "breach-EV.json").read_text())
    assert record["loss"] == 540 * MONEY_SCALE // 100 and record["limit"] == 5 * MONEY_SCALE
    first, second = record["exchange"]
    assert first["worst"] == 3 * MONEY_SCALE and set(first["markets"]) == {"A"}
    assert second["markets"]["B"]["if_no"] == 240 * MONEY_SCALE // 100
    assert record["dora"]["parts"]["A"]["pn"][0] == 3 * MONEY_SCALE
