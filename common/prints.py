"""The public trade tape of one market: which recent prints look informed (session 20).

Kalshi's ``trade`` channel publishes every trade with its taker's side and count. A taker order
that walks the book prints one trade per resting order it meets, so consecutive trades of one
market at the same time with the same taker side are merged into one **print** here (the feed
carries no taker order id; two takers on one side in the same instant merge, as they would
for anyone reading it).

A print is judged **informed** when it is large where large prints are rare: at least
``min_count`` contracts while at most ``rare_pct`` % of the market's previous ``window`` prints
(and at least ``min_seen`` of them) reached ``min_count``. (Judging a print against its own
size instead, "rarely this large", judges sports_live's biggest noise sweeps informed.) In ``news_jumps`` noise takers trade at most 10
contracts and informed ones up to 40, so a print of 11 or more where they are rare carries the
fair value 3.4 c past the others' mid half a second later and 1.6 c after 4 s
(``bench.prints``, seeds 1-8). In ``sports_live`` noise takers sweep up to 40 contracts and
large prints are common, so the same size is not rare there and nothing is judged informed
(large prints there are the noise: the fair value sits 1 c *against* them).

Pure and immutable, exact integers (counts in 1/100 contract, as the feed's): the backtester
(and the live strategy, once it reads the trade channel) keep one per market and feed it every
print in the order the feed delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass

KEEP = 128  # prints kept: a judging window of up to 64 behind each of the newest 64


@dataclass(frozen=True, slots=True)
class Prints:
    # (ms, taker sign: +1 bought YES / -1 sold YES, count), oldest first
    tape: tuple[tuple[int, int, int], ...] = ()


NO_PRINTS = Prints()


@dataclass(frozen=True, slots=True)
class PrintRule:
    """When a print is informed: at least ``min_count`` (count units; 0 = never), a size at
    most ``rare_pct`` % of the market's previous ``window`` prints reached (at least
    ``min_seen`` of them seen)."""

    min_count: int = 0
    window: int = 50
    rare_pct: int = 10
    min_seen: int = 20


def judged_informed(earlier: tuple[tuple[int, int, int], ...], count: int, rule: PrintRule) -> bool:
    """Is a print of ``count`` informed, given the market's ``earlier`` prints (oldest first)?"""
    if not rule.min_count or count < rule.min_count:
        return False
    seen = earlier[-rule.window :]
    if len(seen) < rule.min_seen:
        return False
    large = sum(1 for _, _, c in seen if c >= rule.min_count)
    return 100 * large <= rule.rare_pct * len(seen)


def remember_print(prints: Prints, ms: int, taker_sign: int, count: int) -> Prints:
    """``prints`` with one trade of the feed added: merged into the last print when it has the
    same time and taker side (one taker order walking the book)."""
    tape = prints.tape
    if tape and tape[-1][0] == ms and tape[-1][1] == taker_sign:
        count += tape[-1][2]
        tape = tape[:-1]
    tape = (*tape, (ms, taker_sign, count))
    return Prints(tape[-KEEP:])


def informed_sides(prints: Prints, now_ms: int, hold_ms: int, rule: PrintRule) -> tuple[bool, bool]:
    """(an informed taker bought, one sold) within the last ``hold_ms``, each print judged
    against the prints before it: the side the next informed taker would hit is our ask after
    a buy, our bid after a sale."""
    bought = sold = False
    tape = prints.tape
    for index in range(len(tape) - 1, -1, -1):
        ms, sign, count = tape[index]
        if ms < now_ms - hold_ms:
            break
        if (sign > 0 and bought) or (sign < 0 and sold):
            continue
        if judged_informed(tape[:index], count, rule):
            bought = bought or sign > 0
            sold = sold or sign < 0
    return bought, sold
