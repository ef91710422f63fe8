-- Register a new variable under a name that is free in the session.
-- Contract: REGISTER_VARIABLE in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms, name, id, definition_blob, value_blob, max_variables, log_max_len, type
-- Returns: {0, revision} registered; {1} no session; {2, existing_id} name taken; {3} too many variables.
local now, name, id, value = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
local existing = redis.call('HGET', KEYS[3], name)
if existing then return {2, ub_id_of(name, existing)} end
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[6]) then return {3} end

redis.call('HSET', KEYS[3], name, ub_suffix_of(id))
redis.call('HSET', KEYS[2], id, ub_record(0, now, ARGV[8], ARGV[4], value))
return {0, ub_commit(EVENT_REGISTERED, now, 1, ub_change(0, id, name, ARGV[8], value), ARGV[7])}
