"""The A/B script's arithmetic: knobs parsed by their default's type, one paired table row."""

from __future__ import annotations

import pytest

from bench.ab import key_of, parse_override, row


def test_knobs_take_their_defaults_type() -> None:
    assert parse_override("tox_touch_join=true") == ("tox_touch_join", True)
    assert parse_override("tox_touch_join=0") == ("tox_touch_join", False)
    assert parse_override("tox_touch_quiet_ms=30000") == ("tox_touch_quiet_ms", 30_000)
    with pytest.raises(ValueError):
        parse_override("tox_touch_join=yes")
    with pytest.raises(AttributeError):
        parse_override("no_such_knob=1")


def test_the_cache_key_ignores_the_knobs_order() -> None:
    a = key_of(("calm", 1, 0.5, "dora", (("a", 1), ("b", True))))
    b = key_of(("calm", 1, 0.5, "dora", (("b", True), ("a", 1))))
    assert a == b != key_of(("calm", 1, 0.5, "dora", ()))


def test_a_row_pairs_the_seeds() -> None:
    def runs(*nets: float) -> list[dict[str, float]]:
        return [{"net": n, "dd": 2 * n, "edge": n / 2} for n in nets]

    # with - without: 1, 2, 3, 4 (mean 2.5, sd 1.291, t(3) 3.182: +/- 2.05); with - naive: 0
    line = row(
        "calm",
        {"with": runs(2, 4, 6, 8), "without": runs(1, 2, 3, 4), "naive": runs(2, 4, 6, 8)},
    )
    assert line == (
        "| calm | 5.00 | 2.50 | 5.00 | +2.50 [+0.45, +4.55] | 4/4 "
        "| +0.00 [+0.00, +0.00] | 0/4 | 10.00/5.00/10.00 "
        "| +1.25 [+0.22, +2.28] | 4/4 | +0.00 [+0.00, +0.00] | 0/4 |"
    )


def test_a_row_without_edges_says_so() -> None:
    old = [{"net": 1.0, "dd": 0.0}, {"net": 2.0, "dd": 0.0}]
    line = row("calm", {"with": old, "without": old, "naive": old})
    assert line.endswith("| - | - | - | - |")
