"""Lua scripts of the Redis broker: each one is a single atomic step (see ``redis.py`` for the keys).

Every script receives queue *bases* (``<prefix>celeriac:q:{<queue>}``) and derives the per-queue
keys from them (``:0``..``:9``, ``:eta``, ``:tick``, ``:dead``, ``:groups``, ``:sweep``). That keeps
one queue's keys in one hash slot, but the scripts address keys they were not passed, so they
target standalone Redis and Sentinel-managed primaries, not Redis Cluster.

A delayed message is one sorted-set member ``<uid>:<priority>:<past deliveries>:<len(id)>:<id><payload>``
so that promotion needs no second key and can never run twice for the same member.
"""

from __future__ import annotations

from ..backends.redis_backend_scripts import STORE_FUNCTION

_HELPERS = """
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- a message anywhere but priority 0, or a delayed one, changes what a claim must look at: ``mark``
-- tells fetchers that read priority 0 alone (see redis_fetch.py) to claim in full again
local function disturb(base)
  redis.call('INCR', base .. ':mark')
end

local function add(base, prio, mid, payload, n)
  local key = base .. ':' .. prio
  if tonumber(prio) ~= 0 then disturb(base) end
  if tonumber(n) > 0 then
    return redis.call('XADD', key, '*', 'm', mid, 'p', payload, 'n', n)
  end
  return redis.call('XADD', key, '*', 'm', mid, 'p', payload)
end

local function unpack_delayed(m)
  local prio, n, mlen, at = string.match(m, '^[^:]*:(%d+):(%d+):(%d+):()')
  mlen = tonumber(mlen)
  return prio, n, string.sub(m, at, at + mlen - 1), string.sub(m, at + mlen)
end

-- put a message back: ready now (due == 0) or delayed until ``due`` (ms)
local function requeue(base, prio, mid, payload, n, due, uid)
  if n < 0 then n = 0 end
  if tonumber(due) > 0 then
    local member = uid .. ':' .. prio .. ':' .. n .. ':' .. #mid .. ':' .. mid .. payload
    redis.call('ZADD', base .. ':eta', due, member)
    redis.call('XADD', base .. ':tick', 'MAXLEN', '~', 16, '*', 't', '1')
    disturb(base)
  else
    add(base, prio, mid, payload, n)
  end
end

-- take a pending entry out of the group and requeue it; ``adjust`` corrects its delivery count
local function move_back(base, prio, group, id, info, adjust, due)
  local key = base .. ':' .. prio
  local entry = redis.call('XRANGE', key, id, id)
  redis.call('XACK', key, group, id)
  redis.call('XDEL', key, id)
  if not entry[1] then return 0 end
  local fields = entry[1][2]
  local n = tonumber(field(fields, 'n') or '0') + tonumber(info[4]) + adjust
  requeue(base, prio, field(fields, 'm'), field(fields, 'p'), n, due, string.gsub(id, '-', 'x'))
  return 1
end

local function last_delivered(key, group)
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
  if not ok then return '0-0' end
  for _, g in ipairs(groups) do
    if field(g, 'name') == group then return field(g, 'last-delivered-id') end
  end
  return '0-0'
end
"""

# KEYS: queue bases.  ARGV: group, consumer, limit, now_ms, min_idle_ms, sweep_ms, queues_set, queue names...
CLAIM = (
    _HELPERS
    + """
local group, consumer = ARGV[1], ARGV[2]
local limit, min_idle = tonumber(ARGV[3]), tonumber(ARGV[5])
local out, count = {}, 0

local function ensure(base, name)
  if redis.call('EXISTS', base .. ':groups') == 1 then return end
  for p = 0, 9 do redis.pcall('XGROUP', 'CREATE', base .. ':' .. p, group, '0', 'MKSTREAM') end
  redis.pcall('XGROUP', 'CREATE', base .. ':tick', group, '0', 'MKSTREAM')
  redis.call('SET', base .. ':groups', '1')
  redis.call('SADD', ARGV[7], name)
end

local function promote(base)
  local due = redis.call('ZRANGEBYSCORE', base .. ':eta', '-inf', ARGV[4], 'LIMIT', 0, 1000)
  for _, m in ipairs(due) do
    local prio, n, mid, payload = unpack_delayed(m)
    add(base, prio, mid, payload, n)
    redis.call('ZREM', base .. ':eta', m)
  end
end

local function push(qi, p, id, fields, delivered)
  local n = tonumber(field(fields, 'n') or '0')
  out[#out + 1] = {qi, p, id, field(fields, 'm'), field(fields, 'p'), n + tonumber(delivered)}
  count = count + 1
end

local function sweep(qi, base)
  if count >= limit or not redis.call('SET', base .. ':sweep', '1', 'NX', 'PX', ARGV[6]) then return end
  for p = 9, 0, -1 do
    if count >= limit then return end
    local key = base .. ':' .. p
    local res = redis.call('XAUTOCLAIM', key, group, consumer, min_idle, '0-0', 'COUNT', limit - count)
    for _, e in ipairs(res[2]) do
      if e[2] then
        local info = redis.call('XPENDING', key, group, e[1], e[1], 1)
        push(qi, p, e[1], e[2], info[1][4])
      end
    end
  end
end

local function read_new(qi, base)
  for p = 9, 0, -1 do
    if count >= limit then return end
    local key = base .. ':' .. p
    -- most priorities of a queue are never used: an empty stream is skipped for the cost of an XLEN
    local res = redis.call('XLEN', key) > 0
      and redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', limit - count, 'STREAMS', key, '>')
    if res then
      for _, e in ipairs(res[1][2]) do push(qi, p, e[1], e[2], 1) end
    end
  end
end

for qi, base in ipairs(KEYS) do
  ensure(base, ARGV[7 + qi])
  promote(base)
end
for qi, base in ipairs(KEYS) do
  sweep(qi, base)
  read_new(qi, base)
end
local next_due = ''
for _, base in ipairs(KEYS) do
  local first = redis.call('ZRANGE', base .. ':eta', 0, 0, 'WITHSCORES')
  if first[2] and (next_due == '' or tonumber(first[2]) < tonumber(next_due)) then next_due = first[2] end
end
-- one queue whose messages are all at priority 0: until ``mark`` changes, reading that stream alone
-- claims what this script would
local calm = 0
if #KEYS == 1 then
  calm = 1
  for p = 1, 9 do
    if redis.call('XLEN', KEYS[1] .. ':' .. p) > 0 then calm = 0; break end
  end
end
return {out, next_due, calm, redis.call('GET', KEYS[1] .. ':mark') or '0'}
"""
)

# KEYS: stream keys, one per entry.  ARGV: group, consumer, ids...
RENEW = """
local renewed = 0
for i, key in ipairs(KEYS) do
  local id = ARGV[i + 2]
  local info = redis.call('XPENDING', key, ARGV[1], id, id, 1)
  if info[1] and info[1][2] == ARGV[2] then
    redis.call('XCLAIM', key, ARGV[1], ARGV[2], 0, id, 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""

# KEYS: queue bases, one per entry.  ARGV: group, due_ms (0 = now), then (prio, id, owner) per entry.
RELEASE = (
    _HELPERS
    + """
local group, due, moved = ARGV[1], ARGV[2], 0
for i, base in ipairs(KEYS) do
  local prio, id, owner = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local info = redis.call('XPENDING', base .. ':' .. prio, group, id, id, 1)
  if info[1] and info[1][2] == owner then
    moved = moved + move_back(base, prio, group, id, info[1], -1, due)
  end
end
return moved
"""
)

# KEYS: every known queue base.  ARGV: group, consumer.
RECLAIM = (
    _HELPERS
    + """
local group, consumer, moved = ARGV[1], ARGV[2], 0
for _, base in ipairs(KEYS) do
  for p = 0, 9 do
    local key = base .. ':' .. p
    local pending = redis.pcall('XPENDING', key, group, '-', '+', 100000, consumer)
    if type(pending) == 'table' and not pending.err then
      for _, info in ipairs(pending) do moved = moved + move_back(base, p, group, info[1], info, 0, 0) end
      redis.pcall('XGROUP', 'DELCONSUMER', key, group, consumer)
    end
  end
  redis.pcall('XGROUP', 'DELCONSUMER', base .. ':tick', group, consumer)
end
return moved
"""
)

# KEYS[1]: queue base.  ARGV: dead-letter stream ids.
REQUEUE_DEAD = (
    _HELPERS
    + """
local base, moved = KEYS[1], 0
for _, id in ipairs(ARGV) do
  local entry = redis.call('XRANGE', base .. ':dead', id, id)
  if entry[1] then
    local fields = entry[1][2]
    add(base, field(fields, 'pr') or '0', field(fields, 'm'), field(fields, 'p'), 0)
    redis.call('XDEL', base .. ':dead', id)
    moved = moved + 1
  end
end
return moved
"""
)

# KEYS[1]: queue base.  ARGV: group, now_ms.  Returns {ready, delayed, in_flight, dead, oldest_ms or ''}.
STATS = (
    _HELPERS
    + """
local base, group = KEYS[1], ARGV[1]
local ready, in_flight, oldest = 0, 0, ''
for p = 0, 9 do
  local key = base .. ':' .. p
  if redis.call('EXISTS', key) == 1 then
    local length = redis.call('XLEN', key)
    local summary = redis.pcall('XPENDING', key, group)
    local pending = 0
    if type(summary) == 'table' and not summary.err then pending = tonumber(summary[1]) end
    in_flight = in_flight + pending
    ready = ready + length - pending
    if length > pending then
      local first = redis.call('XRANGE', key, '(' .. last_delivered(key, group), '+', 'COUNT', 1)
      if first[1] then
        local ms = string.match(first[1][1], '^(%d+)')
        if oldest == '' or tonumber(ms) < tonumber(oldest) then oldest = ms end
      end
    end
  end
end
local due = redis.call('ZCOUNT', base .. ':eta', '-inf', ARGV[2])
local delayed = redis.call('ZCOUNT', base .. ':eta', '(' .. ARGV[2], '+inf')
return {ready + due, delayed, in_flight, redis.call('XLEN', base .. ':dead'), oldest}
"""
)

# KEYS[1]: queue base.  ARGV: group.  Deletes undelivered and delayed messages; returns how many.
PURGE = (
    _HELPERS
    + """
local base, group, removed = KEYS[1], ARGV[1], 0
for p = 0, 9 do
  local key = base .. ':' .. p
  if redis.call('EXISTS', key) == 1 then
    local after = '(' .. last_delivered(key, group)
    while true do
      local batch = redis.call('XRANGE', key, after, '+', 'COUNT', 500)
      if #batch == 0 then break end
      local ids = {}
      for i, e in ipairs(batch) do ids[i] = e[1] end
      removed = removed + redis.call('XDEL', key, unpack(ids))
      after = '(' .. ids[#ids]
    end
  end
end
removed = removed + redis.call('ZCARD', base .. ':eta')
redis.call('DEL', base .. ':eta')
return removed
"""
)


# Sending and settling when the result backend is on this server: its documents are stored first
# (KEYS: meta keys; ARGV: expiry ms, one document per key, as ``store_docs`` takes them), then the
# broker's operations run, all in one command. An operation is a tag and its arguments:
#   x stream mid payload       XADD a ready message        z zset due_ms member   ZADD a delayed one
#   t stream                   XADD to a queue's tick      s set name             SADD a queue name
#   a stream group n id1..idn  XACK and XDEL settled entries
#   v mark                     INCR a queue's mark (a message not at priority 0, or a delayed one)
RECORDED = (
    STORE_FUNCTION
    + """
local stored = store_docs(KEYS, ARGV[1], ARGV, 2)
local i = #KEYS + 2
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'x' then
    redis.call('XADD', ARGV[i + 1], '*', 'm', ARGV[i + 2], 'p', ARGV[i + 3])
    i = i + 4
  elseif op == 'z' then
    redis.call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 't' then
    redis.call('XADD', ARGV[i + 1], 'MAXLEN', '~', 16, '*', 't', '1')
    i = i + 2
  elseif op == 's' then
    redis.call('SADD', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'v' then
    redis.call('INCR', ARGV[i + 1])
    i = i + 2
  elseif op == 'a' then
    local n = tonumber(ARGV[i + 3])
    local ids = {unpack(ARGV, i + 4, i + 3 + n)}
    redis.call('XACK', ARGV[i + 1], ARGV[i + 2], unpack(ids))
    redis.call('XDEL', ARGV[i + 1], unpack(ids))
    i = i + 4 + n
  else
    return redis.error_reply('celeriac: unknown operation ' .. tostring(op))
  end
end
return stored
"""
)

# KEYS: a bounded stream, its index (a zset: each entry id scored by the number of items appended up
# to and including that entry).  ARGV: max items, oldest id to keep (by age), then per entry: its item
# count and its items, packed (packing.py; field b) or, for a lone item, as they are (field d, which
# readers of every version understand).  The index lets whole entries older than the newest
# ``max items`` be cut without reading them; before any count cut, fewer than ``max items`` were counted.
APPEND = """
local key, index = KEYS[1], KEYS[2]
local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
local total = tonumber(top[2] or '0')
for i = 3, #ARGV, 2 do
  local count = tonumber(ARGV[i])
  total = total + count
  redis.call('ZADD', index, total, redis.call('XADD', key, '*', count == 1 and 'd' or 'b', ARGV[i + 1]))
end
redis.call('XTRIM', key, 'MINID', '~', ARGV[2])
local floor = total - tonumber(ARGV[1])
if floor > 0 then
  local keep = redis.call('ZRANGEBYSCORE', index, '(' .. floor, '+inf', 'LIMIT', 0, 1)[1]
  if keep then redis.call('XTRIM', key, 'MINID', keep) end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', floor)
end
return total
"""
