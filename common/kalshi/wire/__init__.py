"""Kalshi's JSON shapes <-> dora's domain types (API.md §5-§6). Pure functions, no IO.

Every ``parse_*`` takes a decoded JSON value and either returns integer-unit domain values or
raises ``WireError`` naming the field and the value that came; nothing else escapes (no KeyError,
no TypeError). Every ``build_*`` returns the JSON body of a V2 request. Kalshi's own field names
stay in this package, one module per topic:

- ``markets``: markets, order books, series and event fees, the exchange's status;
- ``orders``: the V2 create, amend, decrease and cancel bodies and their answers;
- ``portfolio``: fills, settlements, positions, balance, order groups;
- ``stream``: WebSocket snapshots, deltas, fills and order updates;
- ``error_body``: Kalshi's error answers; ``fields``: the readers every module shares.
"""
