"""executor: the only writer of orders. Targets in, V2 order actions out, within the limits.

For each market it owns, whenever the strategy publishes new targets: diff the working orders
against them (``common.order_diff``), approve the actions against the worst case
(``common.risk.approve_actions``), record each new order under its deterministic client order id
before sending it, and send. The parts, each depending only on those below it:

- ``service``: builds the clients, wires the parts, start/step/stop (``python -m
  services.executor``);
- ``loop``: reads the streams, schedules one pass at a time per market side, runs the risk
  refresh and the reconcile beside the reads;
- ``inbox``: targets, fills and order updates into memory (no round trip per entry);
- ``market_pass``: one side of one market: guard, diff, approve, send, the decision log;
- ``safety``: the halt, pulled quotes, cancel-all, the risk refresh;
- ``orders``: the four writes with record-before-send; ``groups``: Kalshi order groups;
- ``reconcile``: working orders against the exchange, resolve by lookup;
- ``journal``: working orders and the trade log written to Redis together;
- ``working``: the working orders in memory and in ``dora:orders:*``; ``state``: the small
  state objects the parts share; ``gateway`` / ``kalshi_gateway``: the exchange.
"""
