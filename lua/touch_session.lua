-- Read a session and mark it active, refreshing the TTL of all its keys (get and heartbeat).
-- KEYS: session, vars, names, log
-- ARGV: now_ms
-- Returns: false when the session does not exist, else
--          {created_at, last_active, ttl, metadata, revision, variable_count}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last_active', ARGV[1])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
local s = redis.call('HMGET', KEYS[1], 'created_at', 'last_active', 'ttl', 'metadata', 'revision')
return {s[1], s[2], s[3], s[4], s[5], redis.call('HLEN', KEYS[3])}
