-- Each listed user's pending jobs with their place in the dispatch order
-- (0 = next), without simulating the whole queue: in fair mode every user
-- with jobs is served once per round in the order of their scores, so a
-- job that is its user's k-th (from 0) comes after k of every other user's
-- jobs (or all they have), plus one from each user ahead in the round who
-- has more than k. Front-moved jobs count at their user's turn.
-- KEYS[1] prefix
-- ARGV[1..] users
-- Returns a flat list: user, job id, place, user, job id, place, ...
local mode = redis.call('HGET', P .. 'config', 'mode') or 'fair'
local wanted = {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local out = {}
local function add(u, id, place)
  out[#out + 1] = u
  out[#out + 1] = id
  out[#out + 1] = place
end

-- t[k] for k in 0..cap-1: how many of counts[1..upto] exceed k, in
-- O(upto + cap) through a histogram of the counts (capped at cap).
local function more_than(counts, upto, cap)
  local hist, t = {}, {}
  for k = 0, cap do hist[k] = 0 end
  for j = 1, upto do
    local n = math.min(counts[j], cap)
    hist[n] = hist[n] + 1
  end
  local running = 0
  for k = cap, 1, -1 do
    running = running + hist[k]
    t[k - 1] = running
  end
  return t
end

local base = 0 -- jobs waiting in more urgent classes
for c = 0, 9 do
  local total = redis.call('ZCARD', k_all(c))
  if total > 0 then
    if mode == 'fifo' then
      for u in pairs(wanted) do
        for _, id in ipairs(redis.call('ZRANGE', k_user(c, u), 0, -1)) do
          add(u, id, base + redis.call('ZRANK', k_all(c), id))
        end
      end
    else
      local users = redis.call('ZRANGE', k_users(c), 0, -1)
      local counts, most = {}, 0
      for i, v in ipairs(users) do
        counts[i] = redis.call('ZCARD', k_user(c, v))
        if counts[i] > most then most = counts[i] end
      end
      local above = more_than(counts, #counts, most) -- users with more than k jobs
      for i, v in ipairs(users) do
        if wanted[v] then
          -- users before this one in the round with more than k jobs
          local ahead = more_than(counts, i - 1, counts[i])
          local others = 0 -- sum over other users of min(their jobs, k)
          for k, id in ipairs(redis.call('ZRANGE', k_user(c, v), 0, -1)) do
            local rank = k - 1
            add(v, id, base + rank + others + ahead[rank])
            others = others + above[rank] - 1 -- this user is among `above`
          end
        end
      end
    end
    base = base + total
  end
end
return out
