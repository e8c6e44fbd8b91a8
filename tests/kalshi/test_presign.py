from common.kalshi.presign import Presigned

H = {"KALSHI-ACCESS-SIGNATURE": "s1"}


def test_a_signature_is_taken_once_for_its_own_method_and_path_while_fresh() -> None:
    held = Presigned(max_age_ms=1_000)
    held.put("POST", "/trade-api/v2/portfolio/events/orders", 10_000, H)
    assert held.take("POST", "/trade-api/v2/portfolio/orders", 10_100) is None  # other path
    assert held.take("GET", "/trade-api/v2/portfolio/events/orders", 10_100) is None
    assert held.take("POST", "/trade-api/v2/portfolio/events/orders", 10_100) == H
    assert held.take("POST", "/trade-api/v2/portfolio/events/orders", 10_100) is None  # used
    assert held.used == 1


def test_a_stale_or_future_signature_is_never_used() -> None:
    held = Presigned(max_age_ms=1_000)
    held.put("POST", "/p", 10_000, {"n": "old"})
    held.put("POST", "/p", 10_600, {"n": "newer"})
    assert held.take("POST", "/p", 11_200) == {"n": "newer"}  # the old one is dropped on the way
    held.put("POST", "/p", 20_000, H)
    assert held.take("POST", "/p", 19_000) is None  # made "later" than now: a clock step back
    assert held.take("POST", "/p", 20_000) is None


def test_it_holds_at_most_its_bound_dropping_the_oldest() -> None:
    held = Presigned(max_age_ms=1_000, max_held=3)
    for i in range(5):
        held.put("POST", f"/o/{i}/amend", 10_000, {"i": str(i)})
    assert [held.take("POST", f"/o/{i}/amend", 10_000) for i in range(5)] == [
        None,
        None,
        {"i": "2"},
        {"i": "3"},
        {"i": "4"},
    ]
