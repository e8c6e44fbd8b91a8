"""Hypothesis strategies for bad input: junk JSON values, and valid payloads mutated deep inside
(a field dropped, replaced by junk, or an unknown field added, at any depth)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

HUGE = st.sampled_from(
    [
        10**18,
        -(10**18),
        2**63,
        -(2**63) - 1,
        10**40,
        "9" * 40,
        "1e308",
        "-0.0000",
        "NaN",
        "Infinity",
    ]
)
UNKNOWN_ENUM = st.sampled_from(
    ["", "weird", "YES", "Bid", "cancelled_by_moon", "quadratic_v9", "\x00", "😀", "null"]
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    HUGE,
    UNKNOWN_ENUM,
)
JUNK: st.SearchStrategy[Any] = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def mutate(data: st.DataObject, valid: Any) -> Any:
    """``valid`` with one change somewhere inside it (or replaced as a whole)."""
    payload = copy.deepcopy(valid)
    path = data.draw(st.sampled_from(_paths(payload)), label="path")
    if not path:
        return data.draw(JUNK, label="whole")
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = data.draw(st.sampled_from(["drop", "replace", "replace", "add"]), label="action")
    if action == "drop":
        del parent[last]
    elif action == "replace":
        parent[last] = data.draw(JUNK, label="junk")
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=8), label="new key")] = data.draw(JUNK, label="junk")
    else:
        parent.append(data.draw(JUNK, label="junk"))
    return payload


class _Drawer:
    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def draw(self, strategy: st.SearchStrategy[Any], label: str = "") -> Any:
        return self._draw(strategy)


@st.composite
def mutated(draw: Any, valid: st.SearchStrategy[Any]) -> Any:
    """A strategy form of ``mutate``: one of ``valid``'s payloads with one change inside."""
    return mutate(_Drawer(draw), draw(valid))  # type: ignore[arg-type]
