from hypothesis import given
from hypothesis import strategies as st

from common.config import FACTOR_SCALE
from common.markouts import NO_MARKOUTS, note_fill, score_due, toxicity

C = 100  # one contract


def test_a_fill_waits_for_its_horizon_then_is_scored_by_how_the_mid_moved():
    state = note_fill(NO_MARKOUTS, 1_000, 5 * C, 2 * 5_000)  # bought 5, the mid at 50 c
    assert score_due(state, 10_999, 2 * 5_300, horizon_ms=10_000) == state  # not yet due
    scored = score_due(state, 11_000, 2 * 4_800, horizon_ms=10_000)
    assert scored.pending == ()
    assert scored.contracts == 5 * C
    assert scored.move_x2 == 5 * C * 2 * (4_800 - 5_000)  # the mid fell 2 c after we bought


def test_a_sale_scores_the_other_way():
    state = note_fill(NO_MARKOUTS, 0, -3 * C, 2 * 5_000)  # sold 3, the mid at 50 c
    scored = score_due(state, 20_000, 2 * 4_900, horizon_ms=10_000)
    assert scored.move_x2 == 3 * C * 2 * 100  # the mid fell 1 c after we sold: +1 c


def test_no_mid_leaves_fills_waiting_and_a_fill_without_one_is_not_scored():
    state = note_fill(NO_MARKOUTS, 0, C, 2 * 5_000)
    assert score_due(state, 60_000, None) == state
    unscored = note_fill(NO_MARKOUTS, 0, C, None)
    assert (unscored.pending, unscored.contracts) == ((), 0)
    assert unscored.fills == ((0, C),)  # still a fill (``taken_sides``)


def test_toxicity_is_none_until_enough_contracts_were_scored():
    state = score_due(note_fill(NO_MARKOUTS, 0, 4 * C, 2 * 5_000), 10_000, 2 * 4_000)
    assert toxicity(state, 5 * C, 0, 100) is None
    assert toxicity(state, 4 * C, 0, 100) == FACTOR_SCALE  # -10 c a contract: capped at 1.0


def test_toxicity_rises_linearly_past_the_free_move():
    def after(move: int) -> int | None:
        state = note_fill(NO_MARKOUTS, 0, 10 * C, 2 * 5_000)
        state = score_due(state, 10_000, 2 * (5_000 + move))
        return toxicity(state, C, 25, 100)

    assert after(+100) == 0  # the market went our way
    assert after(-25) == 0  # no worse than the free 0.25 c
    assert after(-75) == FACTOR_SCALE // 2  # 0.5 c past it, half the 1 c span
    assert after(-125) == FACTOR_SCALE
    assert after(-1_000) == FACTOR_SCALE


def test_old_scores_are_dropped_past_the_contracts_kept():
    state = NO_MARKOUTS
    for i in range(10):
        state = note_fill(state, i, C, 2 * 5_000)
    state = score_due(state, 10_000, 2 * 4_000, horizon_ms=1, keep_contracts=3 * C)
    assert state.contracts == 3 * C
    state = note_fill(state, 10_001, 3 * C, 2 * 5_000)
    state = score_due(state, 10_002, 2 * 6_000, horizon_ms=1, keep_contracts=3 * C)
    # only the newest three contracts count, all at +10 c
    assert state.contracts == 3 * C and state.move_x2 == 3 * C * 2 * 1_000
    assert toxicity(state, C, 0, 100) == 0


def test_a_late_fill_is_kept_in_time_order():
    state = note_fill(note_fill(NO_MARKOUTS, 5_000, C, 10_000), 1_000, C, 10_000)
    assert [ms for ms, *_ in state.pending] == [1_000, 5_000]
    state = score_due(state, 11_000, 2 * 5_000, horizon_ms=10_000)
    assert [ms for ms, *_ in state.pending] == [5_000]


@given(
    st.lists(
        st.tuples(st.integers(-20 * C, 20 * C), st.integers(100, 9_900), st.integers(100, 9_900)),
        min_size=1,
        max_size=30,
    )
)
def test_the_sums_are_the_sums_of_what_is_kept(fills):
    state = NO_MARKOUTS
    for i, (count, before, after) in enumerate(fills):
        state = note_fill(state, i, count, 2 * before)
        state = score_due(state, i + 1, 2 * after, horizon_ms=1, keep_contracts=50 * C)
    assert state.contracts == sum(c for c, _ in state.scored)
    assert state.move_x2 == sum(e for _, e in state.scored)
    score = toxicity(state, 1, 0, 100)
    assert score is None or 0 <= score <= FACTOR_SCALE


def test_each_scored_fill_keeps_its_edge_against_its_own_price():
    from common.markouts import RECORD_KEEP, whole_record

    state = note_fill(NO_MARKOUTS, 0, 5 * C, 2 * 5_000, 4_900)  # bought 5 at 49 c, mid 50 c
    state = note_fill(state, 1, -2 * C, 2 * 5_000, 5_100)  # sold 2 at 51 c
    state = note_fill(state, 2, C, 2 * 5_000)  # no price: its edge is the move alone
    state = score_due(state, 20_000, 2 * 4_800, horizon_ms=10_000)  # the mid fell to 48 c
    assert state.record == (
        (5 * C, 5 * C * 2 * (4_800 - 4_900)),  # -1 c a contract: lost
        (-2 * C, 2 * C * 2 * (5_100 - 4_800)),  # +3 c a contract: won
        (C, C * 2 * (4_800 - 5_000)),
    )
    assert whole_record(state, 5 * C) == (1, 5 * C, -1_000 * C)
    assert whole_record(state, 2 * C) == (2, 7 * C, -1_000 * C + 1_200 * C)
    for i in range(RECORD_KEEP + 5):
        state = note_fill(state, 30_000 + i, C, 2 * 5_000)
    state = score_due(state, 60_000, 2 * 5_000, horizon_ms=10_000)
    assert len(state.record) == RECORD_KEEP and whole_record(state, 2 * C) == (0, 0, 0)
