-- A worker could not finish a job: fail it, or put it back at its old place.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] error JSON, ARGV[4] mode
-- ("fail", "retry": requeue while attempts remain, "release": requeue and
-- do not count the attempt), ARGV[5] max attempts, ARGV[6] history bound,
-- ARGV[7] record TTL ms
-- Returns "failed", "requeued", or why the lease is gone.
local id, mode = ARGV[1], ARGV[4]
local why = running_with(id, ARGV[2])
if why ~= 'ok' then return why end
local job = k_job(id)
local f = redis.call('HMGET', job, 'user', 'worker', 'attempts', 'started_ms')
redis.call('HINCRBY', k_worker(f[2]), 'busy_ms', NOW - tonumber(f[4]))
if mode == 'release' then
  redis.call('HINCRBY', job, 'attempts', -1)
  requeue(id, 'released by worker')
  return 'requeued'
end
redis.call('HINCRBY', k_worker(f[2]), 'failures', 1)
if mode == 'retry' and tonumber(f[3]) < tonumber(ARGV[5]) then
  requeue(id, 'worker reported a retryable failure')
  return 'requeued'
end
leave_running(id, f[1], f[2])
finish(id, 'failed', tonumber(ARGV[6]), tonumber(ARGV[7]), {error = ARGV[3]})
return 'failed'
