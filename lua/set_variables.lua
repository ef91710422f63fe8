-- Update one or several variables. Every precondition of every item is checked before the first
-- write, so an atomic call that fails changes nothing (Redis would not roll back a half-done script).
-- Contract: SET_VARIABLES (statuses SetVariablesStatus, SetItemStatus) in bridge_server/contracts.py;
-- prelude: bridge_server/scripts.py.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms, atomic (0|1), log_max_len, event_value_budget, touch (0|1: refresh last_active and
--       the TTL, when the frontend finds it due), writer (the writing context's token, or ''),
--       items: every item in one string (bridge_server.contracts.set_items), one after another
--       "<id> <expected_version or nothing> <value length>\n<value blob>", where id is the
--       definition the frontend validated the value against
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

local ids, expected_versions, values = {}, {}, {}
local items_blob, at = ARGV[7], 1
while at <= #items_blob do
  local id, expected_version, length, start = string.match(items_blob, '^(%S+) (%d*) (%d+)\n()', at)
  local k = #ids + 1
  ids[k], expected_versions[k] = id, expected_version
  at = start + tonumber(length)
  values[k] = string.sub(items_blob, start, at - 1)
end

-- Two calls whatever the batch's size (a call from Lua costs more than the fields it touches):
-- every id's record, then one write of all the changed records. A live id is its name's variable
-- (a name is re-registered only after its variable is deleted), so the names hash is read only
-- for an id without a record: the name may have another variable now.
local records = ub_chunked('HMGET', KEYS[2], ids)

-- Per item, in parallel arrays (a table per item costs more than the item's own work): its status
-- and detail, and for an item to apply its new version, type and definition blob. A variable may
-- appear more than once in a call: `after[id]` is its last item to apply so far, so an
-- expected_version is compared with the version that item leaves.
local statuses, details, versions, types, definitions = {}, {}, {}, {}, {}
local failed, after = false, {}
for k = 1, #ids do
  local id, expected_version = ids[k], expected_versions[k]
  local version, var_type, definition
  local prior = after[id]
  if prior then
    version, var_type, definition = versions[prior], types[prior], definitions[prior]
  elseif records[k] then
    version, var_type, definition = ub_parse(records[k])
  end
  local status, detail = 0, 0
  if not version then
    local name = ub_name_of(id)
    local current = ub_id_of(name, redis.call('HGET', KEYS[3], name))
    if current ~= name and current ~= id then
      status, detail = 2, current
    else
      status = 1
    end
  elseif expected_version ~= '' and expected_version ~= version then
    status, detail = 3, tonumber(version)
  end
  if status ~= 0 then
    failed = true
  else
    detail = tonumber(version) + 1
    -- %.0f, not tostring: past 10^14 tostring writes an exponent (versions go up to 2^53 - 1).
    versions[k], types[k], definitions[k] = string.format('%.0f', detail), var_type, definition
    after[id] = k
  end
  statuses[k], details[k] = status, detail
end

local out = {0, 0, tonumber(ttl)}
local function with_statuses()
  local n = #out
  for k = 1, #ids do out[n + 2 * k - 1], out[n + 2 * k] = statuses[k], details[k] end
  return out
end
if atomic and failed then return with_statuses() end

-- Later items of the same variable come later in the one HSET, and the last value of a field wins.
local parts, writes, changed = {}, {}, 0
for k = 1, #ids do
  if statuses[k] == 0 then
    local id, value, version, var_type = ids[k], values[k], versions[k], types[k]
    local n = #writes
    writes[n + 1], writes[n + 2] = id, ub_record(version, now, var_type, definitions[k], value)
    if #value <= budget then
      budget = budget - #value
      parts[#parts + 1] = ub_change(version, id, ub_name_of(id), var_type, value)
    else
      parts[#parts + 1] = ub_change(version, id, ub_name_of(id), var_type, VALUE_OMITTED)
    end
    changed = changed + 1
  end
end
if changed > 0 then
  ub_chunked('HSET', KEYS[2], writes)
  out[2] = ub_commit(EVENT_UPDATED, now, changed, table.concat(parts), max_len, touch and ttl, writer)
elseif touch then
  ub_refresh(ttl)
end
return with_statuses()
