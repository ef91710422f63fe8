-- Where a watcher stands: the current revision and the oldest revision the change log still holds.
-- A watched session is in use, so this also marks it active and refreshes the TTL of its keys.
-- KEYS: session, vars, names, log
-- ARGV: now_ms
-- Returns: false when the session does not exist, else {revision, oldest_logged_revision_or_0}.
local rev = redis.call('HGET', KEYS[1], 'revision')
if not rev then return false end
redis.call('HSET', KEYS[1], 'last_active', ARGV[1])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
local first = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', 1)
local oldest = 0
if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
return {tonumber(rev), oldest}
