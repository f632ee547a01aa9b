-- A queue view in memory for walking the claim rule of _common.lua without
-- claiming (order.lua, places.lua). It reads Redis lazily, page by page, and
-- keeps the walk's own claims, and the scores they move, on top.
local PAGE = 64

local function memory_view()
  local V = {tick = tonumber(redis.call('GET', K.servedtick) or '0'), served = {}, cls = {},
             removed = {}, totals = {}}

  local function total(c)
    if not V.totals[c] then V.totals[c] = redis.call('ZCARD', K.pending_all(c)) end
    return V.totals[c]
  end

  -- one user's jobs in one class, loaded on demand
  local function ujobs(s, c, u)
    local j = s.uj[u]
    if not j then
      j = {ids = {}, seqs = {}, n = 0, head = 1, taken = 0,
           total = redis.call('ZCARD', K.pending_user(c, u))}
      s.uj[u] = j
    end
    return j
  end

  -- a claim needs a user's first job and the seq of the next: read two,
  -- then pages
  local function job_at(c, u, j, i)
    if i > j.n and j.n < j.total then
      local stop = j.n == 0 and 1 or j.n + PAGE - 1
      local flat = redis.call('ZRANGE', K.pending_user(c, u), j.n, stop, 'WITHSCORES')
      for k = 1, #flat, 2 do
        j.n = j.n + 1
        j.ids[j.n] = flat[k]
        j.seqs[j.n] = tonumber(flat[k + 1])
      end
    end
    return j.ids[i]
  end

  local function skip_taken(c, u, j)
    while true do
      local id = job_at(c, u, j, j.head)
      if not id or not V.removed[id] then return id end
      j.head = j.head + 1
    end
  end

  local function left(s, c, u)
    local j = ujobs(s, c, u)
    return j.total - j.taken
  end

  -- the walk served u: their score in class c follows from their first job left there
  local function rescore_mem(s, c, u)
    s.moved[u] = true
    local j = ujobs(s, c, u)
    if j.total - j.taken == 0 then
      s.score[u] = nil
      return
    end
    skip_taken(c, u, j)
    local score = fair_score(j.seqs[j.head], V.served[u])
    s.score[u] = score
    if score < NEVER_BASE then
      local at = #s.front + 1
      while at > 1 and s.front[at - 1][1] > score do at = at - 1 end
      table.insert(s.front, at, {score, u})
    else
      s.rot[#s.rot + 1] = {u, score} -- ticks only grow: the end is the right place
    end
  end

  local function class(c)
    local s = V.cls[c]
    if s then return s end
    s = {taken = 0, fa = {}, fan = 0, fa_head = 1, ru = {}, rs = {}, rn = 0, ra_head = 1,
         rtotal = redis.call('ZCARD', K.pending_users(c)), uj = {}, moved = {},
         score = {}, front = {}, rot = {}, rot_head = 1}
    V.cls[c] = s
    -- users the walk served before it reached this class have moved here too
    local served = {}
    for u, tick in pairs(V.served) do served[#served + 1] = {tick, u} end
    table.sort(served, function(a, b) return a[1] < b[1] end)
    for _, e in ipairs(served) do
      if left(s, c, e[2]) > 0 then rescore_mem(s, c, e[2]) end
    end
    return s
  end

  -- users by Redis's score, page by page; scores only when asked (costly)
  local function user_at(c, s, i)
    if i > s.rn and s.rn < s.rtotal then
      for _, u in ipairs(redis.call('ZRANGE', K.pending_users(c), s.rn, s.rn + PAGE - 1)) do
        s.rn = s.rn + 1
        s.ru[s.rn] = u
      end
    end
    return s.ru[i]
  end

  local function user_score(c, s, i)
    if not s.rs[i] then s.rs[i] = tonumber(redis.call('ZSCORE', K.pending_users(c), s.ru[i])) end
    return s.rs[i]
  end

  local function fifo_at(c, s, i)
    if i > s.fan and s.fan < total(c) then
      for _, id in ipairs(redis.call('ZRANGE', K.pending_all(c), s.fan, s.fan + PAGE - 1)) do
        s.fan = s.fan + 1
        s.fa[s.fan] = id
      end
    end
    return s.fa[i]
  end

  function V.count(c)
    local s = V.cls[c]
    return total(c) - (s and s.taken or 0)
  end

  function V.fifo(c, n)
    local s = class(c)
    while fifo_at(c, s, s.fa_head) and V.removed[s.fa[s.fa_head]] do
      s.fa_head = s.fa_head + 1
    end
    local i, given = s.fa_head, 0
    return function()
      while given < n do
        local id = fifo_at(c, s, i)
        i = i + 1
        if not id then return nil end
        if not V.removed[id] then
          given = given + 1
          return id
        end
      end
      return nil
    end
  end

  -- Users in score order: those the walk has not touched (Redis's order)
  -- merged with touched ones whose first job was moved to the front, then
  -- the touched ones by the tick the walk gave them (all later than Redis's).
  function V.users(c, n)
    local s = class(c)
    while user_at(c, s, s.ra_head) and s.moved[s.ru[s.ra_head]] do s.ra_head = s.ra_head + 1 end
    while s.rot[s.rot_head] and s.score[s.rot[s.rot_head][1]] ~= s.rot[s.rot_head][2] do
      s.rot_head = s.rot_head + 1
    end
    local ia, ib, ic, given = s.ra_head, 1, s.rot_head, 0
    return function()
      if given >= n then return nil end
      local ua = user_at(c, s, ia)
      while ua and s.moved[ua] do
        ia = ia + 1
        ua = user_at(c, s, ia)
      end
      local ub
      while s.front[ib] and s.score[s.front[ib][2]] ~= s.front[ib][1] do ib = ib + 1 end
      if s.front[ib] then ub = s.front[ib][2] end
      local u
      if ua and (not ub or user_score(c, s, ia) < s.front[ib][1]) then
        u, ia = ua, ia + 1
      elseif ub then
        u, ib = ub, ib + 1
      else
        while s.rot[ic] do
          local e = s.rot[ic]
          ic = ic + 1
          if s.score[e[1]] == e[2] then
            u = e[1]
            break
          end
        end
      end
      if u then given = given + 1 end
      return u
    end
  end

  function V.jobs(c, u, n)
    local s = class(c)
    local j = ujobs(s, c, u)
    skip_taken(c, u, j)
    local i, given = j.head, 0
    return function()
      while given < n do
        local id = job_at(c, u, j, i)
        i = i + 1
        if not id then return nil end
        if not V.removed[id] then
          given = given + 1
          return id
        end
      end
      return nil
    end
  end

  -- u was served: their score moves in every class they wait in (and in
  -- `c`, where they may have just run out of jobs)
  local function served(u, c)
    for c2, s2 in pairs(V.cls) do
      if c2 == c or s2.moved[u] or left(s2, c2, u) > 0 then rescore_mem(s2, c2, u) end
    end
  end

  function V.take(c, u, id)
    local s = class(c)
    V.removed[id] = true
    s.taken = s.taken + 1
    local j = ujobs(s, c, u)
    j.taken = j.taken + 1
    V.tick = V.tick + 1
    V.served[u] = V.tick
    served(u, c)
  end

  -- True when the users left in class c (in fair mode, for a worker that
  -- runs everything) just take turns: none has a front-moved job first, so
  -- each one served goes to the back, behind everyone waiting, with the
  -- newest tick. The turn is then: those the walk has not touched, in
  -- Redis's order, then those it has, in the order it served them.
  function V.rotating(c)
    local s = class(c)
    for _, e in ipairs(s.front) do
      if s.score[e[2]] == e[1] then return false end
    end
    local i = s.ra_head
    while user_at(c, s, i) and s.moved[s.ru[i]] do i = i + 1 end
    return not s.ru[i] or user_score(c, s, i) >= NEVER_BASE -- front-moved jobs sort first
  end

  -- The rest of a rotating class at once. Everyone left takes one job per
  -- round: a user's k-th job from now (from 0) comes after min(n, k) jobs of
  -- every user (n: their jobs left) plus one more of each user ahead in the
  -- turn with more than k. Calls place(user, id, position) for the users in
  -- `wanted`, or for every job in order when `wanted` is nil, and returns
  -- the position after the class.
  function V.rotate(c, pos, wanted, place)
    local s = class(c)
    -- a user's jobs left here: all of them unless the walk took some
    local function ids(u, n)
      if not s.uj[u] then return iterate(redis.call('ZRANGE', K.pending_user(c, u), 0, -1)) end
      return V.jobs(c, u, n)
    end
    local turn, n, most, jobs = {}, {}, 0, 0
    local function join(u)
      turn[#turn + 1] = u
      local j = s.uj[u] -- a table per user only where the walk needs one
      n[#turn] = j and j.total - j.taken or redis.call('ZCARD', K.pending_user(c, u))
      jobs = jobs + n[#turn]
      if n[#turn] > most then most = n[#turn] end
    end
    local i = s.ra_head
    while user_at(c, s, i) do
      if not s.moved[s.ru[i]] then join(s.ru[i]) end
      i = i + 1
    end
    for k = s.rot_head, #s.rot do
      local u, score = s.rot[k][1], s.rot[k][2]
      if s.score[u] == score then join(u) end
    end
    if wanted then
      -- more[k]: users with more than k jobs left; before[k]: sum of min(n, k)
      local hist, more, before = {}, {}, {[0] = 0}
      for k = 0, most do hist[k] = 0 end
      for t = 1, #n do hist[n[t]] = hist[n[t]] + 1 end
      local running = 0
      for k = most, 1, -1 do
        running = running + hist[k]
        more[k - 1] = running
      end
      for k = 1, most do before[k] = before[k - 1] + more[k - 1] end
      for t, u in ipairs(turn) do
        if wanted[u] then
          -- ahead[k]: users earlier in the turn with more than k left
          local cut, ahead = {}, {}
          for k = 0, n[t] do cut[k] = 0 end
          for e = 1, t - 1 do
            local m = math.min(n[e], n[t])
            cut[m] = cut[m] + 1
          end
          local above = 0
          for k = n[t], 1, -1 do
            above = above + cut[k]
            ahead[k - 1] = above
          end
          local k = 0
          for id in ids(u, n[t]) do
            place(u, id, pos + before[k] + ahead[k])
            k = k + 1
          end
        end
      end
    else
      local lists = {}
      for t, u in ipairs(turn) do
        lists[t] = {}
        for id in ids(u, n[t]) do lists[t][#lists[t] + 1] = id end
      end
      local at = pos
      for k = 1, most do
        for t, u in ipairs(turn) do
          if n[t] >= k then
            place(u, lists[t][k], at)
            at = at + 1
          end
        end
      end
    end
    -- the class empties; if others wait, each user's clock moves to their
    -- last claim here (by round, then by turn), as claims would move it
    s.taken = total(c)
    local later = false
    for c2 = 0, NCLASSES - 1 do
      if V.count(c2) > 0 then later = true end
    end
    if later then
      local by_last = {}
      for t, u in ipairs(turn) do
        by_last[t] = t
        local j = s.uj[u]
        if j then
          j.taken = j.total
        else
          s.uj[u] = {ids = {}, seqs = {}, n = 0, head = 1, taken = 0, total = 0}
        end
      end
      table.sort(by_last, function(a, b)
        if n[a] ~= n[b] then return n[a] < n[b] end
        return a < b
      end)
      for rank, t in ipairs(by_last) do V.served[turn[t]] = V.tick + rank end
      for _, t in ipairs(by_last) do served(turn[t], c) end
    end
    V.tick = V.tick + jobs
    return pos + jobs
  end

  return V
end
