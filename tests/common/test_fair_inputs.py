from common.fair_inputs import ExternalFair, blend_x2, event_fair_x2, external_fair

D = 10_000  # one dollar


def test_the_event_implies_one_dollar_less_the_other_outcomes():
    # others at 30 c and 25 c mids: this outcome is worth 45 c
    assert event_fair_x2(2 * 4_000, (2 * 3_000, 2 * 2_500), 2 * 1_000) == 2 * 4_500


def test_no_event_value_without_every_sibling_two_sided_or_with_none():
    assert event_fair_x2(2 * 4_000, (2 * 3_000, None), 2 * 1_000) is None
    assert event_fair_x2(2 * 4_000, (), 2 * 1_000) is None


def test_no_event_value_when_the_mids_sum_too_far_from_a_dollar():
    # an outcome missing from the list: 40 + 30 = 70 c, 30 c from $1
    assert event_fair_x2(2 * 4_000, (2 * 3_000,), 2 * 1_000) is None
    assert event_fair_x2(2 * 4_000, (2 * 3_000,), 2 * 3_000) == 2 * 7_000


def test_blend_moves_a_share_of_the_way():
    assert blend_x2(1_000, 2_000, 0) == 1_000
    assert blend_x2(1_000, 2_000, 25) == 1_250
    assert blend_x2(1_000, 2_000, 100) == 2_000
    assert blend_x2(1_000, 2_000, 150) == 2_000  # clamped


def test_external_value_is_used_only_when_fresh_and_sane():
    value = ExternalFair(6_000, 100_000, 80)
    assert external_fair(value, 104_000, 5_000) == value
    assert external_fair(value, 105_001, 5_000) is None  # stale
    assert external_fair(value, 104_000, 0) is None  # turned off
    assert external_fair(ExternalFair(0, 100_000), 100_000, 5_000) is None
    assert external_fair(ExternalFair(D, 100_000), 100_000, 5_000) is None
    assert external_fair(ExternalFair(5_000, 100_000, 0), 100_000, 5_000) is None
    assert external_fair(None, 100_000, 5_000) is None
