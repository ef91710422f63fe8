-- Where a watcher stands: the current revision and the oldest revision the change log still holds.
-- KEYS: session, log
-- Returns: false when the session does not exist, else {revision, oldest_logged_revision_or_0}.
local rev = redis.call('HGET', KEYS[1], 'revision')
if not rev then return false end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = 0
if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
return {tonumber(rev), oldest}
