-- Create a session, or refresh it if it exists (create is idempotent).
-- KEYS: session, vars, names, log
-- ARGV: now_ms, ttl_seconds, metadata_blob
-- Returns: {created (0|1), created_at, last_active, ttl, metadata, revision, variable_count}
local now, ttl = ARGV[1], tonumber(ARGV[2])
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'created_at', now, 'last_active', now, 'ttl', ttl,
             'metadata', ARGV[3], 'revision', 0)
  created = 1
else
  redis.call('HSET', KEYS[1], 'last_active', now)
  ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
local s = redis.call('HMGET', KEYS[1], 'created_at', 'last_active', 'ttl', 'metadata', 'revision')
return {created, s[1], s[2], s[3], s[4], s[5], redis.call('HLEN', KEYS[3])}
