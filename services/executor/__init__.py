"""executor: the only writer of orders. Targets in, V2 order actions out, within the limits."""
