-- Stage one chunk of a large import (see bridge_server/importer.py); import_session.lua commits it.
-- Writes only the staging keys, which no reader looks at, so a failed or abandoned import leaves
-- nothing behind once their short TTL runs out. Staging the same chunk twice writes the same fields.
-- Contract: IMPORT_STAGE in bridge_server/contracts.py; prelude: bridge_server/scripts.py.
-- KEYS: staged_vars, staged_names, staged_event
-- ARGV: staging_ttl_seconds, event_part_field ("<chunk_size>:<chunk_index>"),
--       then per variable 7 values: id, name, type, definition_blob, value_blob, version, updated_at
-- Returns: {0, the number of variables staged by this call}.
local parts = {}
for i = 3, #ARGV, 7 do
  local id, name, var_type, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 5]
  redis.call('HSET', KEYS[2], name, ub_suffix_of(id))
  redis.call('HSET', KEYS[1], id, ub_record(version, ARGV[i + 6], var_type, ARGV[i + 3], ARGV[i + 4]))
  -- The staged import's event lists each variable without its value (read it).
  parts[#parts + 1] = ub_change(version, id, name, var_type, VALUE_OMITTED)
end
redis.call('HSET', KEYS[3], ARGV[2], table.concat(parts))
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
return {0, #parts}
