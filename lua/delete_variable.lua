-- Delete one variable by name or id.
-- Contract: DELETE_VARIABLE in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms, ref, log_max_len
-- Returns: {1} no session; {2} no such variable; {0, revision, id}.
local now, ref = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
local id = redis.call('HGET', KEYS[3], ref) or ref
local name = redis.call('HGET', KEYS[2], 'm:' .. id)
if not name then return {2} end
local version = redis.call('HGET', KEYS[2], 'n:' .. id)
local var_type = redis.call('HGET', KEYS[2], 't:' .. id)
redis.call('HDEL', KEYS[3], name)
redis.call('HDEL', KEYS[2], 'd:' .. id, 'm:' .. id, 't:' .. id, 'v:' .. id, 'n:' .. id, 'u:' .. id)
local rev = ub_commit(EVENT_DELETED, now, 1, ub_change(version, id, name, var_type, VALUE_DELETED), ARGV[3])
return {0, rev, id}
