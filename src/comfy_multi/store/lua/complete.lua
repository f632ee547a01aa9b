-- A worker finished a job successfully: record it, the worker's tallies and
-- the room's moving average of run times, all by Redis's clock.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] worker id, ARGV[4] outputs JSON,
-- ARGV[5] meta JSON, ARGV[6] history bound per user, ARGV[7] record TTL ms,
-- ARGV[8] weight of this run in the average (0..1)
-- Returns "ok" or why the lease is gone.
local id = ARGV[1]
local why = running_with(id, ARGV[2], ARGV[3])
if why ~= 'ok' then return why end
local f = redis.call('HMGET', K.job(id), 'user', 'worker', 'started_ms')
local run_ms = NOW - tonumber(f[3])
leave_running(id, f[1], f[2])
redis.call('HINCRBY', K.worker(f[2]), 'jobs_done', 1)
redis.call('HINCRBY', K.worker(f[2]), 'busy_ms', run_ms)
local weight = tonumber(ARGV[8])
local avg = tonumber(redis.call('HGET', K.stats, 'run_ms_avg'))
if avg then avg = (1 - weight) * avg + weight * run_ms else avg = run_ms end
redis.call('HSET', K.stats, 'run_ms_avg', string.format('%.1f', avg))
finish(id, 'done', tonumber(ARGV[6]), tonumber(ARGV[7]), {outputs = ARGV[4], meta = ARGV[5]})
return 'ok'
