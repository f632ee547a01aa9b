-- Prepended to every script. KEYS[1] is the key prefix (store/keys.py PREFIX);
-- every key is derived from it with the spelling of store/keys.py.
-- Standalone Redis/Valkey only: per-user keys are not declared in KEYS.
redis.replicate_commands()
local P = KEYS[1]
local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Fair scores: front-moved jobs first, then users never served (by oldest job),
-- then served users by the tick of their last claim (least recent first).
local FRONT_BASE = -2 ^ 51
local NEVER_BASE = -2 ^ 50

local function num(x) return string.format('%.17g', x) end
local function k_job(id) return P .. 'job:' .. id end
local function k_all(c) return P .. 'pending:' .. c .. ':all' end
local function k_users(c) return P .. 'pending:' .. c .. ':users' end
local function k_user(c, u) return P .. 'pending:' .. c .. ':u:' .. u end
local function k_upending(u) return P .. 'upending:' .. u end
local function k_urunning(u) return P .. 'urunning:' .. u end
local function k_uhistory(u) return P .. 'uhistory:' .. u end
local function k_worker(w) return P .. 'worker:' .. w end

local SUMMARY = {'id', 'user', 'state', 'cls', 'seq', 'worker', 'attempts', 'client_id',
                 'queued_ms', 'started_ms', 'finished_ms', 'error'}

local function summary(id)
  local vals = redis.call('HMGET', k_job(id), unpack(SUMMARY))
  local out = {}
  for i, f in ipairs(SUMMARY) do
    if vals[i] then out[f] = vals[i] end
  end
  return out
end

-- Every state change is published and kept in a short stream for catch-up.
local function emit(event, id, extra)
  local ev = {event = event, ts = NOW, job = summary(id)}
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  local s = cjson.encode(ev)
  redis.call('PUBLISH', P .. 'ev', s)
  redis.call('XADD', P .. 'events', 'MAXLEN', '~', 10000, '*', 'e', s)
end

local function rescore(c, u)
  local first = redis.call('ZRANGE', k_user(c, u), 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', k_users(c), u)
    return
  end
  local seq = tonumber(first[2])
  local score
  if seq < 0 then
    score = FRONT_BASE + seq
  else
    local tick = redis.call('HGET', P .. 'lastserved', u)
    if tick then score = tonumber(tick) else score = NEVER_BASE + seq end
  end
  redis.call('ZADD', k_users(c), num(score), u)
end

local function add_pending(id, c, u, seq)
  redis.call('ZADD', k_user(c, u), num(seq), id)
  redis.call('ZADD', k_all(c), num(seq), id)
  redis.call('ZADD', k_upending(u), num(seq), id)
  rescore(c, u)
end

local function remove_pending(id, c, u)
  redis.call('ZREM', k_user(c, u), id)
  redis.call('ZREM', k_all(c), id)
  redis.call('ZREM', k_upending(u), id)
  rescore(c, u)
end

local function leave_running(id, u, w)
  redis.call('ZREM', P .. 'running', id)
  redis.call('ZREM', k_urunning(u), id)
  if w and w ~= '' then
    redis.call('HDEL', k_worker(w), 'current_job')
  end
end

-- Final states: done, failed, cancelled. ARGV-independent; limits passed in.
local function finish(id, state, history_max, ttl_ms, fields)
  local job = k_job(id)
  local u = redis.call('HGET', job, 'user')
  redis.call('HSET', job, 'state', state, 'finished_ms', NOW)
  if fields then
    for k, v in pairs(fields) do redis.call('HSET', job, k, v) end
  end
  -- a new token makes any report from the worker that held it fail
  redis.call('HINCRBY', job, 'token', 1)
  redis.call('ZADD', k_uhistory(u), NOW, id)
  redis.call('ZREMRANGEBYRANK', k_uhistory(u), 0, -(history_max + 1))
  redis.call('ZADD', P .. 'finished', NOW, id)
  redis.call('ZREMRANGEBYRANK', P .. 'finished', 0, -20001)
  redis.call('PEXPIRE', job, ttl_ms)
  emit('finished', id)
end

-- Back to the job's old place (its seq) in its class.
local function requeue(id, why)
  local job = k_job(id)
  local f = redis.call('HMGET', job, 'user', 'cls', 'seq', 'worker')
  leave_running(id, f[1], f[4])
  redis.call('HSET', job, 'state', 'pending', 'worker', '')
  add_pending(id, tonumber(f[2]), f[1], tonumber(f[3]))
  emit('requeued', id, {reason = why})
end

local function running_with(id, token)
  local f = redis.call('HMGET', k_job(id), 'state', 'token')
  if not f[1] then return 'missing' end
  if f[1] ~= 'running' then return f[1] end
  if f[2] ~= token then return 'stale' end
  return 'ok'
end
