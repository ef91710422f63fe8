-- Read every variable of a session; with touch = 1 also mark the session active.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, touch (0|1)
-- Returns: false when the session does not exist, else {ttl, flat HGETALL of the vars hash}.
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return false end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'last_active', ARGV[1])
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return {tonumber(ttl), redis.call('HGETALL', KEYS[2])}
