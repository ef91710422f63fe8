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
-- Two calls whatever the batch's size: every ref's id, then every id's fields (a call from Lua
-- costs more than the fields it reads).
local refs = {}
for i = 3, #ARGV do refs[i - 2] = ARGV[i] end
local ids = ub_chunked('HMGET', KEYS[3], refs, 1000)
local fields = {}
for k, ref in ipairs(refs) do
  -- A name wins over an id: a variable may well be named like another's id.
  local id = ids[k] or ref
  ids[k] = id
  local n = #fields
  fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'd:' .. id, 'v:' .. id, 'n:' .. id, 'u:' .. id
end
local s = ub_chunked('HMGET', KEYS[2], fields, 1000)
local out = {}
for k = 1, #refs do
  local f = 4 * k - 3
  if s[f] then out[k] = {ids[k], s[f], s[f + 1], s[f + 2], s[f + 3]} else out[k] = false end
end
return {0, tonumber(ttl), out, tonumber(session[2])}
