"""The exposure ledger's Lua scripts (``common.ledger`` sends them; the layout is there).

An event's part of the ledger is kept so that a reservation costs the same whatever the number
of markets in the event (an event of hundreds of markets once made every reservation decode and
encode them all, ~1.2 ms of Redis per order at 500 markets):

- ``em:{event}|{ticker}`` (in the ledger hash): that market's parts, JSON ``{kind: [money, token,
  seq]}`` for ``py``/``pn`` (its position's loss if YES / if NO), ``b``/``a`` (what its bids / asks
  add);
- ``ea:{event}`` (in the ledger hash): ``x:all_no:sum``: mutually exclusive ("1"/"0"), the sum over
  its markets of the loss if NO, and the sum of each market's larger loss (a non-exclusive
  event's worst);
- the sorted set ``Keys.ledger_event(event)``: each market's loss if YES less its loss if NO, so a
  mutually exclusive event's worst, ``all_no + max(0, the largest)``, is one lookup.

A step reads and writes one market's part and the event's sums: O(log n), not O(n).
"""

from __future__ import annotations

COMMON = """
local function fenced(lease_key, token)
  local lease = redis.call('GET', lease_key)
  if not lease then return 'no lease' end
  local held = string.match(lease, '^(%d+):')
  if held ~= token then return 'lease held by ' .. lease end
  return nil
end
local function guarded(book_key, market_key)
  local market = redis.call('HMGET', market_key, 'status', 'problem')
  if market[1] ~= 'active' or (market[2] and market[2] ~= '') then return 'market_not_open' end
  local book = redis.call('HMGET', book_key, 'stale', 'seq')
  if not book[2] then return 'no_book' end
  if book[1] == '1' then return 'book_stale' end
  return nil
end
local function parse(value)
  if not value then return 0, 0, 0 end
  local money, token, seq = string.match(value, '^(-?%d+):(%d+):(%d+)$')
  if not money then return 0, 0, 0 end
  return tonumber(money), tonumber(token), tonumber(seq)
end
local function fmt(n) return string.format('%d', n) end
-- the lease's fence, then (when asked) the guard: nil when both pass, else the refusal to return
local function refused(lease_key, token, guard, book_key, market_key)
  local why = fenced(lease_key, token)
  if why then return {'fenced', why} end
  if guard == '1' then
    local reason = guarded(book_key, market_key)
    if reason then return {'guard', reason} end
  end
  return nil
end
"""

EVENTS = """
local function yes_no(m)
  local function v(k) local x = m[k]; if x then return x[1] end; return 0 end
  return v('py') + v('a'), v('pn') + v('b')
end
local function read_part(name)
  local raw = redis.call('HGET', KEYS[1], name)
  if raw then
    local ok, m = pcall(cjson.decode, raw)
    if ok and type(m) == 'table' then return m end
  end
  return {}
end
local function read_sums(name)
  local raw = redis.call('HGET', KEYS[1], name)
  if not raw then return nil, 0, 0 end
  local x, all_no, sum = string.match(raw, '^(%d):(-?%d+):(-?%d+)$')
  if not x then return nil, 0, 0 end
  return x, tonumber(all_no), tonumber(sum)
end
local function others_best(zkey, ticker)
  local top = redis.call('ZREVRANGE', zkey, 0, 1, 'WITHSCORES')
  for i = 1, #top, 2 do
    if top[i] ~= ticker then return tonumber(top[i + 1]) end
  end
  return 0
end
"""

# KEYS: ledger, lease, book, market, orders, the event's sorted set. ARGV: cap, token, seq, guard
# ("1"/"0"), the number of orders to record, the event ("" for none), its limit, its exclusive
# flag ("1"/"0"), the market's parts of it (JSON kind -> [money now, money after]), the ticker,
# the writer's mark field and the highest seq of its writes Redis acknowledged (``MARK``);
# then (client order id, JSON) pairs of the orders to record, then (field, money now, money after)
# triples. "Now" is what rests before this step (exact, from the caller's memory: a stale value
# in the ledger is released by it), "after" with the new orders: only what this step adds is held
# to the limits.
FENCE_AND_GUARD = """
local refusal = refused(KEYS[2], ARGV[2], ARGV[4], KEYS[3], KEYS[4])
if refusal then return refusal end
"""
# Each writer's mark (``mark:{lease key}`` in the ledger: ``token:seq``, the newest of its steps
# applied): when it is below a step Redis acknowledged to that writer, Redis lost writes it had
# confirmed (a restart from an AOF written every second, a failover to a lagging replica). The
# writer's memory then says the ledger holds what it no longer does, so its room would be given
# away: every step of it is refused (``lost``) until it rebuilds its part (``REBUILD`` sets the
# mark again).
MARK = """
local function read_mark(name)
  local raw = redis.call('HGET', KEYS[1], name)
  if not raw then return 0, 0 end
  local t, s = string.match(raw, '^(%d+):(%d+)$')
  if not t then return 0, 0 end
  return tonumber(t), tonumber(s)
end
local mark_token, mark_seq = read_mark(ARGV[11])
local acked = tonumber(ARGV[12])
local my_token = tonumber(ARGV[2])
if acked > 0 and (mark_token < my_token or (mark_token == my_token and mark_seq < acked)) then
  return {'lost', 'the ledger holds step ' .. fmt(mark_seq) .. ' of ours, Redis had acknowledged ' .. fmt(acked)}
end
"""
RESERVATION = """
local cap, token, seq = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local records = tonumber(ARGV[5])
local first = 13 + 2 * records
local delta, added, sets, stale = 0, 0, {}, {}
for i = first, #ARGV, 3 do
  local now, new = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local old, old_token, old_seq = parse(redis.call('HGET', KEYS[1], ARGV[i]))
  if old_token < token or (old_token == token and old_seq < seq) then
    delta = delta + new - old
    added = added + new - now
    sets[#sets + 1] = ARGV[i]
    sets[#sets + 1] = ARGV[i + 2] .. ':' .. ARGV[2] .. ':' .. ARGV[3]
  else
    stale[#stale + 1] = ARGV[i]
  end
end
local zkey = KEYS[#KEYS]
local event_write = nil
if ARGV[6] ~= '' then
  local limit, exclusive, ticker = tonumber(ARGV[7]), ARGV[8] == '1', ARGV[10]
  local part_name = 'em:' .. ARGV[6] .. '|' .. ticker
  local m = read_part(part_name)
  local now_m, new_m = {}, {}
  for kind, value in pairs(m) do now_m[kind] = value; new_m[kind] = value end
  for kind, pair in pairs(cjson.decode(ARGV[9])) do
    local cur = m[kind]
    if (not cur) or cur[2] < token or (cur[2] == token and cur[3] < seq) then
      now_m[kind] = {pair[1], token, seq}
      new_m[kind] = {pair[2], token, seq}
    end
  end
  local ys, ns = yes_no(m)
  local yb, nb = yes_no(now_m)
  local ya, na = yes_no(new_m)
  local _, all_no, sum = read_sums('ea:' .. ARGV[6])
  all_no = all_no - ns  -- the other markets'
  sum = sum - math.max(ys, ns)
  local after
  if exclusive then
    after = all_no + na + math.max(math.max(0, others_best(zkey, ticker)), ya - na)
  else
    after = sum + math.max(ya, na)
  end
  -- Held to the limit when either outcome's loss of this market rises, not only when the
  -- event's worst does: a market's parts are written by two passes (one per side), and one
  -- side's stale part beside the other's new one can raise the other outcome for a moment (a
  -- bid's part of 5 contracts beside a position that says 2 of them filled). Compared with
  -- that phantom, an ask that raised the loss if YES "did not raise the worst" and passed over
  -- the limit, and the phantom then went: the short chaos run's events $0.05-0.14 over.
  if limit >= 0 and (ya > yb or na > nb) and after > limit then
    return {'event_denied', fmt(after), fmt(limit)}
  end
  local sums = (exclusive and '1' or '0') .. ':' .. fmt(all_no + na) .. ':' .. fmt(sum + math.max(ya, na))
  event_write = {part_name, cjson.encode(new_m), 'ea:' .. ARGV[6], sums, ya - na, ticker}
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if cap >= 0 and added > 0 and total + delta > cap then
  return {'denied', fmt(total), fmt(delta)}
end
if #sets > 0 then
  redis.call('HSET', KEYS[1], unpack(sets))
  total = redis.call('HINCRBY', KEYS[1], 'total', fmt(delta))
end
if event_write then
  redis.call('HSET', KEYS[1], event_write[1], event_write[2], event_write[3], event_write[4])
  redis.call('ZADD', zkey, fmt(event_write[5]), event_write[6])
end
if mark_token < token or (mark_token == token and mark_seq < seq) then
  redis.call('HSET', KEYS[1], ARGV[11], fmt(token) .. ':' .. fmt(seq))
end
"""
RECORDS = """
for i = 13, first - 1, 2 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
end
"""
REPLY = """
local reply = {'ok', fmt(total), fmt(seq)}
for _, name in ipairs(stale) do reply[#reply + 1] = name end
return reply
"""
RESERVE = COMMON + EVENTS + FENCE_AND_GUARD + MARK + RESERVATION + RECORDS + REPLY

# Redis Cluster (docs/redis.md): the ledger is in the account's slot, the lease, book, market and
# orders of a market in its shard's, and no script may take keys of two slots. ``reserve`` is
# then two steps: the reservation alone (KEYS: the ledger and the event's sorted set, both in the
# account's slot; the same ARGV with no records: the token orders the writes, it fences nothing),
# then the shard step below; a refusal of the shard step sets the reservation back to what rests
# now.
RESERVE_ACCOUNT = COMMON + EVENTS + MARK + RESERVATION + REPLY

# KEYS: lease, book, market, orders. ARGV: token, guard ("1"/"0"), then (client order id, JSON)
# pairs of the orders to record as pending.
SHARD_STEP = (
    COMMON
    + """
local refusal = refused(KEYS[1], ARGV[1], ARGV[2], KEYS[2], KEYS[3])
if refusal then return refusal end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
end
return {'ok'}
"""
)

# KEYS: ledger, lease. ARGV: token, seq, the number of fields to drop, those fields, the tickers
# whose event parts are replaced (JSON list), the new event parts (JSON event -> {"x": exclusive,
# "m": {ticker: {kind: money}}}), the prefix of the events' sorted sets (``Keys.ledger_event``:
# in the ledger's slot), the writer's mark field (``MARK``), then (field, money) pairs. The total and every event's sums and sorted
# set are computed again from the parts (a rebuild is rare: at start, after a data loss).
REBUILD_FENCE = """
local why = fenced(KEYS[2], ARGV[1])
if why then return {'fenced', why} end
"""
REBUILD_BODY = """
local token, seq = tonumber(ARGV[1]), tonumber(ARGV[2])
local dropped = tonumber(ARGV[3])
for i = 4, 3 + dropped do redis.call('HDEL', KEYS[1], ARGV[i]) end
local mine = {}
for _, ticker in ipairs(cjson.decode(ARGV[4 + dropped])) do mine[ticker] = true end
local events = cjson.decode(ARGV[5 + dropped])
local prefix = ARGV[6 + dropped]
redis.call('HSET', KEYS[1], ARGV[7 + dropped], ARGV[1] .. ':' .. ARGV[2])
for i = 8 + dropped, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. ':' .. ARGV[1] .. ':' .. ARGV[2])
end
local flags = {}  -- event -> its exclusive flag ("1"/"0")
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local name = fields[i]
  local head = string.sub(name, 1, 3)
  if head == 'em:' then
    local event, ticker = string.match(name, '^em:(.*)|(.*)$')
    if event then
      flags[event] = flags[event] or '0'
      if mine[ticker] then redis.call('HDEL', KEYS[1], name) end
    end
  elseif head == 'ea:' then
    flags[string.sub(name, 4)] = string.sub(fields[i + 1], 1, 1)
  elseif string.sub(name, 1, 6) == 'event:' then
    redis.call('HDEL', KEYS[1], name)  -- the layout before (one JSON per event)
  end
end
for event, part in pairs(events) do
  flags[event] = part.x and '1' or '0'
  for ticker, kinds in pairs(part.m) do
    local m = {}
    for kind, money in pairs(kinds) do m[kind] = {money, token, seq} end
    redis.call('HSET', KEYS[1], 'em:' .. event .. '|' .. ticker, cjson.encode(m))
  end
end
local sums, total = {}, 0
for event, _ in pairs(flags) do
  sums[event] = {0, 0, 0}
  redis.call('DEL', prefix .. event)
end
fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local name = fields[i]
  local head = string.sub(name, 1, 3)
  if head == 'em:' then
    local event, ticker = string.match(name, '^em:(.*)|(.*)$')
    if event and sums[event] then
      local y, n = yes_no(cjson.decode(fields[i + 1]))
      local s = sums[event]
      s[1] = s[1] + n
      s[2] = s[2] + math.max(y, n)
      s[3] = s[3] + 1
      redis.call('ZADD', prefix .. event, fmt(y - n), ticker)
    end
  elseif head ~= 'ea:' and name ~= 'total' and string.sub(name, 1, 5) ~= 'mark:' then
    total = total + parse(fields[i + 1])
  end
end
for event, s in pairs(sums) do
  if s[3] > 0 then
    redis.call('HSET', KEYS[1], 'ea:' .. event, flags[event] .. ':' .. fmt(s[1]) .. ':' .. fmt(s[2]))
  else
    redis.call('HDEL', KEYS[1], 'ea:' .. event)
  end
end
redis.call('HSET', KEYS[1], 'total', fmt(total))
return {'ok', fmt(total)}
"""
REBUILD = COMMON + EVENTS + REBUILD_FENCE + REBUILD_BODY
# Cluster mode: KEYS: the ledger alone; the lease is read first, in its own slot (``rebuild``).
REBUILD_ACCOUNT = COMMON + EVENTS + REBUILD_BODY
