-- A worker finished a job successfully.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] outputs JSON, ARGV[4] meta JSON,
-- ARGV[5] history bound per user, ARGV[6] record TTL ms
-- Returns "ok" or why the lease is gone.
local id = ARGV[1]
local why = running_with(id, ARGV[2])
if why ~= 'ok' then return why end
local f = redis.call('HMGET', k_job(id), 'user', 'worker', 'started_ms')
leave_running(id, f[1], f[2])
redis.call('HINCRBY', k_worker(f[2]), 'jobs_done', 1)
redis.call('HINCRBY', k_worker(f[2]), 'busy_ms', NOW - tonumber(f[3]))
finish(id, 'done', tonumber(ARGV[5]), tonumber(ARGV[6]), {outputs = ARGV[3], meta = ARGV[4]})
return 'ok'
