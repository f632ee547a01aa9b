-- Extend the lease of a running job held by this worker with this token.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] worker id, ARGV[4] lease ms
-- Returns "ok", or why the lease is gone (missing, stale, other_worker, or
-- the job's state).
local why = running_with(ARGV[1], ARGV[2], ARGV[3])
if why ~= 'ok' then return why end
redis.call('ZADD', K.running, 'XX', NOW + tonumber(ARGV[4]), ARGV[1])
return 'ok'
