-- A worker could not finish a job: fail it, or put it back at its old place.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] token, ARGV[3] worker id, ARGV[4] error JSON,
-- ARGV[5] mode ("fail", "retry": requeue while attempts remain, "release":
-- requeue and do not count the attempt), ARGV[6] max attempts, ARGV[7]
-- history bound, ARGV[8] record TTL ms
-- Returns "failed", "requeued", or why the lease is gone.
local id, mode = ARGV[1], ARGV[5]
local why = running_with(id, ARGV[2], ARGV[3])
if why ~= 'ok' then return why end
local job = K.job(id)
local f = redis.call('HMGET', job, 'user', 'worker', 'attempts', 'started_ms')
redis.call('HINCRBY', K.worker(f[2]), 'busy_ms', NOW - tonumber(f[4]))
if mode == 'release' then
  redis.call('HINCRBY', job, 'attempts', -1)
  requeue(id, 'released by worker')
  return 'requeued'
end
redis.call('HINCRBY', K.worker(f[2]), 'failures', 1)
if mode == 'retry' and tonumber(f[3]) < tonumber(ARGV[6]) then
  requeue(id, 'worker reported a retryable failure')
  return 'requeued'
end
leave_running(id, f[1], f[2])
finish(id, 'failed', tonumber(ARGV[7]), tonumber(ARGV[8]), {error = ARGV[4]})
return 'failed'
