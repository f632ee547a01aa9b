-- Prepended to every script, after the preamble store/scripts.py generates:
-- `K` (every key and key builder, from store/keys.py TEMPLATES, with the
-- prefix given as KEYS[1]) and `NCLASSES` (priority classes 0 .. NCLASSES-1).
-- Standalone Redis/Valkey only: per-user keys are not declared in KEYS.
redis.replicate_commands()
local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Fair scores: front-moved jobs first, then users never served (by oldest job),
-- then served users by the tick of their last claim (least recent first).
local FRONT_BASE = -2 ^ 51
local NEVER_BASE = -2 ^ 50

local function num(x) return string.format('%.17g', x) end

-- A user's score in one class, from the seq of their first job there and
-- the tick of their last claim (nil: never served).
local function fair_score(first_seq, last_tick)
  if first_seq < 0 then return FRONT_BASE + first_seq end
  if last_tick then return last_tick end
  return NEVER_BASE + first_seq
end

local SUMMARY = {'id', 'user', 'state', 'cls', 'seq', 'worker', 'attempts', 'client_id',
                 'queued_ms', 'started_ms', 'finished_ms', 'error'}

local function summary(id)
  local vals = redis.call('HMGET', K.job(id), unpack(SUMMARY))
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
  redis.call('PUBLISH', K.events_channel, s)
  redis.call('XADD', K.events_stream, 'MAXLEN', '~', 10000, '*', 'e', s)
end

local function rescore(c, u)
  local first = redis.call('ZRANGE', K.pending_user(c, u), 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', K.pending_users(c), u)
    return
  end
  local tick = redis.call('HGET', K.lastserved, u)
  redis.call('ZADD', K.pending_users(c), num(fair_score(tonumber(first[2]), tonumber(tick))), u)
end

local function add_pending(id, c, u, seq)
  redis.call('ZADD', K.pending_user(c, u), num(seq), id)
  redis.call('ZADD', K.pending_all(c), num(seq), id)
  redis.call('ZADD', K.upending(u), num(seq), id)
  rescore(c, u)
end

local function remove_pending(id, c, u)
  redis.call('ZREM', K.pending_user(c, u), id)
  redis.call('ZREM', K.pending_all(c), id)
  redis.call('ZREM', K.upending(u), id)
  rescore(c, u)
end

local function leave_running(id, u, w)
  redis.call('ZREM', K.running, id)
  redis.call('ZREM', K.urunning(u), id)
  if w and w ~= '' then
    redis.call('HDEL', K.worker(w), 'current_job')
  end
end

-- Final states: done, failed, cancelled. ARGV-independent; limits passed in.
local function finish(id, state, history_max, ttl_ms, fields)
  local job = K.job(id)
  local u = redis.call('HGET', job, 'user')
  redis.call('HSET', job, 'state', state, 'finished_ms', NOW)
  if fields then
    for k, v in pairs(fields) do redis.call('HSET', job, k, v) end
  end
  -- without a token no report from the worker that held the lease is accepted
  redis.call('HSET', job, 'token', '')
  redis.call('ZADD', K.uhistory(u), NOW, id)
  redis.call('ZREMRANGEBYRANK', K.uhistory(u), 0, -(history_max + 1))
  redis.call('ZADD', K.finished, NOW, id)
  redis.call('ZREMRANGEBYRANK', K.finished, 0, -20001)
  redis.call('PEXPIRE', job, ttl_ms)
  emit('finished', id)
end

-- Back to the job's old place (its seq) in its class.
local function requeue(id, why)
  local job = K.job(id)
  local f = redis.call('HMGET', job, 'user', 'cls', 'seq', 'worker')
  leave_running(id, f[1], f[4])
  redis.call('HSET', job, 'state', 'pending', 'worker', '', 'token', '')
  add_pending(id, tonumber(f[2]), f[1], tonumber(f[3]))
  emit('requeued', id, {reason = why})
end

-- A lease is the job id, the token its claim drew and the worker that claimed.
local function running_with(id, token, w)
  local f = redis.call('HMGET', K.job(id), 'state', 'token', 'worker')
  if not f[1] then return 'missing' end
  if f[1] ~= 'running' then return f[1] end
  if token == '' or f[2] ~= token then return 'stale' end
  if f[3] ~= w then return 'other_worker' end
  return 'ok'
end

-- The claim rule, written once. A queue view Q answers for class c:
--   Q.count(c)        how many jobs wait in c
--   Q.fifo(c, n)      an iterator over the first n of them by seq
--   Q.users(c, n)     an iterator over the first n users by fair score
--   Q.jobs(c, u, n)   an iterator over user u's first n jobs in c by seq
--   Q.take(c, u, id)  the claim of job id: served clock and scores move on
-- claim.lua walks the live view (Redis itself); order.lua and places.lua a
-- copy in memory that the walk changes instead of Redis (_walk.lua).
local function pick(Q, c, mode, look, fits)
  if mode == 'fifo' then
    for id in Q.fifo(c, look) do
      if fits(id) then return id, redis.call('HGET', K.job(id), 'user') end
    end
    return nil
  end
  local budget = look
  for u in Q.users(c, look) do
    for id in Q.jobs(c, u, budget) do
      if fits(id) then return id, u end
      budget = budget - 1
    end
    if budget <= 0 then return nil end
  end
  return nil
end

-- The next job this view hands out: the most urgent class with one that fits.
local function next_job(Q, mode, look, fits)
  for c = 0, NCLASSES - 1 do
    if Q.count(c) > 0 then
      local id, u = pick(Q, c, mode, look, fits)
      if id then return id, u, c end
    end
  end
  return nil
end

-- Which jobs a worker can run: those whose nodes its ComfyUI offers (every
-- job, for a worker that published no node list, or for no worker at all).
local function fits_worker(w)
  local nodes = w ~= '' and K.worker_nodes(w)
  if not nodes or redis.call('EXISTS', nodes) == 0 then
    return function() return true end
  end
  return function(id)
    local needs = redis.call('HGET', K.job(id), 'needs')
    if not needs then return true end
    local list = cjson.decode(needs)
    if #list == 0 then return true end
    for _, ok in ipairs(redis.call('SMISMEMBER', nodes, unpack(list))) do
      if ok == 0 then return false end
    end
    return true
  end
end

local function iterate(list)
  local i = 0
  return function()
    i = i + 1
    return list[i]
  end
end

local function queue_mode()
  return redis.call('HGET', K.config, 'mode') or 'fair'
end

-- The live view: Redis as it is; a claim changes it.
local LIVE = {}
function LIVE.count(c) return redis.call('ZCARD', K.pending_all(c)) end
function LIVE.fifo(c, n) return iterate(redis.call('ZRANGE', K.pending_all(c), 0, n - 1)) end
function LIVE.users(c, n) return iterate(redis.call('ZRANGE', K.pending_users(c), 0, n - 1)) end
function LIVE.jobs(c, u, n)
  if n <= 0 then return iterate({}) end
  return iterate(redis.call('ZRANGE', K.pending_user(c, u), 0, n - 1))
end
function LIVE.take(c, u, id)
  redis.call('ZREM', K.pending_user(c, u), id)
  redis.call('ZREM', K.pending_all(c), id)
  redis.call('ZREM', K.upending(u), id)
  redis.call('HSET', K.lastserved, u, redis.call('INCR', K.servedtick))
  for c2 = 0, NCLASSES - 1 do
    if c2 == c or redis.call('EXISTS', K.pending_user(c2, u)) == 1 then rescore(c2, u) end
  end
end
