-- Extend the lease of a running job held with this fencing token.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] lease ms
-- Returns "ok", or why the lease is gone (missing, stale, or the job's state).
local why = running_with(ARGV[1], ARGV[2])
if why ~= 'ok' then return why end
redis.call('ZADD', P .. 'running', 'XX', NOW + tonumber(ARGV[3]), ARGV[1])
return 'ok'
