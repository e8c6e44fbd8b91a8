"""Kalshi's JSON shapes <-> dora's domain types (API.md §5-§6). Pure functions, no IO.

Every ``parse_*`` takes a decoded JSON value and either returns integer-unit domain values or
raises ``WireError`` naming the field and the value that came; nothing else escapes (no KeyError,
no TypeError). Every ``build_*`` returns the JSON body of a V2 request. Kalshi's own field names
stay in this package, one module per topic:

- ``markets``: markets, order books, series and event fees, the exchange's status;
- ``orders``: orders read back, the V2 create (one and batched) and its answer;
- ``order_changes``: the V2 amend, decrease and cancel (one and batched) and their answers;
- ``portfolio``: fills, settlements, positions, balance, order groups;
- ``stream``: WebSocket snapshots, deltas, fills and order updates;
- ``error_body``: Kalshi's error answers; ``fields``: what every module shares.

Each payload is a frozen ``msgspec.Struct`` of the fields dora reads (``fields.convert``), then
checked for what msgspec cannot know: fixed-point strings, times, sides, statuses.
"""
