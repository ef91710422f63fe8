-- Delete one variable by name or id.
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
local rev = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('HSET', KEYS[1], 'last_active', now)
local event = table.concat({'UB1 ', rev, ' 3 ', now, ' 1\n', version, ' ', id, ' ', name, ' ', var_type, ' -1\n'})
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[3], rev .. '-0', 'e', event)
redis.call('SPUBLISH', KEYS[5], event)
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
return {0, rev, id}
