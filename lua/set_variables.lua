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

-- A variable may appear more than once in a call: `after` holds what the earlier items left, so an
-- expected_version is compared with the version that item replaces.
local items, statuses, failed, after = {}, {}, false, {}
for k = 1, #ids do
  local id, expected_version = ids[k], expected_versions[k]
  local about = after[id]
  if not about then
    -- {version, type, definition blob}
    about = records[k] and {ub_parse(records[k])} or {}
  end
  local version = about[1]
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
  local item = {id, values[k], status}
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
