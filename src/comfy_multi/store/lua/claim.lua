-- Give the next job to a free worker by the claim rule of _common.lua (most
-- urgent class first, then the queue mode: fifo, oldest seq; fair, least
-- recently served user's oldest job), skipping jobs whose nodes the worker
-- lacks (bounded look-ahead).
-- KEYS[1] prefix
-- ARGV[1] worker id, ARGV[2] lease ms, ARGV[3] look-ahead, ARGV[4] the lease
-- token this claim draws (random, from the caller)
-- Returns the job hash as a flat list, or nil.
local w, lease, look, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local cfg = redis.call('HMGET', K.config, 'paused', 'mode')
if cfg[1] == '1' then return nil end
if redis.call('HGET', K.worker(w), 'draining') == '1' then return nil end
local id, u, c = next_job(LIVE, cfg[2] or 'fair', look, fits_worker(w))
if not id then return nil end
LIVE.take(c, u, id)
local job = K.job(id)
redis.call('HINCRBY', job, 'attempts', 1)
redis.call('HSET', job, 'state', 'running', 'worker', w, 'started_ms', NOW, 'token', token)
redis.call('ZADD', K.running, NOW + lease, id)
redis.call('ZADD', K.urunning(u), NOW, id)
redis.call('HSET', K.worker(w), 'current_job', id)
emit('started', id)
return redis.call('HGETALL', job)
