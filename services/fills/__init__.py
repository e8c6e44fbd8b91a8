"""fills: executions and order updates from Kalshi -> positions, PnL and the fills stream."""
