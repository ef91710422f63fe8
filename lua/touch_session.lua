-- Read a session and mark it active, refreshing the TTL of all its keys (get and heartbeat).
-- Contract: TOUCH_SESSION in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms
-- Returns: {1} when the session does not exist, else
--          {0, created_at, last_active, ttl, metadata, revision, variable_count}
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
ub_touch(ARGV[1])
local s = ub_session_info()
return {0, s[1], s[2], s[3], s[4], s[5], s[6]}
