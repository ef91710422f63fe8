-- Read every variable of a session, and mark the session active.
-- KEYS: session, vars, names, log
-- ARGV: now_ms
-- Returns: false when the session does not exist, else the flat HGETALL of the vars hash.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last_active', ARGV[1])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
return redis.call('HGETALL', KEYS[2])
