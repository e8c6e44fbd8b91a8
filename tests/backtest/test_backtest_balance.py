"""dora's books against the exchange's balance, to the cent (issue 20, item 4): a non-direct
member's balance moves in whole cents, and what dora books per fill (the trade fee plus the
rounding fee less the order's rebates, ``common.fees.RoundingFee``) adds up to exactly what the
simulator took. ``scripts``: the same over an hour is in the report of issue 20."""

from __future__ import annotations

from common.fees import CENT
from common.numbers import MONEY_SCALE
from sim.backtest import BacktestSpec
from sim.backtest.engine import KEY_ID, _Runner
from sim.backtest.strategies import STRATEGIES
from sim.scenario import load_scenario


def booked_cash_change(runner: _Runner) -> int:
    """What dora's positions say the cash did: realized PnL less fees less what the open
    contracts cost (a short YES position is NO bought at 1 - p)."""
    return sum(
        m.position.realized_pnl - m.position.fees - m.position.exposure
        for m in runner.markets.values()
    )


def run(hours: float, seed: int, strategy: str = "dora") -> tuple[_Runner, int]:
    spec = BacktestSpec(load_scenario("calm"), seed=seed, hours=hours, n_markets=4)
    runner = _Runner(spec, strategy, STRATEGIES[strategy])
    runner.run()
    account = runner.world.exchange.accounts[KEY_ID]
    assert not account.direct_member and not account.settlements
    return runner, account.cash - spec.balance_dollars * MONEY_SCALE


def test_dora_books_what_a_non_direct_members_balance_lost_to_the_cent() -> None:
    runner, exchange_change = run(0.1, seed=2)
    account = runner.world.exchange.accounts[KEY_ID]
    assert len(account.fills) > 20 and account.rounding_fees > 0  # the rounding fee was paid
    assert exchange_change % CENT == 0  # the balance moves in whole cents
    assert booked_cash_change(runner) == exchange_change
