-- Read variables by name or id; with touch = 1 also mark the session active (refresh its TTL).
-- Reads touch only now and then (the frontend decides), so that a read is not a write: under
-- appendfsync always every write costs a disk flush, and writes replicate.
-- Contract: GET_VARIABLES in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, touch (0|1), ref...
-- Returns: {1} when the session does not exist, else {0, ttl, entries, revision} with one entry per
--          ref: false when not found, else {id, definition_blob, value_blob, version, updated_at};
--          revision is the session's, which every value read here is the state at (one atomic read).
local session = redis.call('HMGET', KEYS[1], 'ttl', 'revision')
local ttl = session[1]
if not ttl then return {1} end
if ARGV[2] == '1' then ub_touch(ARGV[1], ttl) end
local out = {}
for i = 3, #ARGV do
  local ref = ARGV[i]
  -- A name wins over an id: a variable may well be named like another's id.
  local id = redis.call('HGET', KEYS[3], ref) or ref
  local s = redis.call('HMGET', KEYS[2], 'd:' .. id, 'v:' .. id, 'n:' .. id, 'u:' .. id)
  if s[1] then out[i - 2] = {id, s[1], s[2], s[3], s[4]} else out[i - 2] = false end
end
return {0, tonumber(ttl), out, tonumber(session[2])}
