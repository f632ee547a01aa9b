-- Requeue (or, past the attempt bound, fail) running jobs whose lease ran out.
-- KEYS[1] prefix
-- ARGV[1] max attempts, ARGV[2] history bound, ARGV[3] record TTL ms, ARGV[4] batch
-- Returns the number of jobs handled.
local maxa = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', K.running, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  local job = K.job(id)
  local f = redis.call('HMGET', job, 'user', 'worker', 'attempts')
  if not f[1] then
    redis.call('ZREM', K.running, id)
  else
    local attempts = tonumber(f[3])
    if f[2] and f[2] ~= '' then redis.call('HINCRBY', K.worker(f[2]), 'failures', 1) end
    if attempts >= maxa then
      leave_running(id, f[1], f[2])
      local msg = 'worker lost ' .. attempts .. ' times'
      finish(id, 'failed', tonumber(ARGV[2]), tonumber(ARGV[3]),
        {error = cjson.encode({type = 'worker_lost', message = msg})})
    else
      requeue(id, 'worker lost (lease expired)')
    end
  end
end
return #ids
