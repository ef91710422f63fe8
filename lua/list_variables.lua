-- Read every variable of a session; with touch = 1 also mark the session active.
-- Contract: LIST_VARIABLES in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, touch (0|1)
-- Returns: {1} when the session does not exist, else {0, ttl, flat HGETALL of the vars hash}.
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return {1} end
if ARGV[2] == '1' then ub_touch(ARGV[1], ttl) end
return {0, tonumber(ttl), redis.call('HGETALL', KEYS[2])}
