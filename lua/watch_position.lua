-- The session's current revision, for a watcher deciding where to replay from.
-- A watched session is in use, so this also marks it active and refreshes the TTL of its keys.
-- KEYS: session, vars, names, log
-- ARGV: now_ms
-- Returns: false when the session does not exist, else the revision.
local rev = redis.call('HGET', KEYS[1], 'revision')
if not rev then return false end
redis.call('HSET', KEYS[1], 'last_active', ARGV[1])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
return tonumber(rev)
