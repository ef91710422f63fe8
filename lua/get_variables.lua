-- Read variables by name or id; with touch = 1 also mark the session active (refresh its TTL).
-- Reads touch only now and then (the frontend decides), so that a read is not a write: under
-- appendfsync always every write costs a disk flush, and writes replicate.
-- Contract: GET_VARIABLES in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log
-- ARGV: now_ms, touch (0|1), refs (every name or id, separated by spaces: one argument, not one
--       per ref, which redis-py would encode one by one in Python)
-- Returns: {1} when the session does not exist, else {0, ttl, entries, revision} with one entry per
--          ref: false when not found, else {id, record} (bridge_server/records.py);
--          revision is the session's, which every value read here is the state at (one atomic read).
local session = redis.call('HMGET', KEYS[1], 'ttl', 'revision')
local ttl = session[1]
if not ttl then return {1} end
if ARGV[2] == '1' then ub_touch(ARGV[1], ttl) end
-- Two calls whatever the batch's size (a call from Lua costs more than the fields it reads): every
-- ref's id, then every id's record.
local refs = {}
for ref in string.gmatch(ARGV[3], '%S+') do refs[#refs + 1] = ref end
local ids = ub_chunked('HMGET', KEYS[3], refs)
for k, ref in ipairs(refs) do
  -- A name wins over an id: a variable may well be named like another's id.
  ids[k] = ub_id_of(ref, ids[k])
end
local records = ub_chunked('HMGET', KEYS[2], ids)
local out = {}
for k = 1, #refs do
  if records[k] then out[k] = {ids[k], records[k]} else out[k] = false end
end
return {0, tonumber(ttl), out, tonumber(session[2])}
