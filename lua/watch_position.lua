-- The session's current revision, for a watcher deciding where to replay from.
-- A watched session is in use, so this also marks it active and refreshes the TTL of its keys.
-- Contract: WATCH_POSITION in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms
-- Returns: {1} when the session does not exist, else {0, revision}.
local rev = redis.call('HGET', KEYS[1], 'revision')
if not rev then return {1} end
ub_touch(ARGV[1])
return {0, tonumber(rev)}
