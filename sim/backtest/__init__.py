"""The backtester: the live pure core (quoting, diff, risk) against the simulator on a virtual clock.

``run_backtest(spec)`` runs each strategy in its own ``sim.world.World`` built from the same
scenario and seed, through ``common.order_diff.diff_orders`` and ``common.risk.approve_actions``
exactly as the executor does, and returns exact integer metrics per strategy
(``sim.backtest.metrics``); ``sim.backtest.report`` turns them into JSON, a PNG and a table.
"""

from sim.backtest.engine import BacktestResult, BacktestSpec, StrategyRun, run_backtest
from sim.backtest.strategies import STRATEGIES

__all__ = ["STRATEGIES", "BacktestResult", "BacktestSpec", "StrategyRun", "run_backtest"]
