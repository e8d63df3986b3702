"""Lua scripts of the Redis result backend (keys in ``redis.py``); each is one atomic step."""

from __future__ import annotations

# KEYS: meta keys.  ARGV: expiry ms (0: none), then one JSON document per key.
# A stored ready state is final; every write is published on the key's own channel (as Celery does).
STORE = """
local ready = {SUCCESS = true, FAILURE = true, REVOKED = true}
local stored = 0
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  local final = false
  if current then
    local ok, doc = pcall(cjson.decode, current)
    final = ok and type(doc) == 'table' and ready[doc['status']] == true
  end
  if not final then
    if tonumber(ARGV[1]) > 0 then
      redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
    else
      redis.call('SET', key, ARGV[i + 1])
    end
    redis.call('PUBLISH', key, ARGV[i + 1])
    stored = stored + 1
  end
end
return stored
"""

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
