-- Create a session, or refresh it if it exists (create is idempotent).
-- Contract (KEYS, ARGV, statuses): CREATE_SESSION in bridge_server/contracts.py; prelude: scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, ttl_seconds, metadata_blob
-- Returns: {0 refreshed | 1 created, created_at, last_active, ttl, metadata, revision, variable_count}
local now, ttl = ARGV[1], tonumber(ARGV[2])
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'created_at', now, 'last_active', now, 'ttl', ttl,
             'metadata', ARGV[3], 'revision', 0)
  created = 1
  ub_refresh(ttl)
else
  ub_touch(now)
end
local s = ub_session_info()
return {created, s[1], s[2], s[3], s[4], s[5], s[6]}
