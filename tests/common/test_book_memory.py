from common.book import YesBook
from common.book_memory import (
    NO_MEMORY,
    BookMemory,
    fresh_fair_x2,
    remember_book,
)
from common.domain import Side

NOW = 1_800_000_000_000


def seen(*books: tuple[int, YesBook]) -> BookMemory:
    memory = NO_MEMORY
    for ms, book in books:
        memory = remember_book(memory, book, NOW + ms)
    return memory


CALM = YesBook(((4000, 2000), (3900, 2000)), ((4400, 2000), (4500, 2000)))


def test_the_fresh_fair_is_the_centre_of_the_levels_added_last() -> None:
    # a maker re-centres higher: new bid 4300 and ask 4700 appear; the old levels stay
    moved = YesBook(((4300, 1000), (4000, 2000)), ((4400, 2000), (4700, 1000)))
    memory = seen((0, CALM), (5_000, moved))
    assert fresh_fair_x2(memory, NOW + 5_000, 2_000) == 4300 + 4700
    assert memory.fresh_spread == 400
    # past the window nothing is fresh any more
    assert fresh_fair_x2(memory, NOW + 8_000, 2_000) is None


def test_a_level_that_grows_again_is_fresh_again_and_one_that_shrinks_is_not() -> None:
    shrunk = YesBook(((4000, 1000), (3900, 2000)), ((4400, 2000), (4500, 2000)))
    assert fresh_fair_x2(seen((0, CALM), (5_000, shrunk)), NOW + 5_000, 2_000) is None
    regrown = YesBook(((4000, 3000), (3900, 2000)), ((4400, 2000), (4500, 3000)))
    memory = seen((0, CALM), (5_000, regrown))
    assert fresh_fair_x2(memory, NOW + 5_000, 2_000) == 4000 + 4500


def test_one_fresh_side_is_placed_by_the_last_two_sided_spread() -> None:
    refresh = YesBook(((4100, 1000), (4000, 2000)), ((4400, 3000), (4500, 2000)))
    # a jump up: the re-centring maker's bids traded against the stale asks; only its asks
    # (far above) rest, and the stale asks at 4400-4500 are mostly gone
    jumped = YesBook(((4100, 1000), (4000, 2000)), ((4500, 100), (6200, 1000), (6300, 1000)))
    memory = seen((0, CALM), (1_000, refresh), (5_000, jumped))
    assert memory.fresh_spread == 4400 - 4100
    assert fresh_fair_x2(memory, NOW + 5_000, 2_000) == 2 * 6200 - 300
    # with no two-sided refresh seen, one side says nothing
    assert fresh_fair_x2(BookMemory(added=((NOW, Side.ASK, 6200),)), NOW, 2_000) is None


def test_the_mids_are_kept_with_the_one_in_effect_when_the_window_opened() -> None:
    wider = YesBook(((4000, 2000),), ((4600, 2000),))
    memory = seen((0, CALM), (3_000, wider), (6_000, CALM), (60_000, CALM), (70_000, wider))
    # 4000+4600 at 70 s, and 4000+4400 from 6 s (still in effect 10 s before 70 s); older gone
    assert memory.mids_x2 == ((NOW + 6_000, 8400), (NOW + 70_000, 8600))
