-- Update one or several variables. Every precondition of every item is checked before the first
-- write, so an atomic call that fails changes nothing (Redis would not roll back a half-done script).
-- Contract: SET_VARIABLES (statuses SetVariablesStatus, SetItemStatus) in bridge_server/contracts.py;
-- prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms, atomic (0|1), log_max_len, event_value_budget, touch (0|1: refresh last_active and
--       the TTL, when the frontend finds it due), writer (the writing context's token, or ''),
--       then per item 4 values:
--       ref, expected_id (the definition the frontend validated against), expected_version or '', value_blob
-- Returns: {1} no session; else {0, revision_or_0, ttl, then per item: status, detail}
--   status 0 ok (detail = new version), 1 not found, 2 definition changed (detail = current id),
--   3 version conflict (detail = current version).
local now, atomic, max_len = ARGV[1], ARGV[2] == '1', ARGV[3]
-- The event carries values while they fit in the budget (a watcher's message limit); past it, a
-- change says only "version n exists" and watchers read the value if they need it.
local budget = tonumber(ARGV[4])
-- The session's TTL: read anyway for a refresh, and its absence says there is no session.
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return {1} end
local touch, writer = ARGV[5] == '1', ARGV[6]

-- Three calls whatever the batch's size (a call from Lua costs more than the fields it touches):
-- every ref's id, then every id's record, then one write of all the changed records.
local refs = {}
for i = 7, #ARGV, 4 do refs[#refs + 1] = ARGV[i] end
local ids = ub_chunked('HMGET', KEYS[3], refs)
for k, ref in ipairs(refs) do ids[k] = ub_id_of(ref, ids[k]) end
local records = ub_chunked('HMGET', KEYS[2], ids)

-- A variable may appear more than once in a call: `after` holds what the earlier items left, so an
-- expected_version is compared with the version that item replaces.
local items, statuses, failed, after = {}, {}, false, {}
for k = 1, #refs do
  local i = 4 * k + 3
  local id, expected_id, expected_version = ids[k], ARGV[i + 1], ARGV[i + 2]
  local about = after[id]
  if not about then
    -- {version, type, definition blob}
    about = records[k] and {ub_parse(records[k])} or {}
  end
  local version = about[1]
  local status, detail = 0, 0
  if not version then
    status = 1
  elseif id ~= expected_id then
    status, detail = 2, id
  elseif expected_version ~= '' and expected_version ~= version then
    status, detail = 3, tonumber(version)
  end
  local item = {id, ARGV[i + 3], status}
  if status ~= 0 then
    failed = true
  else
    -- %.0f, not tostring: past 10^14 tostring writes an exponent (versions go up to 2^53 - 1).
    local next_version = string.format('%.0f', tonumber(version) + 1)
    after[id] = {next_version, about[2], about[3]}
    item[4], item[5], item[6] = next_version, about[2], about[3]
  end
  items[k] = item
  statuses[k] = {status, detail}
end

local out = {0, 0, tonumber(ttl)}
if atomic and failed then
  for _, s in ipairs(statuses) do out[#out + 1] = s[1]; out[#out + 1] = s[2] end
  return out
end

-- Later items of the same variable come later in the one HSET, and the last value of a field wins.
local parts, writes, changed = {}, {}, 0
for k, item in ipairs(items) do
  if item[3] == 0 then
    local id, value, version = item[1], item[2], item[4]
    local n = #writes
    writes[n + 1], writes[n + 2] = id, ub_record(version, now, item[5], item[6], value)
    if #value <= budget then
      budget = budget - #value
      parts[#parts + 1] = ub_change(version, id, ub_name_of(id), item[5], value)
    else
      parts[#parts + 1] = ub_change(version, id, ub_name_of(id), item[5], VALUE_OMITTED)
    end
    statuses[k][2] = tonumber(version)
    changed = changed + 1
  end
end
if changed > 0 then
  ub_chunked('HSET', KEYS[2], writes)
  out[2] = ub_commit(EVENT_UPDATED, now, changed, table.concat(parts), max_len, touch and ttl, writer)
elseif touch then
  ub_refresh(ttl)
end
for _, s in ipairs(statuses) do out[#out + 1] = s[1]; out[#out + 1] = s[2] end
return out
