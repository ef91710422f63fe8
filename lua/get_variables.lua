-- Read variables by name or id, and mark the session active.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, ref...
-- Returns: false when the session does not exist, else one entry per ref:
--          false when not found, else {id, definition_blob, value_blob, version, updated_at}.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last_active', ARGV[1])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
local out = {}
for i = 2, #ARGV do
  local ref = ARGV[i]
  -- A name wins over an id: a variable may well be named like another's id.
  local id = redis.call('HGET', KEYS[3], ref) or ref
  local s = redis.call('HMGET', KEYS[2], 'd:' .. id, 'v:' .. id, 'n:' .. id, 'u:' .. id)
  if s[1] then out[i - 1] = {id, s[1], s[2], s[3], s[4]} else out[i - 1] = false end
end
return out
