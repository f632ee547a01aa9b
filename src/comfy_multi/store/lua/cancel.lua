-- Cancel a pending or running job. A running job's worker is told through
-- its cancel set and its later reports are refused (new token).
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] owner to enforce ("" for an admin),
-- ARGV[3] history bound, ARGV[4] record TTL ms
-- Returns "ok", "missing", or the final state the job already had.
local id = ARGV[1]
local job = K.job(id)
local f = redis.call('HMGET', job, 'state', 'user', 'cls', 'worker')
if not f[1] or (ARGV[2] ~= '' and ARGV[2] ~= f[2]) then return 'missing' end
if f[1] == 'pending' then
  remove_pending(id, tonumber(f[3]), f[2])
elseif f[1] == 'running' then
  leave_running(id, f[2], f[4])
  redis.call('SADD', K.worker_cancel(f[4]), id)
  redis.call('PEXPIRE', K.worker_cancel(f[4]), 3600000)
else
  return f[1]
end
finish(id, 'cancelled', tonumber(ARGV[3]), tonumber(ARGV[4]), nil)
return 'ok'
