-- Delete one variable by name or id.
-- Contract: DELETE_VARIABLE in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms, ref, log_max_len
-- Returns: {1} no session; {2} no such variable; {0, revision, id}.
local now, ref = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
local id = ub_id_of(ref, redis.call('HGET', KEYS[3], ref))
local record = redis.call('HGET', KEYS[2], id)
if not record then return {2} end
local version, var_type = ub_parse(record)
local name = ub_name_of(id)
redis.call('HDEL', KEYS[3], name)
redis.call('HDEL', KEYS[2], id)
local rev = ub_commit(EVENT_DELETED, now, 1, ub_change(version, id, name, var_type, VALUE_DELETED), ARGV[3])
return {0, rev, id}
