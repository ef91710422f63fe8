-- The session's current revision, for a watcher deciding where to replay from. A watched session
-- is in use: with touch = 1 this also marks it active and refreshes the TTL of its keys. The
-- frontend asks for that only now and then (as for reads), so that a watcher's periodic check is
-- a read, not a write (under appendfsync always every write costs a disk flush).
-- Contract: WATCH_POSITION in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, touch (0|1)
-- Returns: {1} when the session does not exist, else {0, revision, ttl}.
local session = redis.call('HMGET', KEYS[1], 'revision', 'ttl')
if not session[1] then return {1} end
if ARGV[2] == '1' then ub_touch(ARGV[1], session[2]) end
return {0, tonumber(session[1]), tonumber(session[2])}
