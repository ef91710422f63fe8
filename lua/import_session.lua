-- Create a whole session from an import, with the variables' own ids, versions and timestamps.
-- Every precondition is checked before the first write; a failure writes nothing to the session
-- (it only drops this import's own staging keys, which nothing else reads).
-- Contract: IMPORT_SESSION in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel, staged_vars, staged_names, staged_event
-- ARGV: now_ms, ttl_seconds, metadata_blob, revision (of the import: the source's revision + 1),
--       digest, log_max_len, variable_count, mode, event_part_fields (staged: "<chunk_size>:<index>" of
--       every chunk, space separated), include_values (inline: 0|1),
--       then, inline only, per variable 7 values: id, name, type, definition_blob, value_blob,
--       version, updated_at
--   mode 'check': only check the preconditions; 'inline': the variables are in ARGV;
--   'staged': they were staged by import_stage.lua and are moved into place with RENAME.
-- Returns: {0, session...} imported (mode 'check': may be imported, and nothing more);
--          {1, session...} this very import (same digest) is already there: nothing written;
--          {2} the session exists with other content; {3} the staged data is incomplete (expired).
--   session... = created_at, last_active, ttl, metadata, revision, variable_count
local now, ttl, rev, digest, count, mode = ARGV[1], ARGV[2], ARGV[4], ARGV[5], tonumber(ARGV[7]), ARGV[8]

local function drop_staging()
  if mode == 'staged' then redis.call('DEL', KEYS[6], KEYS[7], KEYS[8]) end
end

-- Preconditions.
local created_at = now
local stored = redis.call('HMGET', KEYS[1], 'revision', 'import_digest', 'created_at')
if stored[1] then
  if stored[2] == digest then
    drop_staging()
    local s = ub_session_info()
    return {1, s[1], s[2], s[3], s[4], s[5], s[6]}
  end
  -- A session opened before the import but never written to may be imported into.
  if stored[1] ~= '0' or redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
    drop_staging()
    return {2}
  end
  created_at = stored[3]
end
if mode == 'check' then return {0} end
local parts = {}
if mode == 'staged' then
  if redis.call('HLEN', KEYS[7]) ~= count or redis.call('HLEN', KEYS[6]) ~= count then
    drop_staging()
    return {3}
  end
  for field in string.gmatch(ARGV[9], '%S+') do
    local part = redis.call('HGET', KEYS[8], field)
    if not part then drop_staging(); return {3} end
    parts[#parts + 1] = part
  end
end

-- Writes.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
if mode == 'staged' then
  redis.call('RENAME', KEYS[6], KEYS[2])
  redis.call('RENAME', KEYS[7], KEYS[3])
  redis.call('DEL', KEYS[8])
else
  local include_values = ARGV[10] == '1'
  for i = 11, #ARGV, 7 do
    local id, name, var_type, value, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5]
    redis.call('HSET', KEYS[3], name, ub_suffix_of(id))
    redis.call('HSET', KEYS[2], id, ub_record(version, ARGV[i + 6], var_type, ARGV[i + 3], value))
    parts[#parts + 1] = ub_change(version, id, name, var_type, include_values and value or VALUE_OMITTED)
  end
end
redis.call('HSET', KEYS[1], 'created_at', created_at, 'last_active', now, 'ttl', ttl, 'metadata', ARGV[3],
           'revision', rev, 'import_digest', digest)
-- The revision is the import's own (not bumped): the session continues its source's history.
ub_emit(ub_event(EVENT_IMPORTED, rev, now, count, table.concat(parts)), rev, ARGV[6])
ub_refresh(ttl)
local s = ub_session_info()
return {0, s[1], s[2], s[3], s[4], s[5], s[6]}
