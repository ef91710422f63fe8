-- Delete a session whole and tell its watchers, with one last event.
-- KEYS: session, vars, names, log, channel
-- ARGV: now_ms
-- Returns: 0 when there was no such session, else the revision of the final event.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local rev = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
-- Event layout: see bridge_server/events.py.
redis.call('SPUBLISH', KEYS[5], 'UB1 ' .. rev .. ' 4 ' .. ARGV[1] .. ' 0\n')
return rev
