"""Lua scripts of the Redis result backend (keys in ``redis.py``); each is one atomic step."""

from __future__ import annotations

# store_docs(keys, expiry ms (0: none), args, first): the document for keys[i] is args[first + i - 1].
# A stored ready state is final; every write is published on the key's own channel (as Celery does).
# The broker's send and settle scripts (brokers/redis_scripts.py) begin with this function too, so a
# result and a message share one command when the backend is on the broker's server.
STORE_FUNCTION = """
local function store_docs(keys, expiry, args, first)
  local ready = {SUCCESS = true, FAILURE = true, REVOKED = true}
  local stored = 0
  for i, key in ipairs(keys) do
    local doc_text = args[first + i - 1]
    local current = redis.call('GET', key)
    local final = false
    -- decoding costs more than the rest of a store: only a document naming a ready state can be final
    if current and (string.find(current, 'SUCCESS', 1, true) or string.find(current, 'FAILURE', 1, true)
                    or string.find(current, 'REVOKED', 1, true)) then
      local ok, doc = pcall(cjson.decode, current)
      final = ok and type(doc) == 'table' and ready[doc['status']] == true
    end
    if not final then
      if tonumber(expiry) > 0 then
        redis.call('SET', key, doc_text, 'PX', expiry)
      else
        redis.call('SET', key, doc_text)
      end
      redis.call('PUBLISH', key, doc_text)
      stored = stored + 1
    end
  end
  return stored
end
"""

# KEYS: meta keys.  ARGV: expiry ms (0: none), then one JSON document per key.
STORE = STORE_FUNCTION + "return store_docs(KEYS, ARGV[1], ARGV, 2)\n"

# KEYS: .j (zset of results), .s (header size).  ARGV: index, member.
# Returns every member in index order to the one call that completes the header, nil otherwise.
CHORD_JOIN = """
local size = redis.call('GET', KEYS[2])
if not size then return false end
if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
if redis.call('ZCARD', KEYS[1]) < tonumber(size) then return false end
local items = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return items
"""

# KEYS: revoked zset, info hash.  ARGV: now ms, expiry ms, info, task ids...  Drops expired ids first.
REVOKE = """
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for i = 1, #old, 1000 do
  local chunk = {unpack(old, i, math.min(i + 999, #old))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[2], unpack(chunk))
end
for i = 4, #ARGV do
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[3])
end
return #ARGV - 3
"""

# KEYS[1]: lease key.  ARGV: owner, ttl ms.  Take a free lease or extend one's own.
ACQUIRE = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1]: lease key.  ARGV: owner.  Only the holder can give a lease up.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

NAMES = ("STORE", "CHORD_JOIN", "REVOKE", "ACQUIRE", "RELEASE")
