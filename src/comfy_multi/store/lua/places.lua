-- Each listed user's pending jobs with their place in the dispatch order
-- (0 = next): the claim rule of _common.lua walked without claiming, as in
-- order.lua, for a worker that runs everything, until every listed user's
-- jobs are placed. A fair class is walked claim by claim only while a
-- front-moved job waits in it; from there everyone left takes turns and the
-- rest of the class is placed at once (_walk.lua V.rotate). In fifo mode a
-- job's place is its rank: the claim rule there is oldest first.
-- KEYS[1] prefix
-- ARGV[1..] users
-- Returns a flat list: user, job id, place, user, job id, place, ...
local mode = queue_mode()
local wanted, waiting = {}, 0
for i = 1, #ARGV do
  if not wanted[ARGV[i]] then
    wanted[ARGV[i]] = true
    waiting = waiting + redis.call('ZCARD', K.upending(ARGV[i]))
  end
end
local out = {}
local function place(u, id, at)
  out[#out + 1] = u
  out[#out + 1] = id
  out[#out + 1] = at
  waiting = waiting - 1
end
local everything = function() return true end

local pos = 0
if mode == 'fifo' then
  -- oldest first in each class: a job's place is its rank
  for c = 0, NCLASSES - 1 do
    if waiting <= 0 then break end
    local total = redis.call('ZCARD', K.pending_all(c))
    if total > 0 then
      for u in pairs(wanted) do
        for _, id in ipairs(redis.call('ZRANGE', K.pending_user(c, u), 0, -1)) do
          place(u, id, pos + redis.call('ZRANK', K.pending_all(c), id))
        end
      end
      pos = pos + total
    end
  end
  return out
end

local V = memory_view()
while waiting > 0 do
  local id, u, c = next_job(V, mode, 1, everything)
  if not id then break end
  if V.rotating(c) then
    pos = V.rotate(c, pos, wanted, place)
  else
    if wanted[u] then place(u, id, pos) end
    V.take(c, u, id)
    pos = pos + 1
  end
end
return out
