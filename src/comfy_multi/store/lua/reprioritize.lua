-- Change a job's class and/or move it to the front of its class.
-- KEYS[1] prefix
-- ARGV[1] job id, ARGV[2] new class ("" keeps it), ARGV[3] "1" to move to front
-- Returns "ok", "missing", or the state of a job that is no longer pending.
local id = ARGV[1]
local job = K.job(id)
local f = redis.call('HMGET', job, 'state', 'user', 'cls', 'seq')
if not f[1] then return 'missing' end
if f[1] ~= 'pending' then return f[1] end
local u, old = f[2], tonumber(f[3])
local c = old
if ARGV[2] ~= '' then c = tonumber(ARGV[2]) end
local seq = tonumber(f[4])
if ARGV[3] == '1' then seq = -redis.call('INCR', K.frontseq) end
remove_pending(id, old, u)
redis.call('HSET', job, 'cls', c, 'seq', num(seq))
add_pending(id, c, u, seq)
emit('updated', id)
return 'ok'
