"""risk: daily PnL, exposure, position reconciliation, heartbeat watchdog and the halt."""
