-- Delete a session whole and tell its watchers, with one last event (published; the log goes too).
-- Contract: DELETE_SESSION in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms
-- Returns: {1} when there was no such session, else {0, revision of the final event}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
local rev = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('SPUBLISH', KEYS[5], ub_event(EVENT_SESSION_DELETED, rev, ARGV[1], 0, ''))
return {0, rev}
