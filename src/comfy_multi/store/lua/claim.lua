-- Give the next job to a free worker: most urgent class first, then the
-- queue mode (fifo: oldest seq; fair: least recently served user's oldest
-- job), skipping jobs whose nodes the worker lacks (bounded look-ahead).
-- KEYS[1] prefix
-- ARGV[1] worker id, ARGV[2] lease ms, ARGV[3] look-ahead
-- Returns the job hash as a flat list, or nil.
local w, lease, look = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cfg = redis.call('HMGET', P .. 'config', 'paused', 'mode')
if cfg[1] == '1' then return nil end
if redis.call('HGET', k_worker(w), 'draining') == '1' then return nil end
local mode = cfg[2] or 'fair'
local nodes = P .. 'worker:' .. w .. ':nodes'
local check = redis.call('EXISTS', nodes) == 1

local function fits(id)
  if not check then return true end
  local needs = redis.call('HGET', k_job(id), 'needs')
  if not needs then return true end
  local list = cjson.decode(needs)
  if #list == 0 then return true end
  for _, ok in ipairs(redis.call('SMISMEMBER', nodes, unpack(list))) do
    if ok == 0 then return false end
  end
  return true
end

local function pick(c)
  if mode == 'fifo' then
    for _, id in ipairs(redis.call('ZRANGE', k_all(c), 0, look - 1)) do
      if fits(id) then return id end
    end
    return nil
  end
  local budget = look
  for _, u in ipairs(redis.call('ZRANGE', k_users(c), 0, look - 1)) do
    for _, id in ipairs(redis.call('ZRANGE', k_user(c, u), 0, budget - 1)) do
      if fits(id) then return id end
      budget = budget - 1
    end
    if budget <= 0 then return nil end
  end
  return nil
end

for c = 0, 9 do
  if redis.call('ZCARD', k_all(c)) > 0 then
    local id = pick(c)
    if id then
      local job = k_job(id)
      local u = redis.call('HGET', job, 'user')
      redis.call('ZREM', k_user(c, u), id)
      redis.call('ZREM', k_all(c), id)
      redis.call('ZREM', k_upending(u), id)
      redis.call('HSET', P .. 'lastserved', u, redis.call('INCR', P .. 'servedtick'))
      for c2 = 0, 9 do
        if c2 == c or redis.call('EXISTS', k_user(c2, u)) == 1 then rescore(c2, u) end
      end
      redis.call('HINCRBY', job, 'attempts', 1)
      redis.call('HINCRBY', job, 'token', 1)
      redis.call('HSET', job, 'state', 'running', 'worker', w, 'started_ms', NOW)
      redis.call('ZADD', P .. 'running', NOW + lease, id)
      redis.call('ZADD', k_urunning(u), NOW, id)
      redis.call('HSET', k_worker(w), 'current_job', id)
      emit('started', id)
      return redis.call('HGETALL', job)
    end
  end
end
return nil
