-- Put a new job in the queue.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] user, ARGV[3] class, ARGV[4] default per-user cap,
-- ARGV[5] "1" to place it at the front, ARGV[6..] job hash field/value pairs
-- Returns {"ok", seq, queued ms}, {"cap", cap} or {"exists", 0}.
local id, u, c = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', K.job(id)) == 1 then return {'exists', 0} end
local cap = tonumber(redis.call('HGET', K.caps, u)
  or redis.call('HGET', K.config, 'cap') or ARGV[4])
if cap > 0 and redis.call('ZCARD', K.upending(u)) >= cap then
  return {'cap', cap}
end
local seq
if ARGV[5] == '1' then
  seq = -redis.call('INCR', K.frontseq)
else
  seq = redis.call('INCR', K.seq)
end
local job = K.job(id)
for i = 6, #ARGV, 2 do
  redis.call('HSET', job, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', job, 'id', id, 'user', u, 'cls', c, 'seq', seq, 'state', 'pending',
  'queued_ms', NOW, 'attempts', 0, 'token', '')
add_pending(id, c, u, seq)
emit('queued', id)
return {'ok', seq, NOW}
